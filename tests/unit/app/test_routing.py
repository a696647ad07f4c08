"""Routes sharing a path are joined into one; two handlers for one method are a mistake."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from app.api.routing import merge_routes


async def first(request: Request) -> Response:
    return PlainTextResponse("first")


async def second(request: Request) -> Response:
    return PlainTextResponse("second")


def test_routes_of_one_path_become_one_in_first_seen_order() -> None:
    mount = Mount("/static", routes=[])
    merged = merge_routes(
        [
            Route("/a", first, methods=["GET"]),
            mount,
            Route("/b", first, methods=["POST"]),
            Route("/a", second, methods=["DELETE"]),
        ]
    )
    assert [getattr(r, "path", None) for r in merged] == ["/a", "/static", "/b"]
    joined = merged[0]
    assert isinstance(joined, Route) and joined.methods == {"GET", "HEAD", "DELETE"}


def test_two_handlers_for_one_method_are_refused() -> None:
    with pytest.raises(ValueError, match="two handlers for GET /a"):
        merge_routes([Route("/a", first, methods=["GET"]), Route("/a", second, methods=["GET"])])
