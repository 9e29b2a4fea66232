"""``POST /explain``: why the served model predicts what it does for the rows sent.

Request: ``{"records": [{column: value, ...}, ...], "top": 5, "class": null}``. Answer:
``{"explanations": [{"prediction", "explained", "base_value", "output", "contributions": [{"column",
"value", "contribution"}, ...], "other_columns", "other_columns_count"}, ...]}``; contributions add up, with the
base value, to the output (a probability or a value); ``value`` is the row's value as the request sent it.

The rows take the path ``/predict``'s take: the body is read by ``protocols.parse_json``, the records by
``columns_from_records``, and ``service.validate_rows`` applies the row limit and the model's validator (NaN
and infinity refused, unknown and missing columns named), so both endpoints answer a bad body with the same
4xx and the same message. Then come /explain's own limit (``MAX_ROWS``) and its fields ``top`` and ``class``;
the validated, typed columns are what is explained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import SchemaError
from ..protocols import (
    EXPLAIN_FIELDS,
    check_fields,
    check_json_type,
    columns_from_records,
    parse_json,
    records_in,
    shown,
)
from ..runtime import ServedModel, typed_frame
from ..schemas import ERROR_RESPONSES
from ..service import validate_rows
from .common import json_response

if TYPE_CHECKING:
    from ..service import Service

__all__ = ["MAX_ROWS", "ExplainRequest", "explain_router", "openapi_schemas", "router"]

MAX_ROWS = 100  # explaining costs far more than predicting: keep one request's work bounded


# the body of POST /explain, for the OpenAPI document and for reading ``top`` and ``class`` (no docstring: it
# would become the schema's description); the records are read and validated as /predict reads them
class ExplainRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    records: list[dict[str, Any]] = Field(description="Rows to explain, each a JSON object of column: value.")
    top: int = Field(default=5, ge=1, le=100, description="How many columns to return per row, largest first.")
    target_class: Any = Field(default=None, alias="class",
                              description="Explain the probability of this class (default: the positive class "
                                          "of a binary model, the predicted class of a multiclass one).")


def openapi_schemas() -> dict[str, Any]:
    """The schemas the OpenAPI document's components gain for /explain's request body, written as FastAPI
    writes a body model's (the route reads its body itself, so FastAPI does not see the model)."""
    from fastapi.openapi.utils import get_openapi

    doc = APIRouter()

    @doc.post("/explain")
    async def explain(req: ExplainRequest) -> None:  # pragma: no cover - described, never called
        raise NotImplementedError

    return {"ExplainRequest": get_openapi(title="", version="", routes=doc.routes)["components"]["schemas"][
        "ExplainRequest"]}


_BODY_DOC: dict[str, Any] = {"requestBody": {"content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/ExplainRequest"}}}, "required": True}}


def router(service: Service) -> APIRouter:
    """``POST /explain`` over ``service``: it explains with the model being served when a request arrives."""
    return explain_router(lambda: service.served, max_batch_rows=service.settings.max_batch_rows)


def explain_router(get_served: Callable[[], ServedModel], *, max_batch_rows: int) -> APIRouter:
    """An APIRouter with ``POST /explain`` for the model ``get_served()`` returns at each request."""
    from ...explain.contributions import explain_rows

    r = APIRouter()

    @r.post("/explain", tags=["explain"], summary="Explain predictions: each column's contribution",
            response_model=dict[str, Any], responses=ERROR_RESPONSES, openapi_extra=_BODY_DOC)
    async def explain(request: Request) -> Response:
        check_json_type(request.headers.get("content-type"), "/explain")
        body = parse_json(await request.body())
        records, fields = records_in(body)
        check_fields(fields, EXPLAIN_FIELDS, "/explain")
        served = get_served()
        columns, n_rows = columns_from_records(records, nested=served.validator.nested)
        item = await validate_rows(served, columns, n_rows, limit=max_batch_rows)
        if n_rows > MAX_ROWS:
            raise SchemaError(f"'records' holds {n_rows} rows; /explain takes at most {MAX_ROWS} per request.")
        options = _options(fields)
        cls = _target_class(served.model, options.target_class)
        frame = typed_frame([item.columns], served.validator.features)
        rows = await run_in_threadpool(explain_rows, served.model, frame, top=options.top, target_class=cls)
        request.scope["mlengineer.rows"] = n_rows  # for the access log, as /predict's
        request.scope["mlengineer.version"] = served.version
        for row, record in zip(rows, records, strict=True):
            for c in row["contributions"]:
                if c["column"] in record:
                    c["value"] = record[c["column"]]
        return json_response({"explanations": rows})

    return r


def _options(body: dict[str, Any]) -> ExplainRequest:
    """The request's ``top`` and ``class``, checked by ExplainRequest (422 ``Field 'top': ...`` when wrong)."""
    try:
        return ExplainRequest.model_validate({"records": [], **{k: body[k] for k in ("top", "class") if k in body}})
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False)) from None


def _target_class(model: Any, cls: Any) -> Any:
    """The model's class a request names (matched by its text, as JSON cannot say 1 from "1"), or None."""
    if cls is None:
        return None
    if not model.task.is_classification:
        raise SchemaError(f"Field 'class': this model predicts a number ({model.task.kind}), it has no classes: "
                          "leave 'class' out.")
    match = [c for c in model.classes if str(c) == str(cls)]
    if not match:
        raise SchemaError(f"Field 'class': {shown(cls)} is not a class of this model; its classes are "
                          f"{', '.join(map(str, model.classes))}.")
    return match[0]
