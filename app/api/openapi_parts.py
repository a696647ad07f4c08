"""Pieces the OpenAPI modules share: parameters, answers and the string shapes the server takes.

A string schema here says exactly what the server accepts, so that the served document never
allows a value that is then refused: no NUL anywhere (app/api/url_guard.py, json_input.py), one
value where a comma would make two (`params.single_param`), something besides blanks where a
value is required.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
REF = "#/components/schemas/{model}"

NO_NUL = "^[^\\u0000]*$"
# Python's whitespace (str.strip), spelled out: regex engines disagree on what `\\s` means.
BLANK = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
TEXT: Obj = {"type": "string", "pattern": NO_NUL}
# at least one character that is neither blank nor NUL
NOT_BLANK = f"^[^\\u0000]*[^{BLANK}\\u0000][^\\u0000]*$"
# comma lists hold at most one value once split and stripped (`params.single_param`) ...
_SEGMENT = f"[^,{BLANK}\\u0000](?:[^,\\u0000]*[^,{BLANK}\\u0000])?"
ONE_VALUE: Obj = {"type": "string", "pattern": f"^[{BLANK},]*(?:{_SEGMENT})?[{BLANK},]*$"}
# ... or exactly one, for a required id
SOME_VALUE: Obj = {"type": "string", "pattern": f"^[{BLANK},]*{_SEGMENT}[{BLANK},]*$"}
ID: Obj = {"type": "string", "minLength": 1, "pattern": NO_NUL}
TIME: Obj = {"type": "string", "format": "date-time"}

_ERROR_TEXT = {
    400: "invalid request",
    401: "missing or unknown API key",
    403: "a cross-site request (foreign Origin or Sec-Fetch-Site: cross-site)",
    404: "not found",
    409: "the current state forbids it",
    413: "body too large",
    415: "the body is not Content-Type: application/json",
    429: "rate limited: retry after Retry-After seconds",
    500: "internal error",
}
# every answer may be one of these; writes may also be refused as cross-site (403, 415)
COMMON_ERRORS = (400, 401, 404, 500)
WRITE_ERRORS = (403, 413, 415)


def ref(name: str) -> Obj:
    return {"$ref": REF.format(model=name)}


def json_answer(schema: Obj, description: str = "OK") -> Obj:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: Obj, *, required: bool = True) -> Obj:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def text(max_length: int | None = None, *, min_length: int = 0, pattern: str = NO_NUL) -> Obj:
    schema: Obj = {"type": "string", "pattern": pattern}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def errors(*statuses: int) -> Obj:
    """Error answers for `statuses` plus the ones every operation may give."""
    wanted = sorted({*COMMON_ERRORS, *statuses})
    answers = {str(s): json_answer(ref("Error"), _ERROR_TEXT[s]) for s in wanted}
    if 429 in wanted:
        answers["429"]["headers"] = {
            "Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
        }
    return answers


def query(name: str, schema: Obj, description: str = "", required: bool = False) -> Obj:
    param: Obj = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        param["description"] = description
    return param


def path(name: str, schema: Obj = ID) -> Obj:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def operation(
    summary: str,
    answers: Obj,
    *extra_errors: int,
    parameters: list[Obj] | None = None,
    **more: Any,
) -> Obj:
    op: Obj = {"summary": summary, "responses": {**answers, **errors(*extra_errors)}, **more}
    if parameters:
        op["parameters"] = parameters
    return op


def _task_ref_pattern() -> str:
    """Exactly what `scheduler.runs.reads.parse_task_ref` accepts once stripped: `[wf/]task[:v]`.

    The part before the last `:` names the task after its last `/`; that name must not be
    empty, and when a `/` is there the workflow before it must not be empty either.
    """
    nul, blank = "\\u0000", BLANK
    edge = f"[^/:{blank}{nul}]"  # first or last character of an unversioned ref
    unversioned = (
        f"(?:{edge}(?:[^/:{nul}]*{edge})?"  # task
        f"|[^:{blank}{nul}][^:{nul}]*/(?:[^/:{nul}]*{edge}))"  # wf/task
    )
    versioned = (
        f"(?:[^/{blank}{nul}][^/{nul}]*"  # task (a version id follows the last colon)
        f"|[^{blank}{nul}][^{nul}]*/[^/{nul}]+)"  # wf/task
        f":(?:[^:{nul}]*[^:{blank}{nul}])?"
    )
    return f"^[{blank}]*(?:{unversioned}|{versioned})[{blank}]*$"


TASK_REF: Obj = {"type": "string", "minLength": 1, "pattern": _task_ref_pattern()}


TEXTS: Obj = {"type": "array", "items": TEXT}  # repeat the parameter or comma-separate values
# Render's clients send the owner; a key sees one workspace, so it is ignored
OWNER = query("ownerId", TEXTS, "ignored: a key sees one workspace")
PAGE = [
    query("cursor", TEXT, "the previous page's last cursor"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
]
