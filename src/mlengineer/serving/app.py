"""The prediction service: a FastAPI app around the model being served.

Endpoints, one router each over one ``Service`` (``routes/``)
- Open Inference Protocol v2 (``routes/oip.py``): ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``,
  ``GET /v2/models/{name}[/versions/{version}]``, ``GET .../ready``, ``POST .../infer``.
- MLflow's scoring protocol (``routes/mlflow.py``): ``POST /invocations`` (JSON or CSV), ``GET /ping``,
  ``GET /health``, ``GET /version``.
- ``POST /predict`` with ``{"records": [...]}`` (``routes/records.py``); ``GET /metrics`` (Prometheus,
  ``routes/operations.py``); ``POST /explain`` (``routes/explain.py``); ``/docs`` (``docs.py``) and
  ``/openapi.json`` (``openapi.py``).

Hot endpoints read the body with orjson and answer with orjson-encoded bytes (pydantic models describe them
in the OpenAPI document only). Every route that takes rows validates them one way (``service.py``).
Validation, limits, API key, metrics, the access log and the prediction log are described in
``validation.py``, ``middleware.py``, ``metrics.py``, ``logs.py`` and ``monitoring/prediction_log.py``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..bundle.model import Model
from ..errors import MLEngineerError
from .docs import docs_router
from .errors import error_body
from .lanes import Lanes, hot_routes
from .middleware import ServiceMiddleware
from .openapi import install_openapi
from .routes import explain, mlflow, oip, operations, records
from .routes.common import json_response
from .runtime import ServedModel, load_served, load_version
from .service import Service, served_from_model
from .settings import ServeSettings

__all__ = ["Service", "create_app"]


def create_app(model: Model | None = None, *, settings: ServeSettings | None = None,
               served: ServedModel | None = None) -> FastAPI:
    """A FastAPI app serving ``model`` (an already loaded Model), or the model ``settings.model`` names."""
    if settings is None:
        if model is None:
            raise TypeError("create_app needs a model or settings")
        settings = ServeSettings(model=str(model.path or model.name), prediction_log=None)
    if served is None:
        if model is not None:
            served = load_version(settings, ref=settings.model, path=model.path, version="1") \
                if model.path is not None else served_from_model(model, settings)
        else:
            served = load_served(settings)
    service = Service(settings, served)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title=f"mlengineer: {served.name}", version="1", lifespan=lifespan, **_telemetry(), docs_url=None,
                  description=f"Predicts {served.model.target!r} ({served.model.task.kind}) with the model "
                              f"{served.name!r}. Open Inference Protocol v2 under /v2, MLflow's scoring protocol "
                              "at /invocations, plain JSON records at /predict.")
    app.state.service = service
    lanes = Lanes()
    app.add_middleware(ServiceMiddleware, service=service, lanes=lanes)
    add_error_handlers(app)
    routers = [module.router(service) for module in (oip, mlflow, records, operations, explain)]
    for r in routers:  # in the order of the paths in the docs
        app.include_router(r)
    if os.environ.get("MLENGINEER_SERVE_LANES", "1") != "0":  # 0: every request the usual way
        service.short_paths = sorted(hot_routes(app, routers, lanes).routes)
    app.include_router(docs_router())
    install_openapi(app, service)
    return app


def _telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry hooks (its ``telemetry`` argument, FastAPI 0.16x) ask OpenTelemetry for its
    global providers on every request, about 5% of a one-row request's time where nothing is configured: on
    only where the environment configures OpenTelemetry (an ``OTEL_`` variable, or FastAPI's
    ``FASTAPI_OTEL_AUTO_CONFIGURE=true``), off otherwise."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    env = os.environ
    wanted = env.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true" or any(
        k.startswith("OTEL_") for k in env if k != "OTEL_SDK_DISABLED")
    if wanted and env.get("OTEL_SDK_DISABLED", "").lower() != "true":
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "..."}`` with its status (MLflow's fields too, on ``/invocations``)."""

    @app.exception_handler(MLEngineerError)
    async def _ours(request: Request, exc: MLEngineerError) -> Response:
        return json_response(error_body(str(exc), exc.http_status, request.url.path), exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", []) if p != "body") or "body"
        return json_response(error_body(f"Field {field!r}: {err.get('msg', 'invalid')}.", 422, request.url.path), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = json_response(error_body(f"{exc.detail}.", exc.status_code, request.url.path), exc.status_code)
        response.headers.update(exc.headers or {})  # the Allow header of a 405
        return response
