"""The errors only the server answers with, beside mlengineer's own (``SchemaError`` is 422, ``ModelError``
404, ``ServingError`` 503). Each carries its HTTP status; the app turns any of them into ``{"error": ...}``
(``error_body``: with MLflow's ``error_code`` and ``message`` on ``/invocations``), and so does the middleware."""

from __future__ import annotations

from typing import Any

from ..errors import MLEngineerError

__all__ = ["BadRequest", "NotFound", "PayloadTooLarge", "RequestTimeout", "Unauthorized", "UnsupportedMediaType",
           "error_body"]


def error_body(message: str, status: int, path: str) -> dict[str, Any]:
    """The JSON of an error answer: ``{"error": message}``, and on ``/invocations`` also MLflow's ``error_code``
    and ``message``, which its clients read (whoever answers: a route, the app's handlers or the middleware)."""
    if path != "/invocations":
        return {"error": message}
    return {"error": message, "error_code": "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR", "message": message}


class BadRequest(MLEngineerError, ValueError):
    """The body is not JSON (or CSV) that can be read at all."""

    http_status = 400


class Unauthorized(MLEngineerError, PermissionError):
    """No API key, or the wrong one."""

    http_status = 401


class NotFound(MLEngineerError, LookupError):
    """A model name or version this server does not serve."""

    http_status = 404


class PayloadTooLarge(MLEngineerError, ValueError):
    """The body is over the size limit, or holds more rows than one request may."""

    http_status = 413


class UnsupportedMediaType(MLEngineerError, ValueError):
    """A content type the endpoint cannot read."""

    http_status = 415


class RequestTimeout(MLEngineerError, TimeoutError):
    """The request's body did not arrive within the server's read timeout."""

    http_status = 408
