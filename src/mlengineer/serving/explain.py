"""``explain_router(get_model)``: ``POST /explain`` for a bare Model, outside the served app.

The server includes ``routes/explain.py``'s router over its Service; this wraps a function that returns a
Model so the same route (and the same validation as ``/predict``, with the default policies) serves it:

    app.include_router(explain_router(lambda: model))
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from ..bundle.model import Model
from .routes.explain import ExplainRequest
from .routes.explain import explain_router as _route
from .runtime import ServedModel
from .service import served_from_model
from .settings import ServeSettings

__all__ = ["ExplainRequest", "explain_router"]


def explain_router(get_model: Callable[[], Model]) -> APIRouter:
    """An APIRouter with ``POST /explain`` for the model ``get_model()`` returns at each request."""
    settings = ServeSettings(model="", prediction_log=None)
    last: list[ServedModel] = []

    def served() -> ServedModel:
        model = get_model()
        if not last or last[0].model is not model:  # a validator per model, built once
            last[:] = [served_from_model(model, settings)]
        return last[0]

    return _route(served, max_batch_rows=settings.max_batch_rows)
