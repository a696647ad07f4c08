"""URL-encoded form bodies, read with a size limit (no multipart: the dashboard never uploads)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"


class FormError(Exception):
    """The body is not a form this dashboard sent, or is too large."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Form:
    fields: dict[str, str]  # a repeated field keeps its last value here
    pairs: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def getlist(self, name: str) -> list[str]:
        """Every value of a repeated field (checkboxes sharing a name), in order."""
        return [value for key, value in self.pairs if key == name]


async def read_form(request: Request, limit: int) -> Form:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise FormError(f"expected a form ({FORM_TYPE}), got {content_type or 'no body type'}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise FormError(f"the form is larger than {limit} bytes", status=413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    return Form(dict(pairs), tuple(pairs))
