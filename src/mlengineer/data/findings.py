"""A Finding: one thing the audit noticed about a table, with its severity and what to do about it."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

__all__ = ["Finding", "Severity", "num", "pct", "renamed_column_findings"]

Severity = Literal["info", "warning", "error"]
SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}


class Finding(BaseModel):
    """One thing the audit noticed. ``action`` is what the cleaning plan does about it, if anything.

    Severities: ``error`` misleads a model unless handled (leakage: the column is dropped); ``warning``
    deserves a look; ``info`` is handled automatically and said for the record.
    """

    check: str
    severity: Severity
    column: str | None = None
    message: str
    suggestion: str = ""
    action: Literal["none", "drop_column", "drop_rows"] = "none"
    value: float | None = None

    def line(self) -> str:
        where = f"[{self.column}] " if self.column else ""
        return f"{self.severity}: {where}{self.message}"


def renamed_column_findings(source: dict[str, object]) -> list[Finding]:
    """A warning per column the reader renamed because the file's header names it twice (``age.1``), from
    the ``source`` record ``load_table`` leaves in ``df.attrs``."""
    renamed = source.get("renamed_columns") or {}
    return [Finding(
        check="duplicate_column_names", severity="warning", column=new,
        message=f"the file names two columns {old!r}; the second was read as {new!r}.",
        suggestion=f"Give each column its own name in the file; if {new!r} holds the same values as {old!r}, "
                   f"--drop {new}.",
    ) for new, old in dict(renamed).items()]  # type: ignore[call-overload]


def num(v: float) -> str:
    """A number as a reader writes it: whole numbers and those of 1,000 or more with thousands separators and
    no decimals (26,570, not 2.657e+04), smaller ones to four significant digits."""
    v = float(v)
    if not math.isfinite(v) or abs(v) >= 1e15:
        return f"{v:.4g}"
    if v.is_integer() or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def pct(share: float) -> str:
    """A share as a percentage, never rounding a part to none or to the whole (99.96% is not 100%)."""
    if not 0 < share < 1:
        return f"{share:.0%}"
    for digits in range(0 if 0.1 <= share <= 0.9 else 1, 4):
        text = f"{share * 100:.{digits}f}"
        if float(text) not in (0.0, 100.0):
            return text + "%"
    return "<0.001%" if share < 0.5 else ">99.999%"
