"""MLflow's scoring protocol: ``POST /invocations`` (JSON or CSV), ``GET /ping``, ``GET /health`` and
``GET /version``, answered as ``mlflow models serve`` answers them, so MLflow's clients work unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import schemas as S
from ..csvbody import charset_of
from ..errors import UnsupportedMediaType
from ..protocols import columns_from_csv, columns_from_mlflow, mlflow_params, parse_json, plain, shown
from .common import add_to_rows, json_response, package_version, requested_coverage, uncertainty

if TYPE_CHECKING:
    from ..service import Service

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    """MLflow's scoring routes over ``service``."""
    r = APIRouter()

    @r.post("/invocations", response_model=S.InvocationsResponse, responses=S.ERROR_RESPONSES, tags=["mlflow"],
            openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/Invocations"}})
    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        mime = content_type.split(";")[0].strip().lower()
        coverage = None
        if mime == "text/csv":
            columns, n_rows = columns_from_csv(await request.body(), charset_of(content_type))
        elif mime == "application/json" or mime.endswith("+json"):
            parsed = parse_json(await request.body())
            columns, n_rows = columns_from_mlflow(parsed)
            coverage = requested_coverage(mlflow_params(parsed).get("interval"), "params.interval")
        else:  # none at all too, as MLflow's own server (its clients always send one)
            given = f"Content-Type {shown(content_type)} is" if mime else "A body without a Content-Type is"
            raise UnsupportedMediaType(f"{given} not read here: send application/json (dataframe_split, "
                                       "dataframe_records, instances or inputs) or text/csv.")
        served, item, pred = await service.predict(request, columns, n_rows, endpoint="invocations",
                                                   nan_is_missing=True)
        labels = plain(pred.labels)
        if served.classification:
            names = [f"proba_{c}" for c in served.model.classes]
            probs = pred.raw.tolist()
            rows = [{"prediction": lab, **dict(zip(names, p, strict=True))}
                    for lab, p in zip(labels, probs, strict=True)]
        else:
            rows = [{"prediction": lab} for lab in labels]
        if coverage is not None:
            add_to_rows(rows, uncertainty(served, pred.raw, coverage, "params.interval"))
        answer: dict[str, Any] = {"predictions": rows}
        if item.warnings:
            answer["warnings"] = item.warnings
        return json_response(answer)

    # MLflow's server answers these with a bare newline; its clients look only at the status, so valid JSON
    # costs them nothing and keeps the answers inside the OpenAPI document
    @r.get("/ping", response_model=S.Status, tags=["health"])
    async def ping() -> Response:
        return json_response({"status": "ok"})

    @r.get("/health", response_model=S.Status, tags=["health"])
    async def health() -> Response:
        return json_response({"status": "ok"})

    @r.get("/version", tags=["mlflow"], responses={200: {"content": {"application/json": {"schema": {
        "type": "string"}}}, "description": "mlengineer's version."}})
    async def version() -> Response:
        return json_response(package_version())

    return r
