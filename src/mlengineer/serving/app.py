"""The prediction service: a FastAPI app around the model being served.

Endpoints
- Open Inference Protocol v2: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``,
  ``GET /v2/models/{name}[/versions/{version}]``, ``GET .../ready``, ``POST .../infer``.
- MLflow's scoring protocol: ``POST /invocations`` (JSON or CSV), ``GET /ping``, ``GET /health``, ``GET /version``.
- ``POST /predict`` with ``{"records": [...]}``; ``GET /metrics`` (Prometheus); ``/docs`` and ``/openapi.json``.

Hot endpoints read the body with orjson and answer with orjson-encoded bytes (pydantic models describe them
in the OpenAPI document only). Validation, limits, API key, metrics, the access log and the prediction log
are described in ``validation.py``, ``middleware.py``, ``metrics.py``, ``logs.py`` and
``monitoring/prediction_log.py``.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..bundle.model import Model
from ..errors import MLEngineerError, SchemaError
from . import schemas as S
from .errors import NotFound, PayloadTooLarge, UnsupportedMediaType
from .logs import LogPipe, server_log
from .metrics import Metrics, value_buckets
from .middleware import OPEN_PATHS, ServiceMiddleware
from .protocols import (
    Columns,
    columns_from_csv,
    columns_from_mlflow,
    columns_from_oip,
    columns_from_records,
    oip_datatype,
    parse_json,
    plain,
)
from .runtime import Batcher, ModelWatcher, Prediction, ServedModel, load_served, load_version
from .settings import ServeSettings
from .validation import Validated

__all__ = ["Service", "create_app"]


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


class Service:
    """Everything one worker holds: settings, the served model, the batcher, metrics and logs."""

    def __init__(self, settings: ServeSettings, served: ServedModel) -> None:
        self.settings = settings
        self.served = served
        self.batcher = Batcher(max_rows=settings.max_batch_rows, on_batch=self._on_batch)
        pred = served.model.validation.get("pred")
        buckets = value_buckets(None if pred is None or served.classification else np.asarray(pred).ravel())
        self.metrics = Metrics(value_buckets=buckets)
        self.metrics.set_model(model=served.name, version=served.version, previous=None)
        self.prediction_log: Any = None
        self.watcher: ModelWatcher | None = None
        self.logs = LogPipe(access=settings.access_log)
        self.on_swap: list[Callable[[ServedModel], None]] = []

    def _on_batch(self, served: ServedModel, rows: int) -> None:
        self.metrics.batch_rows.labels(served.name).observe(rows)

    def swap(self, new: ServedModel) -> None:
        old = self.served
        self.served = new  # one assignment: a request holds the model it started with to its end
        self.metrics.set_model(model=new.name, version=new.version, previous=(old.name, old.version))
        self.metrics.reloads.labels("loaded").inc()
        for fn in self.on_swap:
            fn(new)

    async def start(self) -> None:
        self.logs.start()
        if self.settings.prediction_log is not None:
            from ..monitoring.prediction_log import PredictionLog

            self.prediction_log = PredictionLog(self.settings.prediction_log).start()
        from ..tracking.registry import is_model_ref

        if is_model_ref(self.settings.model):
            self.watcher = ModelWatcher(self.settings, get=lambda: self.served, swap=self.swap)
            self.watcher.start()
        server_log.info("serving", extra={"fields": {
            "model": self.served.name, "version": self.served.version, "source": self.served.source}})
        # what is alive now (the model, the libraries) lives as long as the server: keep it out of the garbage
        # collector's full passes, which otherwise walk it all and stall requests (170-190 ms at times, measured)
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        self.batcher.close()
        if self.prediction_log is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.prediction_log.close)
        server_log.info("stopped", extra={"fields": {"model": self.served.name, "version": self.served.version}})
        self.logs.stop()

    # -- the path every prediction takes ---------------------------------------------------------------------
    async def predict(self, request: Request, columns: Columns, n_rows: int, *, endpoint: str,
                      nan_is_missing: bool = False) -> tuple[ServedModel, Validated, Prediction]:
        if n_rows > self.settings.max_batch_rows:
            raise PayloadTooLarge(f"The request has {n_rows:,} rows; one request may have at most "
                                  f"{self.settings.max_batch_rows:,}: split it into smaller requests.")
        served = self.served
        if n_rows > self.batcher.inline_rows:
            item = await asyncio.get_running_loop().run_in_executor(
                None, lambda: served.validator.validate(columns, n_rows, nan_is_missing=nan_is_missing))
        else:
            item = served.validator.validate(columns, n_rows, nan_is_missing=nan_is_missing)
        pred = await self.batcher.predict(served, item)
        scope = request.scope
        scope["mlengineer.rows"] = n_rows
        scope["mlengineer.version"] = served.version
        for column in item.unseen:
            self.metrics.child(self.metrics.unseen, column).inc()
        self.metrics.observe_predictions(model=served.name, version=served.version, labels=pred.labels,
                                         raw=pred.raw, classification=served.classification)
        if self.prediction_log is not None:
            outputs = {"prediction": pred.labels}
            if served.classification:
                for i, c in enumerate(served.model.classes):
                    outputs[f"proba_{c}"] = pred.raw[:, i]
            if not self.prediction_log.append(columns=item.columns, outputs=outputs, n_rows=n_rows,
                                              request_id=scope.get("mlengineer.request_id", ""), endpoint=endpoint,
                                              model=served.name, version=served.version):
                self.metrics.log_dropped.inc(n_rows)
        return served, item, pred


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
                if model.path is not None else _wrap(model, settings)
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

    app = FastAPI(title=f"mlengineer: {served.name}", version="1", lifespan=lifespan,
                  description=f"Predicts {served.model.target!r} ({served.model.task.kind}) with the model "
                              f"{served.name!r}. Open Inference Protocol v2 under /v2, MLflow's scoring protocol "
                              "at /invocations, plain JSON records at /predict.")
    app.state.service = service
    app.add_middleware(ServiceMiddleware, service=service)
    errors = S.ERROR_RESPONSES

    @app.exception_handler(MLEngineerError)
    async def _ours(request: Request, exc: MLEngineerError) -> Response:
        body: dict[str, Any] = {"error": str(exc)}
        if request.url.path == "/invocations":  # MLflow's clients read error_code and message
            body.update(error_code="BAD_REQUEST" if exc.http_status < 500 else "INTERNAL_ERROR", message=str(exc))
        return _json(body, exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", []) if p != "body") or "body"
        return _json({"error": f"Field {field!r}: {err.get('msg', 'invalid')}."}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        response = _json({"error": f"{exc.detail}."}, exc.status_code)
        response.headers.update(exc.headers or {})  # the Allow header of a 405
        return response

    def check(model_name: str, version: str | None = None) -> ServedModel:
        served = service.served
        if model_name != served.name:
            raise NotFound(f"No model named {model_name!r} here; this server serves {served.name!r}.")
        if version is not None and version != served.version:
            raise NotFound(f"Model {served.name!r} has no version {version!r} here; this server serves "
                           f"version {served.version}.")
        return served

    # -- Open Inference Protocol v2 --------------------------------------------------------------------------
    @app.get("/v2/health/live", response_model=S.Live, tags=["health"])
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", response_model=S.Ready, tags=["health"])
    async def ready() -> Response:
        return _json({"ready": True})

    @app.get("/v2", response_model=S.ServerMetadata, responses=errors, tags=["open inference protocol"])
    async def server_metadata() -> Response:
        from .. import __version__

        return _json({"name": "mlengineer", "version": __version__, "extensions": []})

    def model_metadata(served: ServedModel) -> dict[str, Any]:
        m, v = served.model, served.validator
        inputs = [{"name": c, "datatype": _oip_input_type(v.roles[c]), "shape": [-1],
                   "parameters": {"role": v.roles[c]}} for c in v.features]
        outputs: list[dict[str, Any]] = []
        if served.classification:
            outputs.append({"name": "prediction", "datatype": oip_datatype(m.classes), "shape": [-1]})
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(m.classes)],
                            "parameters": {"classes": [str(c) for c in m.classes]}})
        else:
            outputs.append({"name": "prediction", "datatype": "FP64", "shape": [-1]})
        return {"name": served.name, "versions": [served.version], "platform": "mlengineer", "inputs": inputs,
                "outputs": outputs, "parameters": {"task": m.task.kind, "target": m.target,
                                                   "source": served.source}}

    @app.get("/v2/models/{model_name}", response_model=S.ModelMetadata, responses=errors,
             tags=["open inference protocol"])
    async def get_model(model_name: str) -> Response:
        return _json(model_metadata(check(model_name)))

    @app.get("/v2/models/{model_name}/versions/{model_version}", response_model=S.ModelMetadata,
             responses=errors, tags=["open inference protocol"])
    async def get_model_version(model_name: str, model_version: str) -> Response:
        return _json(model_metadata(check(model_name, model_version)))

    @app.get("/v2/models/{model_name}/ready", response_model=S.ModelReady, responses=errors,
             tags=["open inference protocol"])
    async def model_ready(model_name: str) -> Response:
        return _json({"name": check(model_name).name, "ready": True})

    @app.get("/v2/models/{model_name}/versions/{model_version}/ready", response_model=S.ModelReady,
             responses=errors, tags=["open inference protocol"])
    async def model_version_ready(model_name: str, model_version: str) -> Response:
        return _json({"name": check(model_name, model_version).name, "ready": True})

    async def infer(request: Request, model_name: str, version: str | None) -> Response:
        check(model_name, version)
        body = parse_json(await request.body())
        columns, n_rows, wanted = columns_from_oip(body)
        params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        coverage = _coverage(params.get("interval"), "parameters.interval")
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="infer")
        n = len(pred.labels)
        outputs: list[dict[str, Any]] = []
        if served.classification:
            outputs.append({"name": "prediction", "datatype": oip_datatype(served.model.classes), "shape": [n],
                            "data": plain(pred.labels)})
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [n, pred.raw.shape[1]],
                            "data": pred.raw.ravel(), "parameters": {
                                "classes": [str(c) for c in served.model.classes]}})
        else:
            outputs.append({"name": "prediction", "datatype": "FP64", "shape": [n], "data": plain(pred.labels)})
        if coverage is not None:
            for key, values in _uncertainty(served, pred.raw, coverage).items():
                if key == "prediction_set":  # a variable-length list per row: one JSON text each, as BYTES
                    outputs.append({"name": key, "datatype": "BYTES", "shape": [n],
                                    "data": [orjson.dumps(v).decode() for v in values]})
                else:
                    outputs.append({"name": key, "datatype": "FP64", "shape": [n], "data": values})
        if wanted is not None:
            names = [o["name"] for o in outputs]
            unknown = [w for w in wanted if w not in names]
            if unknown:
                raise SchemaError(f"Output {unknown[0]!r} is not one this model gives; it gives {', '.join(names)}.")
            outputs = [o for o in outputs if o["name"] in wanted]
        answer: dict[str, Any] = {"model_name": served.name, "model_version": served.version,
                                  "id": body.get("id") if isinstance(body.get("id"), str) else None,
                                  "outputs": outputs}
        if item.warnings:
            answer["parameters"] = {"warnings": item.warnings}
        return _json(answer)

    infer_doc: dict[str, Any] = {"requestBody": {"$ref": "#/components/requestBodies/Infer"}}

    @app.post("/v2/models/{model_name}/infer", response_model=S.InferResponse, responses=errors,
              openapi_extra=infer_doc, tags=["open inference protocol"])
    async def infer_latest(request: Request, model_name: str) -> Response:
        return await infer(request, model_name, None)

    @app.post("/v2/models/{model_name}/versions/{model_version}/infer", response_model=S.InferResponse,
              responses=errors, openapi_extra=infer_doc, tags=["open inference protocol"])
    async def infer_version(request: Request, model_name: str, model_version: str) -> Response:
        return await infer(request, model_name, model_version)

    # -- MLflow's scoring protocol ---------------------------------------------------------------------------
    @app.post("/invocations", response_model=S.InvocationsResponse, responses=errors, tags=["mlflow"],
              openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/Invocations"}})
    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "application/json")
        mime = content_type.split(";")[0].strip().lower()
        body = await request.body()
        coverage = None
        if mime == "text/csv":
            columns, n_rows = columns_from_csv(body)
        elif mime in ("application/json", "") or mime.endswith("+json"):
            parsed = parse_json(body)
            columns, n_rows = columns_from_mlflow(parsed)
            params = parsed.get("params") if isinstance(parsed.get("params"), dict) else {}
            coverage = _coverage(params.get("interval"), "params.interval")
        else:
            raise UnsupportedMediaType(f"Content-Type {content_type!r} is not read here: send application/json "
                                       "(dataframe_split, dataframe_records, instances or inputs) or text/csv.")
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="invocations",
                                                   nan_is_missing=True)
        labels = plain(pred.labels)
        if served.classification:
            names = [f"proba_{c}" for c in served.model.classes]
            probs = pred.raw.tolist()
            rows = [{"prediction": lab, **dict(zip(names, p, strict=True))} for lab, p in zip(labels, probs, strict=True)]
        else:
            rows = [{"prediction": lab} for lab in labels]
        if coverage is not None:
            _add_to_rows(rows, _uncertainty(served, pred.raw, coverage))
        answer: dict[str, Any] = {"predictions": rows}
        if item.warnings:
            answer["warnings"] = item.warnings
        return _json(answer)

    # MLflow's server answers these with a bare newline; its clients look only at the status, so valid JSON
    # costs them nothing and keeps the answers inside the OpenAPI document
    @app.get("/ping", response_model=S.Status, tags=["health"])
    async def ping() -> Response:
        return _json({"status": "ok"})

    @app.get("/health", response_model=S.Status, tags=["health"])
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/version", tags=["mlflow"], responses={200: {"content": {"application/json": {"schema": {
        "type": "string"}}}, "description": "mlengineer's version."}})
    async def version() -> Response:
        from .. import __version__

        return _json(__version__)

    # -- plain JSON records ----------------------------------------------------------------------------------
    @app.post("/predict", response_model=S.PredictResponse, responses=errors, tags=["predict"],
              openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/Predict"}})
    async def predict_records(request: Request) -> Response:
        body = parse_json(await request.body())
        if not isinstance(body, dict) or "records" not in body:
            raise SchemaError("The body must be a JSON object with 'records': a list of rows, each "
                              "{column: value}.")
        coverage = _coverage(body.get("interval"), "interval")
        columns, n_rows = columns_from_records(body["records"])
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="predict")
        labels = plain(pred.labels)
        if served.classification:
            names = [str(c) for c in served.model.classes]
            out = [{"prediction": lab, "probabilities": dict(zip(names, p, strict=True))}
                   for lab, p in zip(labels, pred.raw.tolist(), strict=True)]
        else:
            out = [{"prediction": lab} for lab in labels]
        if coverage is not None:
            _add_to_rows(out, _uncertainty(served, pred.raw, coverage))
        answer: dict[str, Any] = {"predictions": out, "model_version": served.version}
        if item.warnings:
            answer["warnings"] = item.warnings
        return _json(answer)

    # -- operations ------------------------------------------------------------------------------------------
    @app.get("/metrics", tags=["operations"], responses={200: {"content": {"text/plain": {"schema": {
        "type": "string"}}}, "description": "Prometheus metrics."}, 401: errors[401]})
    async def metrics() -> Response:
        from .metrics import CONTENT_TYPE_LATEST

        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = doc.setdefault("components", {})
        comps.setdefault("schemas", {})["Record"] = S.record_schema(service.served)
        for name, schema in S.InferRequest.model_json_schema(ref_template="#/components/schemas/{model}").get(
                "$defs", {}).items():
            comps["schemas"].setdefault(name, schema)
        infer_schema = S.InferRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        infer_schema.pop("$defs", None)
        comps["schemas"]["InferRequest"] = infer_schema
        # the only names and versions there are, so generated requests (and readers) reach the model
        for ops in doc.get("paths", {}).values():
            for op in ops.values():
                for param in op.get("parameters", []):
                    if param.get("name") == "model_name":
                        param["schema"] = {"type": "string", "enum": [service.served.name]}
                    elif param.get("name") == "model_version":
                        param["schema"] = {"type": "string", "enum": [service.served.version]}
        bodies = S.request_bodies(service.served)
        comps["requestBodies"] = {"Predict": bodies["/predict"], "Invocations": bodies["/invocations"],
                                  "Infer": bodies["/infer"]}
        if settings.resolved_api_key():
            comps["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                        "Bearer": {"type": "http", "scheme": "bearer"}}
            doc["security"] = [{"ApiKey": []}, {"Bearer": []}]
            for path, ops in doc.get("paths", {}).items():
                if path in OPEN_PATHS:
                    for op in ops.values():
                        op["security"] = []
        app.openapi_schema = doc
        return doc

    from .explain import explain_router

    app.include_router(explain_router(lambda: service.served.model))
    app.openapi = openapi  # type: ignore[method-assign]
    service.on_swap.append(lambda _: setattr(app, "openapi_schema", None))
    return app


def _coverage(value: Any, field: str) -> float | None:
    """The coverage a request asks ranges or sets for (``"interval": 0.9``), or None if it asks none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise SchemaError(f"Field {field!r} must be a coverage between 0 and 1, such as 0.9; got {value!r}.")
    return float(value)


