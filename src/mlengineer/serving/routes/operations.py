"""Operations: ``GET /metrics``, the service's Prometheus metrics (all workers' when there are several)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response

from .. import schemas as S
from ..metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from ..service import Service

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    """``GET /metrics`` over ``service``."""
    r = APIRouter()

    @r.get("/metrics", tags=["operations"], responses={200: {"content": {"text/plain": {"schema": {
        "type": "string"}}}, "description": "Prometheus metrics."}, 401: S.ERROR_RESPONSES[401]})
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return r
