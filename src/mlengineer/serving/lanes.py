"""The prediction endpoints' short way through the app: ``POST /invocations``, ``POST /predict`` and the Open
Inference Protocol's ``POST /v2/models/{name}[/versions/{version}]/infer`` are called straight from
``ServiceMiddleware``, without FastAPI's routing, dependency solving and the middleware layers under ours.

The endpoints are the routes' own functions (``routes/``), found in the app once its routers are in, so the
answers are the same either way (``tests/test_serve_lanes.py`` compares them); only a route whose function
takes nothing but the request and its path's names is taken, so a route that grows a FastAPI dependency
falls back to the usual way rather than losing it. Errors are answered by the app's own handlers. Every
other path and method goes the usual way, and so does everything with ``MLENGINEER_SERVE_LANES=0`` in the
environment. The server's start line names the paths taken the short way (``short_paths``).

Why: on one worker a one-row request cost about 0.6 ms of the server's time, a third of it in the layers
between uvicorn and the route (bench/RESULTS.md, "The server's own time").
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..errors import MLEngineerError

__all__ = ["Lanes", "hot_routes"]

#: the routes taken the short way: their paths as the app declares them
HOT_PATHS = ("/invocations", "/predict", "/v2/models/{model_name}/infer",
             "/v2/models/{model_name}/versions/{model_version}/infer")
#: the parameters a short-way endpoint may take: the request, and the names in its path
PLAIN_PARAMS = frozenset({"request", "model_name", "model_version"})

Endpoint = Callable[..., Awaitable[Response]]


class Lanes:
    """The hot routes of one app by path shape; filled by ``hot_routes`` after the routers are included."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[APIRoute, Endpoint]] = {}
        self.on_error: Callable[[Request, MLEngineerError], Awaitable[Response]] | None = None

    def match(self, method: str, path: str) -> tuple[APIRoute, Endpoint, dict[str, str]] | None:
        """The route, its function and its path's values for a request, or None for the usual way."""
        if method != "POST" or not self.routes:
            return None
        hit = self.routes.get(path)
        if hit is not None:
            return hit[0], hit[1], {}
        if not path.startswith("/v2/models/") or not path.endswith("/infer"):
            return None
        parts = path[len("/v2/models/"):-len("/infer")].split("/")
        if len(parts) == 1 and parts[0]:
            shape, values = "/v2/models/{model_name}/infer", {"model_name": parts[0]}
        elif len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
            shape = "/v2/models/{model_name}/versions/{model_version}/infer"
            values = {"model_name": parts[0], "model_version": parts[2]}
        else:
            return None
        hit = self.routes.get(shape)
        return None if hit is None else (hit[0], hit[1], values)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any,
                       lane: tuple[APIRoute, Endpoint, dict[str, str]]) -> None:
        route, endpoint, values = lane
        scope["route"] = route  # for the metrics' endpoint label, as routing would set it
        scope["path_params"] = values
        request = Request(scope, receive)
        try:
            response = await endpoint(request, **values)
        except MLEngineerError as exc:
            if self.on_error is None:
                raise
            response = await self.on_error(request, exc)
        await response(scope, receive, send)


def hot_routes(app: FastAPI, routers: list[APIRouter], lanes: Lanes) -> Lanes:
    """Fill ``lanes`` with the hot routes of ``routers`` (included in ``app`` without a prefix) whose functions
    take only plain parameters, and with ``app``'s handler of mlengineer's errors."""
    for route in (r for router in routers for r in router.routes):
        if not isinstance(route, APIRoute) or route.path not in HOT_PATHS or "POST" not in (route.methods or ()):
            continue
        if route.dependencies or set(inspect.signature(route.endpoint).parameters) - PLAIN_PARAMS:
            continue
        lanes.routes[route.path] = (route, route.endpoint)
    handler = app.exception_handlers.get(MLEngineerError)
    lanes.on_error = handler  # type: ignore[assignment]
    return lanes
