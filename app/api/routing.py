"""Routes that share a path become one, so a 405 there names every method it takes in `Allow`.

Starlette answers a 405 with the `Allow` of the first route whose path matched; with one
`Route` per method, `DELETE /v1/task-runs/{id}` would be missing from a `PUT`'s answer.
Each module keeps listing one route per handler; `merge_routes` joins them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

Endpoint = Callable[[Request], Awaitable[Response]]


def _by_method(handlers: dict[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        # Route only lets the methods in `handlers` (and HEAD with GET) reach this far.
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


def merge_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """One route per path, in the order paths first appear; other kinds of route are kept."""
    handlers: dict[str, dict[str, Endpoint]] = {}
    order: list[BaseRoute | str] = []
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            order.append(route)
            continue
        if route.path not in handlers:
            handlers[route.path] = {}
            order.append(route.path)
        for method in route.methods - {"HEAD"}:
            if method in handlers[route.path]:
                raise ValueError(f"two handlers for {method} {route.path}")
            handlers[route.path][method] = route.endpoint
    return [
        item
        if not isinstance(item, str)
        else Route(item, _by_method(handlers[item]), methods=list(handlers[item]))
        for item in order
    ]
