"""What the routes share: the orjson answer, the coverage a request asks for, conformal ranges and sets, and
mlengineer's version (read from the installed package's metadata, not from the package root)."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import orjson
from fastapi.responses import Response

from ...errors import MLEngineerError, SchemaError
from ..protocols import shown
from ..runtime import ServedModel

__all__ = ["add_to_rows", "json_response", "package_version", "public_source", "requested_coverage", "uncertainty"]


def json_response(obj: Any, status: int = 200) -> Response:
    """``obj`` as a JSON answer, encoded by orjson (NumPy arrays and scalars included)."""
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


@cache
def package_version() -> str:
    """mlengineer's installed version ("0.0.0" when it runs from a source tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlengineer")
    except PackageNotFoundError:
        return "0.0.0"


def requested_coverage(value: Any, field: str) -> float | None:
    """The coverage a request asks ranges or sets for (``"interval": 0.9``), or None if it asks none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise SchemaError(f"Field {field!r} must be a coverage between 0 and 1, such as 0.9; got {shown(value)}.")
    return float(value)


def uncertainty(served: ServedModel, raw: np.ndarray, coverage: float, field: str = "interval") -> dict[str, list[Any]]:
    """Conformal ranges (regression: ``lower``, ``upper``) or label sets (``prediction_set``) per row; a coverage
    the bundle cannot give is refused naming the request's ``field``."""
    model = served.model
    try:
        if served.classification:
            return {"prediction_set": [list(s) for s in model.prediction_set(raw, coverage)]}
        lower, upper = model.prediction_interval(raw, coverage)
    except MLEngineerError as e:  # a bundle without calibration rows: the request asked too much of it
        raise SchemaError(f"Field {field!r}: {e}") from None
    return {"lower": np.asarray(lower, dtype=float).tolist(), "upper": np.asarray(upper, dtype=float).tolist()}


def add_to_rows(rows: list[dict[str, Any]], columns: dict[str, list[Any]]) -> None:
    """Each column's value set into its row, in place."""
    for key, values in columns.items():
        for row, v in zip(rows, values, strict=True):
            row[key] = v


def public_source(source: str) -> str:
    """Where the served model comes from, as clients may see it: a registry reference as it is, a bundle
    folder by its name only (its place on the server's disk is nobody's business)."""
    from pathlib import PurePath

    return source if source.startswith("models:/") else PurePath(source).name
