"""Fast row fingerprints for finding duplicate rows: each column becomes 64-bit integers (a number's bits,
or the code of a text value among the column's distinct values), mixed across columns.

Equal rows always get equal fingerprints; unequal rows collide with a chance of about 2^-64 per pair,
which is far below anything an audit would report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["column_fingerprint", "frame_row_fingerprints", "hashable_frame", "row_fingerprints"]

_NAN = np.float64(np.nan).view(np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads every input bit over the output, vectorised."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def column_fingerprint(s: pd.Series) -> np.ndarray:
    """64-bit integers, equal exactly where the column's values are equal (missing values equal each other)."""
    if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan).copy()
        x[x == 0] = 0.0  # -0.0 and 0.0 are one value
        bits = x.view(np.uint64)
        bits[np.isnan(x)] = _NAN
        return _mix(bits)
    try:
        codes, _ = pd.factorize(s, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists): compare their text
        codes, _ = pd.factorize(s.astype(str), use_na_sentinel=True)
    return _mix(codes.astype(np.int64).view(np.uint64) + np.uint64(1))


def _is_number(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)) or pd.api.types.is_bool_dtype(s)


def frame_row_fingerprints(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``row_fingerprints`` of ``columns``, computed a block at a time: the columns of numbers in blocks of
    about 8M cells (cheap per column of a wide table), so a long table never holds more than a block's copy."""
    n = len(df)
    kinds = {c: _is_number(df[c]) for c in columns}
    out = np.zeros(n, dtype=np.uint64)
    step = max(1, 8_000_000 // max(n, 1))
    i = 0
    pending: list[str] = []

    def fold(h: np.ndarray) -> None:
        nonlocal out, i
        with np.errstate(over="ignore"):
            out = _mix(out ^ (h + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15)))
        i += 1

    def flush() -> None:
        if not pending:
            return
        x = df[pending].to_numpy(dtype=np.float64, na_value=np.nan)
        if x.base is not None or not x.flags.writeable:
            x = x.copy()
        x[x == 0] = 0.0
        bits = x.view(np.uint64)
        bits[np.isnan(x)] = _NAN
        mixed = _mix(bits)
        for j in range(mixed.shape[1]):
            fold(mixed[:, j])
        pending.clear()

    for c in columns:
        if kinds[c]:
            pending.append(c)
            if len(pending) >= step:
                flush()
        else:
            flush()
            fold(column_fingerprint(df[c]))
    flush()
    return out


def row_fingerprints(columns: list[np.ndarray], n: int) -> np.ndarray:
    """One fingerprint per row from column fingerprints (order matters)."""
    out = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, h in enumerate(columns):
            out = _mix(out ^ (h + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15)))
    return out


_NESTED = (list, dict, set, tuple, np.ndarray)


def hashable_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df``, or a copy whose nested cells (lists, dicts, arrays: unhashable, from JSON or a user's frame)
    are their text, as ``category_key`` reads them, so counting and grouping work on every column."""
    nested = [c for c in df.columns if df[c].dtype == object
              and any(isinstance(v, _NESTED) for v in df[c].to_numpy())]
    if not nested:
        return df
    return df.assign(**{c: df[c].map(lambda v: str(v) if isinstance(v, _NESTED) else v) for c in nested})
