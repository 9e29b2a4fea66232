"""Numbers far outside a column's training range: the one rule the server's warnings (``RequestValidator``) and
``mlengineer predict``'s notes (``batch.InputNotes``) share, and the words both say it in.

A number is far when it lies beyond the schema's ``min`` or ``max`` by more than the distance between them
(the range's width; for a column that held one value, that value's size, or 1): an Excel percent cell learnt
as 0.181 sent as a CSV's 18.1, grams where kilograms were learnt. Numbers merely beyond the range are not:
a model meets some every day.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["far_bounds", "far_note", "number_text", "rows_holding", "training_ranges"]


def training_ranges(model: Any, roles: Mapping[str, str]) -> dict[str, tuple[float, float]]:
    """The training ``(min, max)`` of each number column of ``roles`` whose schema records both."""
    by_name = {c.name: c for c in model.schema.columns}
    out = {}
    for name, role in roles.items():
        col = by_name.get(name)
        if role == "numeric" and col is not None and all(
                isinstance(b, int | float) and not isinstance(b, bool) for b in (col.min, col.max)):
            out[name] = (float(col.min), float(col.max))
    return out


def far_bounds(low: float, high: float) -> tuple[float, float]:
    """The numbers below the first or above the second are far outside the training range ``low`` to ``high``."""
    width = high - low or max(abs(low), abs(high), 1.0)
    return low - width, high + width


def far_note(name: str, rows: int, span: tuple[float, float], example: float, *, row: int | None = None) -> str:
    """The line saying a column's numbers are far outside its training range ``span`` (``row``: where the
    example is, in a request)."""
    low, high = span
    at = f" in row {row}" if row is not None else ""
    return (f"Column {name!r}: {rows_holding(rows, 'a number', 'numbers')} far outside the training range "
            f"({number_text(low)} to {number_text(high)}; e.g. {number_text(example)}{at}): check their unit or scale.")


def rows_holding(n: int, one: str, many: str) -> str:
    """``1 row holds a number``, ``1,200 rows hold numbers``."""
    return f"1 row holds {one}" if n == 1 else f"{n:,} rows hold {many}"


def number_text(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