def _uncertainty(served: ServedModel, raw: np.ndarray, coverage: float) -> dict[str, list[Any]]:
    """Conformal ranges (regression: ``lower``, ``upper``) or label sets (``prediction_set``) per row."""
    model = served.model
    try:
        if served.classification:
            return {"prediction_set": [list(s) for s in model.prediction_set(raw, coverage)]}
        lower, upper = model.prediction_interval(raw, coverage)
    except MLEngineerError as e:  # a bundle without calibration rows: the request asked too much of it
        raise SchemaError(f"Field 'interval': {e}") from None
    return {"lower": np.asarray(lower, dtype=float).tolist(), "upper": np.asarray(upper, dtype=float).tolist()}


def _add_to_rows(rows: list[dict[str, Any]], columns: dict[str, list[Any]]) -> None:
    """Each column's value set into its row, in place."""
    for key, values in columns.items():
        for row, v in zip(rows, values, strict=True):
            row[key] = v


def _wrap(model: Model, settings: ServeSettings) -> ServedModel:
    from .validation import RequestValidator

    return ServedModel(model=model, version="1", source=model.name,
                       validator=RequestValidator(model, unseen_categories=settings.unseen_categories,
                                                  extra_columns=settings.extra_columns))


def _oip_input_type(role: str) -> str:
    return {"numeric": "FP64", "boolean": "BOOL"}.get(role, "BYTES")
