"""The fitted encoder compiled for one cleaned record: a writer per column into a float32 row.

    encode = compile_row_encoder(encoder)   # None when a column is text or a picture
    x = encode(values)                      # (1, n_features) float32, what ``transform`` gives for one row

Every writer is decided once (the column's slot, its category lookup, its date parts), so one row costs a
dict lookup and a few float conversions per column instead of ``transform``'s arrays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.values import twin_key
from .encoder import RARE, FeatureEncoder

__all__ = ["RowEncoder", "compile_row_encoder"]

RowEncoder = Callable[[dict[str, Any]], np.ndarray]
_EPOCH = dt.datetime(1970, 1, 1)
_NS_PER_DAY = 86_400e9
_NAN = float("nan")


def compile_row_encoder(encoder: FeatureEncoder) -> RowEncoder | None:
    """``encoder.transform`` for one cleaned record (``data/row.py``'s output), or None when it has no
    one-row form (text and picture columns)."""
    roles = getattr(encoder, "roles_", None)
    if roles is None:
        return None
    writers: list[Callable[[dict[str, Any], list[float]], None]] = []
    for col, role in roles.items():
        if role == "categorical":
            writers.append(_category_writer(col, encoder.cat_lookup_[col], encoder.twins(col)))
        elif role == "datetime":
            writers.append(_date_writer(col, list(encoder.datetime_parts_[col])))
        elif role in ("numeric", "boolean"):
            writers.append(_number_writer(col))
        else:
            return None
    width = encoder.n_features_out_

    def encode(values: dict[str, Any]) -> np.ndarray:
        row: list[float] = []
        for write in writers:
            write(values, row)
        out = np.array(row, dtype=np.float32)
        if out.shape[0] != width:  # a fitted encoder this module does not know how to follow
            raise RuntimeError(f"row encoder wrote {out.shape[0]} features, the encoder has {width}")
        return out.reshape(1, width)

    return encode


def _number_writer(col: str) -> Callable[[dict[str, Any], list[float]], None]:
    def write(values: dict[str, Any], row: list[float]) -> None:
        row.append(float(values[col]))

    return write


def _category_writer(col: str, lookup: dict[str, int], twins: dict[str, str]
                     ) -> Callable[[dict[str, Any], list[float]], None]:
    rare = float(lookup.get(RARE, _NAN))
    codes = {k: float(v) for k, v in lookup.items()}

    def write(values: dict[str, Any], row: list[float]) -> None:
        v = values[col]
        if v is None:
            row.append(_NAN)
            return
        c = codes.get(v)  # else the same code written with or without leading zeros, as ``transform`` finds it
        row.append(c if c is not None else codes.get(twin_key(v, twins), rare))  # type: ignore[arg-type]

    return write


def _date_writer(col: str, parts: list[str]) -> Callable[[dict[str, Any], list[float]], None]:
    n = len(parts) + 1

    def write(values: dict[str, Any], row: list[float]) -> None:
        t = values[col]
        if t is None or np.isnat(t):
            row.extend([_NAN] * n)
            return
        ns = int(t.astype("datetime64[ns]").astype(np.int64))
        when = _EPOCH + dt.timedelta(microseconds=ns // 1000)
        got = {"year": when.year, "month": when.month, "day": when.day, "dayofweek": when.weekday(),
               "dayofyear": when.timetuple().tm_yday, "hour": when.hour, "minute": when.minute}
        row.extend(float(got[p]) for p in parts)
        row.append(ns / _NS_PER_DAY)  # days since 1970 as numpy computes them: int64 nanoseconds / 86,400e9

    return write
