"""Windows of live rows: by time (``--window 1d``), by model version (``--by-version``), or both.

    >>> parse_window("6h")
    Timedelta('0 days 06:00:00')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["Window", "parse_window", "split_windows", "untimed"]

_WEEK_NS = 7 * 86_400 * 10**9
_MONDAY_NS = 4 * 86_400 * 10**9  # 1970-01-05, the first Monday after the epoch (a Thursday)
_UNITS = {"s": "s", "sec": "s", "m": "min", "min": "min", "h": "h", "d": "D", "day": "D", "days": "D", "w": "W",
          "week": "W", "weeks": "W"}


@dataclass
class Window:
    """A slice of the live rows: its label, positions, bounds (``end`` excluded; None for a version's rows
    not cut by time) and model version (when split by one)."""

    label: str
    rows: np.ndarray
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    version: str | None = None


def parse_window(text: str) -> pd.Timedelta:
    """A window length such as ``30m``, ``6h``, ``1d`` or ``2w``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text or "")
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None or float(m.group(1)) <= 0:
        raise ConfigError(f"--window takes a length such as 30m, 6h, 1d or 1w; got {text!r}.")
    n = float(m.group(1))
    return pd.Timedelta(weeks=n) if unit == "W" else pd.Timedelta(n, unit=unit)


def split_windows(times: pd.Series | None, versions: pd.Series | None, *, window: pd.Timedelta | None,
                  by_version: bool) -> list[Window]:
    """The windows of the rows: one per model version (``by_version``), each cut into ``window``-long
    spans of ``times`` (aligned to whole windows since 1970, in UTC; a whole number of weeks to ISO weeks,
    from Monday 00:00 UTC, and labelled by that Monday; rows without a time are in none of them). Empty
    when neither is asked for."""
    if window is None and not by_version:
        return []
    n = len(times) if times is not None else len(versions) if versions is not None else 0
    groups: list[tuple[str | None, np.ndarray]] = [(None, np.arange(n))]
    if by_version:
        if versions is None:
            raise ConfigError("--by-version needs rows that record the model version: monitor a prediction log.")
        v = versions.astype(str).to_numpy()
        groups = [(str(x), np.flatnonzero(v == x)) for x in sorted(set(v), key=_version_key)]
    out: list[Window] = []
    for version, rows in groups:
        prefix = f"version {version}" if version is not None else ""
        if window is None:
            out.append(Window(prefix, rows, version=version))
            continue
        assert times is not None
        t = pd.to_datetime(times.iloc[rows], utc=True)
        timed = t.notna().to_numpy()  # rows without a readable time belong to no window (``untimed`` counts them)
        rows, t = rows[timed], t[timed]
        ns = t.dt.as_unit("ns").astype("int64").to_numpy()
        origin = _MONDAY_NS if window.value % _WEEK_NS == 0 else 0
        start = ((ns - origin) // window.value) * window.value + origin
        for s in np.unique(start):
            begin = pd.Timestamp(int(s), unit="ns", tz="UTC")
            label = f"{prefix}, " if prefix else ""
            out.append(Window(f"{label}{_stamp(begin, window)}", rows[start == s], begin, begin + window,
                              version=version))
    return out


def untimed(times: pd.Series | None) -> int:
    """How many rows have no readable time (empty or unreadable): time windows leave them out."""
    return 0 if times is None else int(pd.to_datetime(times, utc=True).isna().sum())


def _stamp(t: pd.Timestamp, window: pd.Timedelta) -> str:
    if window >= pd.Timedelta(days=1) and t.hour == 0 and t.minute == 0:
        return t.strftime("%Y-%m-%d")
    return t.strftime("%Y-%m-%d %H:%M")


def _version_key(v: str) -> tuple[int, str]:
    return (int(v), v) if v.isdigit() else (10**9, v)
