"""``POST /explain``: why the served model predicts what it does for the rows sent.

The app includes the router this module makes; ``get_model`` returns the model being served at the time
of the request, so explanations follow a hot-swapped model:

    app.include_router(explain_router(lambda: service.served.model))

Request: ``{"records": [{column: value, ...}, ...], "top": 5, "class": null}``. Answer:
``{"explanations": [{"prediction", "explained", "base_value", "output", "contributions": [{"column",
"value", "contribution"}, ...], "other_columns"}, ...]}``; contributions add up, with the base value, to
the output (a probability or a value). Bad rows get the server's usual 4xx ``{"error": ...}`` answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ..errors import SchemaError
from .schemas import ERROR_RESPONSES

__all__ = ["ExplainRequest", "explain_router"]

MAX_ROWS = 100  # explaining costs far more than predicting: keep one request's work bounded


class ExplainRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    records: list[dict[str, Any]] = Field(description="Rows to explain, each a JSON object of column: value.")
    top: int = Field(default=5, ge=1, le=100, description="How many columns to return per row, largest first.")
    target_class: Any = Field(default=None, alias="class",
                              description="Explain the probability of this class (default: the positive class "
                                          "of a binary model, the predicted class of a multiclass one).")


def explain_router(get_model: Callable[[], Any]) -> APIRouter:
    """An APIRouter with ``POST /explain`` for the model ``get_model()`` returns."""
    from ..explain.contributions import explain_rows

    router = APIRouter()

    @router.post("/explain", tags=["explain"], summary="Explain predictions: each column's contribution",
                 responses=ERROR_RESPONSES)
    async def explain(req: ExplainRequest) -> dict[str, Any]:
        if not req.records:
            raise SchemaError("'records' is empty: send at least one row to explain.")
        if len(req.records) > MAX_ROWS:
            raise SchemaError(f"'records' holds {len(req.records)} rows; /explain takes at most {MAX_ROWS} per request.")
        model = get_model()
        cls = req.target_class
        if cls is not None and model.task.is_classification:
            match = [c for c in model.classes if str(c) == str(cls)]
            if not match:
                raise SchemaError(f"Field 'class': {cls!r} is not a class of this model; its classes are "
                                  f"{', '.join(map(str, model.classes))}.")
            cls = match[0]
        rows = await run_in_threadpool(explain_rows, model, req.records, top=req.top, target_class=cls)
        return {"explanations": rows}

    return router
