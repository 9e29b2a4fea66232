"""The prediction service: a FastAPI app built around one Model bundle.

Endpoints: the Open Inference Protocol v2 (``/v2/health/live``, ``/v2/health/ready``, ``/v2``,
``/v2/models/{name}``, ``/v2/models/{name}/ready``, ``/v2/models/{name}/infer``) and ``POST /predict`` taking
JSON records. Requests are validated against the model's schema through the model's own cleaning plan;
a bad request gets a 4xx JSON answer naming the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..errors import MLEngineerError, SchemaError
from ..model import Model

__all__ = ["create_app"]


class InferInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[InferInput]
    parameters: dict[str, Any] | None = None


class PredictRequest(BaseModel):
    records: list[dict[str, Any]] = Field(description="Rows to predict, each a JSON object of column: value.")


def _frame_from_oip(req: InferRequest) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {}
    n = None
    for inp in req.inputs:
        data = inp.data
        if data and isinstance(data[0], list):  # nested [[v], [v]] as some clients send
            data = [d[0] if isinstance(d, list) and len(d) == 1 else d for d in data]
        if n is not None and len(data) != n:
            raise SchemaError(f"Input {inp.name!r} has {len(data)} values; the other inputs have {n}.")
        n = len(data)
        columns[inp.name] = data
    if not columns or not n:
        raise SchemaError("The request has no inputs: send one input per column, each with its values.")
    return pd.DataFrame(columns)


def create_app(model: Model) -> FastAPI:
    """A FastAPI app serving ``model``."""
    app = FastAPI(title=f"mlengineer: {model.name}", version="1",
                  description=f"Predicts {model.target!r} ({model.task.kind}).")
    name = model.name

    @app.exception_handler(MLEngineerError)
    async def _ours(_: Request, exc: MLEngineerError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", []) if p != "body") or "body"
        return JSONResponse({"error": f"Field {field!r}: {err.get('msg', 'invalid')}."}, status_code=422)

    def predict(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raw = model.predict_raw(df)
        return model.task.decode(raw), raw

    @app.get("/v2/health/live")
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2")
    def server_metadata() -> dict[str, Any]:
        from .. import __version__

        return {"name": "mlengineer", "version": __version__, "extensions": []}

    def model_metadata() -> dict[str, Any]:
        inputs = [{"name": c.name, "datatype": _oip_type(c.role.value), "shape": [-1]} for c in model.schema.features
                  if c.name in model.feature_names]
        outputs = [{"name": "prediction", "datatype": "BYTES" if model.task.is_classification else "FP64", "shape": [-1]}]
        if model.task.is_classification:
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(model.classes)]})
        return {"name": name, "versions": ["1"], "platform": "mlengineer", "inputs": inputs, "outputs": outputs,
                "parameters": {"task": model.task.kind, "target": model.target,
                               "classes": [str(c) for c in model.classes]}}

    @app.get("/v2/models/{model_name}")
    def get_model(model_name: str) -> dict[str, Any]:
        _check_name(model_name)
        return model_metadata()

    @app.get("/v2/models/{model_name}/ready")
    def model_ready(model_name: str) -> dict[str, Any]:
        _check_name(model_name)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{model_name}/infer")
    def infer(model_name: str, req: InferRequest) -> dict[str, Any]:
        _check_name(model_name)
        labels, raw = predict(_frame_from_oip(req))
        n = len(labels)
        outputs = []
        if model.task.is_classification:
            outputs.append({"name": "prediction", "datatype": "BYTES", "shape": [n], "data": [str(v) for v in labels]})
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [n, raw.shape[1]],
                            "data": raw.ravel().tolist()})
        else:
            outputs.append({"name": "prediction", "datatype": "FP64", "shape": [n], "data": labels.tolist()})
        return {"model_name": name, "model_version": "1", "id": req.id, "outputs": outputs}

    @app.post("/predict")
    def predict_records(req: PredictRequest) -> dict[str, Any]:
        if not req.records:
            raise SchemaError("'records' is empty: send at least one row.")
        labels, raw = predict(pd.DataFrame(req.records))
        out: list[dict[str, Any]] = []
        for i, v in enumerate(labels):
            row: dict[str, Any] = {"prediction": v.item() if isinstance(v, np.generic) else v}
            if model.task.is_classification:
                row["probabilities"] = {str(c): float(raw[i, j]) for j, c in enumerate(model.classes)}
            out.append(row)
        return {"predictions": out}

    def _check_name(model_name: str) -> None:
        if model_name != name:
            raise _NotFound(f"No model named {model_name!r} here; this server serves {name!r}.")

    return app


class _NotFound(MLEngineerError):
    http_status = 404


def _oip_type(role: str) -> str:
    return {"numeric": "FP64", "boolean": "BOOL"}.get(role, "BYTES")
