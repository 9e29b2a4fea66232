"""How each value of a feature column is read by its role: the per-value conversions of the cleaning plan's
``Conform`` step, one definition for training, batch prediction, one record, monitoring and Spark.

Numbers (placeholders such as ``NA`` missing, ``$1,200`` a number, a duration as its seconds, a time of day as
seconds since midnight), yes/no values, category keys and dates; a value that cannot be read as its role's type
is an error at prediction time that names the column and shows the value as it reads (``08:00:00``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SchemaError
from .clock import TIME_OF_DAY, clock_seconds
from .images import check_images
from .jsontable import CONTAINERS, plain_cell
from .roles import ColumnRole
from .values import (
    DATETIME_MAX,
    DATETIME_MIN,
    FALSE_TOKENS,
    FEW_DATES,
    MISSING_TOKENS,
    TRUE_TOKENS,
    as_written,
    basic_date_text,
    category_key,
    date_forms,
    date_one,
    number_from_text,
    parse_datetime,
)

__all__ = ["at_row", "bool_one", "bool_value", "column_array", "conform_column", "conform_values", "float_one", "is_missing"]


def column_array(s: pd.Series, role: str) -> np.ndarray:
    """A column's values as the array ``conform_values`` takes: floats for number and boolean columns that
    are stored as numbers, and for durations (pandas' timedelta, read as seconds whatever the column's role, as
    the readers read a table's durations), datetime64 for stored dates, Python objects otherwise."""
    if role in ("numeric", "boolean") and pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if role in ("numeric", "categorical", "boolean") and pd.api.types.is_timedelta64_dtype(s):
        return s.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.to_numpy()
    return s.to_numpy(dtype=object, na_value=None)


def is_missing(v: Any) -> bool:
    """Whether ``v`` is no value: None, pandas' NA or NaT, or NaN."""
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def float_one(v: Any, name: str, strict: bool, placeholders: frozenset[str] = frozenset(),
              clock: bool = False) -> float:
    """One value of a number column as a float (NaN when missing); ``clock``: the column holds times of day,
    so text such as 08:30:00 is read as its seconds since midnight (a ``datetime.time`` is, in any number
    column). Unreadable: SchemaError with ``strict``, else NaN; infinity, too, is refused with ``strict``."""
    f = _float_read(v, name, strict, placeholders, clock)
    if strict and (f == _INF or f == -_INF):
        _finite(np.array([f]), name)
    return f


_INF = float("inf")


def _float_read(v: Any, name: str, strict: bool, placeholders: frozenset[str], clock: bool) -> float:
    if is_missing(v):
        return np.nan
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, dt.timedelta | np.timedelta64):  # a duration, as seconds (how tables' durations are read);
        return float(pd.Timedelta(v).total_seconds())  # before numbers: numpy's durations are integers too
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    if isinstance(v, dt.time) or (clock and isinstance(v, str)):
        seconds = clock_seconds(v)
        if seconds is not None:
            return seconds
    try:
        return number_from_text(str(v), placeholders)
    except ValueError:
        if strict:
            what = "times of day (08:30:00) or seconds since midnight" if clock else "numbers"
            raise SchemaError(f"Column {name!r} must hold {what}; got {as_written(v)}.") from None
        return np.nan


def bool_value(v: Any) -> float | None:
    """A yes/no value as 1.0 or 0.0, NaN when missing, None when it cannot be read as yes or no. The
    cleaning plan and the server's request check both read booleans through this one function."""
    if is_missing(v):
        return np.nan
    key = category_key(v)
    k = key.strip().lower() if key is not None else ""
    if k in TRUE_TOKENS:
        return 1.0
    if k in FALSE_TOKENS:
        return 0.0
    if k in MISSING_TOKENS:
        return np.nan
    return None


def bool_one(v: Any, name: str, strict: bool) -> float:
    """One value of a yes/no column as 1.0, 0.0 or NaN; unreadable: SchemaError with ``strict``, else NaN."""
    if (out := bool_value(v)) is not None:
        return out
    if strict:
        raise SchemaError(f"Column {name!r} must hold true/false values; got {as_written(v)}.")
    return np.nan


def _date_number(v: Any) -> str:  # 20240131 as the server reads it; another number refused, not read as 1970
    return basic_date_text(v) or "(a number)"


