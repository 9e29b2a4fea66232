"""Times of day, read as a quantity: seconds since midnight.

A column of times without a date (PostgreSQL's and DuckDB's ``time``, Parquet's ``time64``, an Excel time cell,
Python's ``datetime.time``, or text such as ``08:30:00``, ``8:30`` or ``8:30 pm``) has the numeric role: 08:30 is
30600 seconds. Its schema entry and the cleaning plan mark it with ``TIME_OF_DAY`` in place of a date format, so
that prediction and the server read ``"08:30:00"`` and ``30600`` alike. Such a value is never completed with
today's date, as pandas' "mixed" date parser would complete it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from .values import MISSING_TOKENS, numbers_from_text

__all__ = ["CLOCK_SHARE", "TIME_OF_DAY", "clock_numbers", "clock_seconds", "clock_share", "numbers_of", "time_columns"]

#: the "format" of a column of times of day, read as seconds since midnight (``Column.datetime_format``)
TIME_OF_DAY = "time of day"
#: a time of day written as text: 08:30, 8:30:00, 08:30:00.25, 8:30 pm, 8:30 p.m., 08:30:00Z, 08:30:00+02:00
_CLOCK = re.compile(r"(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d(?:\.\d{1,9})?))?\s*"
                    r"(?:(?P<ampm>[ap])\.?m\.?)?\s*(?P<zone>z|utc|[+-]\d{2}(?::?\d{2})?)?", re.I)
_DAY = 86400.0
#: a column holds times of day when this share of its filled values (placeholders aside) reads as times
CLOCK_SHARE = 0.95


def clock_seconds(v: Any) -> float | None:
    """Seconds since midnight of a time of day (a ``datetime.time``, or text such as 08:30:00 or 8:30 pm; a
    time with a zone is read as UTC, as zoned timestamps are); None for any other value."""
    if isinstance(v, dt.time):
        seconds = v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6
        offset = v.utcoffset()
        return (seconds - offset.total_seconds()) % _DAY if offset is not None else float(seconds)
    if not isinstance(v, str):
        return None
    m = _CLOCK.fullmatch(v.strip())
    if m is None:
        return None
    hour, minute, second = int(m["h"]), int(m["m"]), float(m["s"] or 0)
    if m["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m["ampm"].lower() == "p" else 0)
    elif hour > 24 or (hour == 24 and (minute or second)):
        return None
    seconds = hour * 3600 + minute * 60 + second
    zone = (m["zone"] or "").lower()
    if zone[:1] in ("+", "-"):
        digits = zone[1:].replace(":", "")
        shift = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
        seconds = (seconds - (shift if zone[0] == "+" else -shift)) % _DAY
    return float(seconds)


def _filled(values: pd.Series) -> pd.Series:
    """The filled values of ``values`` that are not a placeholder for a missing one ('NA', '')."""
    filled = values.dropna()
    if filled.dtype == object or isinstance(filled.dtype, pd.StringDtype):
        text = filled.map(lambda v: v.strip().lower() if isinstance(v, str) else None)
        filled = filled[~text.isin(MISSING_TOKENS).to_numpy(dtype=bool)]
    return filled


def clock_share(values: pd.Series, *, sample: int = 2000) -> tuple[float, bool]:
    """The share of ``values``' filled cells (placeholders aside; at most ``sample`` of them looked at) that are
    times of day, and whether those are typed (``datetime.time``) rather than text. (0.0, False) for a column
    of numbers or dates."""
    if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
        return 0.0, False
    head = values.iloc[:200].dropna().iloc[:50]  # most columns plainly hold no times: a look at a few first
    if not any(clock_seconds(v) is not None for v in head):
        return 0.0, False
    filled = _filled(values.iloc[: sample * 4] if len(values) > sample * 4 else values).iloc[:sample]
    if filled.empty:
        return 0.0, False
    read = [clock_seconds(v) for v in filled]
    share = sum(r is not None for r in read) / len(read)
    return share, all(isinstance(v, dt.time) for v in filled.iloc[:50])


def clock_numbers(values: pd.Series) -> pd.Series:
    """A column of times of day as seconds since midnight, the way the cleaning plan reads it: times as
    seconds, numbers (of seconds) as they are, placeholders and anything else as missing (NaN)."""
    out = numbers_from_text(values.map(lambda v: None if isinstance(v, dt.time) else v))
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        seconds = values.map(clock_seconds)
        known = seconds.notna().to_numpy(dtype=bool)
        out = out.where(~known, seconds.astype(float))
    return out.astype(np.float64)


def numbers_of(values: pd.Series) -> pd.Series:
    """A column of the numeric role as floats, as the cleaning plan reads it: numbers written as text
    ('$1,200'), and times of day as seconds since midnight where the column holds them."""
    if clock_share(values)[0] >= CLOCK_SHARE:
        return clock_numbers(values)
    return numbers_from_text(values)


def time_columns(df: pd.DataFrame) -> list[str]:
    """The columns of ``df`` that hold typed times of day (``datetime.time``: SQL's and Parquet's time types, an
    Excel time cell), to be named in the read line."""
    out = []
    for c in df.columns:
        s = df[c]
        if isinstance(s, pd.Series) and s.dtype == object:
            first = s.iloc[:1000].dropna().iloc[:1]
            if len(first) and isinstance(first.iloc[0], dt.time) and clock_share(s)[1]:
                out.append(str(c))
    return out
