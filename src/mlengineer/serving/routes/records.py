"""Plain JSON records: ``POST /predict`` with ``{"records": [{column: value}, ...], "interval": 0.9}`` (or the
bare list ``[{column: value}, ...]``, as other model servers take it),
answered with one ``{"prediction", "probabilities"}`` object per row, the model's version and any warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import schemas as S
from ..protocols import (
    PREDICT_FIELDS,
    check_fields,
    check_json_type,
    columns_from_records,
    parse_json,
    plain,
    records_in,
)
from .common import add_to_rows, json_response, requested_coverage, uncertainty

if TYPE_CHECKING:
    from ..service import Service

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    """``POST /predict`` over ``service``."""
    r = APIRouter()

    @r.post("/predict", response_model=S.PredictResponse, responses=S.ERROR_RESPONSES, tags=["predict"],
            openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/Predict"}})
    async def predict_records(request: Request) -> Response:
        check_json_type(request.headers.get("content-type"), "/predict")
        body = parse_json(await request.body())
        records, fields = records_in(body)
        check_fields(fields, PREDICT_FIELDS, "/predict")
        coverage = requested_coverage(fields.get("interval"), "interval")
        columns, n_rows = columns_from_records(records, nested=service.served.validator.nested)
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="predict")
        labels = plain(pred.labels)
        if served.classification:
            names = [str(c) for c in served.model.classes]
            out = [{"prediction": lab, "probabilities": dict(zip(names, p, strict=True))}
                   for lab, p in zip(labels, pred.raw.tolist(), strict=True)]
        else:
            out = [{"prediction": lab} for lab in labels]
        if coverage is not None:
            add_to_rows(out, uncertainty(served, pred.raw, coverage))
        answer: dict[str, Any] = {"predictions": out, "model_version": served.version}
        if item.warnings:
            answer["warnings"] = item.warnings
        return json_response(answer)

    return r
