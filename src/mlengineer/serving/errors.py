"""The errors only the server answers with, beside mlengineer's own (``SchemaError`` is 422, ``ModelError``
404, ``ServingError`` 503). Each carries its HTTP status; the app turns any of them into ``{"error": ...}``."""

from __future__ import annotations

from ..errors import MLEngineerError

__all__ = ["BadRequest", "NotFound", "PayloadTooLarge", "Unauthorized", "UnsupportedMediaType"]


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