def _dates(values: np.ndarray, fmt: str | None, name: str, strict: bool) -> np.ndarray:
    """A date column's values as datetime64; a time of day without a date is no date (never today's)."""
    if values.dtype.kind == "M":
        return parse_datetime(pd.Series(values), None).to_numpy()
    obj = [None if is_missing(v) or (isinstance(v, str) and v.strip().lower() in MISSING_TOKENS) else
           _date_number(v) if isinstance(v, int | float | np.integer | np.floating) else v for v in values]
    if len(obj) <= FEW_DATES and fmt not in (None, "mixed"):
        parsed = np.array([date_one(v, fmt) for v in obj], dtype="datetime64[ns]")
    else:
        parsed = parse_datetime(pd.Series(obj, dtype=object), fmt).to_numpy()
    if strict:
        bad = np.isnat(parsed) & np.array([v is not None for v in obj], dtype=bool)
        if bad.any():
            first = values[bad.argmax()]
            alone = " (a time of day alone: write its date too)" if clock_seconds(first) is not None else ""
            raise at_row(SchemaError(f"Column {name!r} must hold dates {date_forms(fmt)}, between "
                                     f"{DATETIME_MIN.year} and {DATETIME_MAX.year}; got {as_written(first)}{alone}."),
                         int(bad.argmax()))
    return parsed


def conform_values(values: np.ndarray, role: str, fmt: str | None = None, *, name: str = "",
                   strict: bool = False, placeholders: frozenset[str] = frozenset()) -> np.ndarray:
    """One column's values in the canonical type of ``role``; with ``strict``, a value that cannot be read
    as that type raises SchemaError naming the column, but for ``placeholders`` (a number column's text that
    training read as missing: ``Conform.placeholders``). ``fmt``: a date column's format, or ``TIME_OF_DAY``
    for a number column of times of day. The same function serves every batch size, so a row predicted alone
    is treated exactly as it was in training."""
    role = ColumnRole(role)
    values = np.asarray(values)
    if role in (ColumnRole.numeric, ColumnRole.boolean):
        if values.dtype.kind in "biuf":
            out = values.astype(np.float64)
            return _finite(out, name) if strict and values.dtype.kind == "f" else out
        if values.dtype.kind == "m":  # durations, as seconds
            return pd.to_timedelta(values).total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
        if role == ColumnRole.boolean:
            return _each(values, lambda v: bool_one(v, name, strict))
        clock = fmt == TIME_OF_DAY
        out = _each(values, lambda v: _float_read(v, name, strict, placeholders, clock))
        return _finite(out, name) if strict else out
    if role == ColumnRole.datetime:
        return _dates(values, fmt, name, strict)
    if role in (ColumnRole.categorical, ColumnRole.text):  # a list as its JSON text, as the readers write it
        if values.dtype.kind == "m":  # durations, as seconds
            values = pd.to_timedelta(values).total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
        out = np.empty(len(values), dtype=object)
        out[:] = [category_key(plain_cell(v) if isinstance(v, CONTAINERS) else v) for v in values] \
            if role == ColumnRole.categorical else [plain_cell(v) if isinstance(v, CONTAINERS) else
                                                    None if is_missing(v) else str(v) for v in values]
        return out
    if role == ColumnRole.image and strict:  # a picture that cannot be read is named at prediction time
        check_images(values, name)
    return values


def _finite(out: np.ndarray, name: str) -> np.ndarray:
    """``out``, or a SchemaError where it holds infinity: no model reads it, and the server refuses it too."""
    bad = np.isinf(out)
    if bad.any():
        n = int(bad.sum())
        raise at_row(SchemaError(f"Column {name!r} holds infinity in {n:,} row{'s' if n > 1 else ''}: send a "
                                 "finite number, or no value for a missing one."), int(bad.argmax()))
    return out


def _each(values: np.ndarray, read: Any) -> np.ndarray:
    """``read`` of each value as float64; a SchemaError it raises says the value's position (``at_row``), found
    by reading them again one by one (only then: the common case stays one pass)."""
    try:
        return np.fromiter((read(v) for v in values), dtype=np.float64, count=len(values))
    except SchemaError as e:
        for i, v in enumerate(values):
            try:
                read(v)
            except SchemaError:
                raise at_row(e, i) from None
        raise


def at_row(error: SchemaError, row: int) -> SchemaError:
    """``error`` with the position (from 0) of the first value it is about in the column it read, as its ``row``:
    a caller that reads a file a chunk at a time names the file's row by it."""
    error.row = row  # type: ignore[attr-defined]
    return error


def conform_column(s: pd.Series, role: str, fmt: str | None = None, *, name: str = "", strict: bool = False,
                   placeholders: frozenset[str] = frozenset()) -> pd.Series:
    """One Series in the canonical type of ``role`` (see ``conform_values``)."""
    values = conform_values(column_array(s, role), role, fmt, name=name, strict=strict, placeholders=placeholders)
    # the array's own dtype: pandas 3 would otherwise turn strings and None into its str dtype with NaN
    return pd.Series(values, index=s.index, dtype=values.dtype)
