"""Each column's role, inferred from its values: numeric, categorical (including low-cardinality whole-number
codes), boolean, datetime (also parsed from text in the common formats), text (free text), image (paths of
picture files, data URIs or the pictures' bytes), identifier (unique per row, or a running counter), constant
(one value, or none) and ignore (dropped on the user's word). Every
inferred role carries the reason it was chosen, so that a user can see why and override it.

Inference looks at each column's distinct values once (``value_counts``) rather than at every row, so it stays
fast on a million rows; placeholders such as ``NA`` or ``?`` in a column of numbers are read as missing values
(and remembered, so that prediction reads them the same way).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .clock import CLOCK_SHARE, TIME_OF_DAY, clock_seconds, clock_share
from .images import looks_like_image
from .values import FALSE_TOKENS, MISSING_TOKENS, TRUE_TOKENS, detect_datetime_format, text_numbers

__all__ = ["FEATURE_ROLES", "NUMERIC_SHARE", "ColumnRole", "InferredRole", "infer_role"]


class ColumnRole(StrEnum):
    numeric = "numeric"
    categorical = "categorical"
    boolean = "boolean"
    datetime = "datetime"
    text = "text"
    image = "image"
    identifier = "identifier"
    constant = "constant"
    ignore = "ignore"


FEATURE_ROLES = frozenset({ColumnRole.numeric, ColumnRole.categorical, ColumnRole.boolean,
                           ColumnRole.datetime, ColumnRole.text, ColumnRole.image})
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|index|idx|key|instant|row|record)$|^(id|uid|pk)[_\s-]|Id$", re.I)
#: a column of text is numbers when this share of its filled cells (placeholders aside) reads as numbers;
#: the rest are reported by the audit (mixed types) and read as missing
NUMERIC_SHARE = 0.95
_EXACT_LIMIT = 50_000  # above this many distinct values, judge a column on a sample of its rows
_SAMPLE = 20_000


def _show(v: Any) -> str:
    """A value as a user wrote it: 0 rather than np.float64(0.0), 'yes' quoted as text."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)


@dataclass
class _Values:
    """The distinct values of a column's filled rows with their counts: enough to infer its role."""

    counts: pd.Series  # index: distinct values (placeholders removed), values: rows
    n_rows: int  # filled rows, placeholders removed
    exact: bool  # False when ``counts`` describes a sample of rows
    tokens: dict[str, int]  # placeholders read as missing, with their rows
    n_unique: int

    @property
    def keys(self) -> pd.Series:
        return pd.Series(self.counts.index.astype(str), index=self.counts.index)

    def share(self, mask: np.ndarray) -> float:
        total = self.counts.sum()
        return float(self.counts.to_numpy()[mask].sum() / total) if total else 0.0


def _value_summary(nonnull: pd.Series, *, name: str, tokens: frozenset[str]) -> _Values:
    try:
        counts = nonnull.value_counts(sort=False)
    except TypeError:
        raise DataError(
            f"Column {name!r} holds lists or objects (nested data): flatten it into plain columns first."
        ) from None
    n_unique = len(counts)
    exact = n_unique <= _EXACT_LIMIT
    if not exact:  # judge the kind of values on a sample of rows; count distinct values exactly
        counts = nonnull.sample(_SAMPLE, random_state=0).value_counts(sort=False)
    as_text = pd.Series(counts.index.astype(str), index=counts.index).str.strip().str.lower()
    is_token = as_text.isin(tokens).to_numpy()
    found: dict[str, int] = {}
    if is_token.any():
        scale = 1.0 if exact else len(nonnull) / counts.sum()
        for value, c in zip(counts.index[is_token], counts.to_numpy()[is_token], strict=True):
            found[str(value)] = int(round(c * scale))
        counts = counts[~is_token]
        n_unique -= int(is_token.sum())
    n_rows = len(nonnull) - sum(found.values())
    return _Values(counts=counts, n_rows=n_rows, exact=exact, tokens=found, n_unique=max(n_unique, 0))


@dataclass
class InferredRole:
    """A column's inferred role, the reason, and what was found on the way (date format, placeholders)."""

    role: ColumnRole
    reason: str
    fmt: str | None = None
    tokens: dict[str, int] | None = None
    numeric_fraction: float | None = None
    n_unique: int | None = None  # distinct filled values other than placeholders, when already counted


def _identifier_reason(name: str, finite: np.ndarray, unique_per_row: bool, n_filled: int, n_rows: int) -> str | None:
    """Why a column of whole numbers, each in one row, is an identifier (named like one, or a running
    counter); None when it is not one. Numbers stored as numbers and numbers written as text alike."""
    whole = bool(finite.size) and bool(np.all(np.mod(finite, 1) == 0))
    if not (whole and n_filled >= 20 and unique_per_row):
        return None
    if _ID_NAME.search(name):
        return "unique per row, named like an identifier"
    if finite.max() - finite.min() + 1 <= 1.3 * n_rows:
        return "unique per row and a running counter"
    return None


def _infer_numeric_dtype(name: str, nonnull: pd.Series, n_rows: int, n_unique: int) -> InferredRole:
    values = nonnull.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    whole = bool(finite.size) and bool(np.all(np.mod(finite, 1) == 0))
    if n_unique == 2 and set(np.unique(values)) <= {0.0, 1.0}:
        return InferredRole(ColumnRole.boolean, "only 0 and 1", n_unique=n_unique)
    reason = _identifier_reason(name, finite, n_unique == len(nonnull), len(nonnull), n_rows)
    if reason is not None:
        return InferredRole(ColumnRole.identifier, reason, n_unique=n_unique)
    if whole and n_unique <= 10 and len(nonnull) >= 50 and finite.min() >= 0:
        return InferredRole(ColumnRole.categorical, f"{n_unique} distinct whole numbers: a code", n_unique=n_unique)
    return InferredRole(ColumnRole.numeric, "numbers", n_unique=n_unique)


def _is_flag(n_filled: int, n_rows: int) -> bool:
    """One value in the filled rows, but enough rows filled and empty for "filled or not" to tell something."""
    return min(n_filled, n_rows - n_filled) >= max(5, 0.01 * n_rows)


def _infer_image(nonnull: pd.Series) -> InferredRole | None:
    """The image role when nearly every filled cell (of the first 500) is a picture's path, data URI or bytes."""
    head = nonnull.iloc[:500]
    looks = [looks_like_image(v) for v in head]
    if sum(looks) < max(NUMERIC_SHARE * len(head), 1):
        return None
    first = next(v for v, ok in zip(head, looks, strict=True) if ok)
    if isinstance(first, bytes | bytearray | memoryview):
        what = "the bytes of pictures"
    elif str(first).strip().startswith("data:"):
        what = "pictures as base64 data URIs"
    else:
        suffixes = sorted({str(v).strip().rsplit(".", 1)[-1].lower() for v, ok in zip(head, looks, strict=True) if ok})
        what = f"paths of image files ({', '.join('.' + x for x in suffixes[:3])})"
    return InferredRole(ColumnRole.image, what, n_unique=int(nonnull.iloc[:20_000].map(_image_key).nunique()))


def _image_key(v: Any) -> Any:
    return bytes(v) if isinstance(v, bytearray | memoryview) else v


def _text_numbers(keys: pd.Series) -> tuple[pd.Series, str]:
    """The numbers of a column's distinct texts (NaN for those that are not), and how they are written: with
    one currency symbol or a percent sign, or plainly. Numbers written with several units are not numbers."""
    numbers, units = text_numbers(keys)
    written = set(units[numbers.notna()]) - {""}
    if len(written) > 1:
        return numbers.where(units == ""), "numbers written as text"
    if written == {"%"}:
        return numbers, "percentages written with % (read as written: 18.1% is 18.1)"
    if written:
        return numbers, f"numbers written with {written.pop()}"
    return numbers, "numbers written as text"


def _text_identifier(name: str, numbers: pd.Series, v: _Values, n_rows: int) -> str | None:
    """Why a column of whole numbers written as text (an odd text cell aside: 'unknown', a 'Total' footer)
    is an identifier, as ``_identifier_reason`` tells of numbers stored as numbers; None when it is not."""
    read = numbers.notna().to_numpy()
    finite = numbers.to_numpy()[read]
    finite = finite[np.isfinite(finite)]
    counts = v.counts.to_numpy()[read]
    unique_per_row = bool((counts <= 1).all()) and len(np.unique(finite)) == len(finite) \
        and (v.exact or v.n_unique >= v.n_rows)
    n_filled = int(counts.sum()) if v.exact else v.n_rows
    return _identifier_reason(name, finite, unique_per_row, n_filled, n_rows)


def _infer_text(name: str, nonnull: pd.Series, n_rows: int) -> InferredRole:
    """Role of a column of text (or of mixed Python values): numbers or dates written as text, yes/no,
    identifiers, free text or categories."""
    image = _infer_image(nonnull)
    if image is not None:
        return image
    v = _value_summary(nonnull, name=name, tokens=MISSING_TOKENS)
    if v.n_unique == 0:
        return InferredRole(ColumnRole.constant, "every value is a placeholder for a missing value", tokens=v.tokens,
                         n_unique=0)
    if v.n_unique == 1 and v.tokens:  # one value beside a placeholder ('yes' / 'none'): two categories
        return InferredRole(ColumnRole.categorical, f"{1 + len(v.tokens)} distinct values", tokens={},
                         n_unique=1 + len(v.tokens))
    if v.n_unique == 1:
        if _is_flag(v.n_rows, n_rows):
            return InferredRole(ColumnRole.categorical, f"one value ({_show(v.counts.index[0])}) or empty: a flag",
                             tokens=v.tokens, n_unique=1)
        return InferredRole(ColumnRole.constant, f"a single value ({_show(v.counts.index[0])}) in every filled row",
                         tokens=v.tokens, n_unique=1)
    keys = v.keys
    numbers, how = _text_numbers(keys)
    numeric_fraction = v.share(numbers.notna().to_numpy())
    lower = keys.str.strip().str.lower()
    if lower.isin(TRUE_TOKENS | FALSE_TOKENS).all() and lower.isin(TRUE_TOKENS).any() and lower.isin(FALSE_TOKENS).any():
        ways = f", written {v.n_unique} ways" if v.n_unique > 2 else ""
        return InferredRole(ColumnRole.boolean, f"yes/no values{ways}", tokens=v.tokens,
                            numeric_fraction=numeric_fraction, n_unique=2)
    if numeric_fraction >= NUMERIC_SHARE and v.n_unique > 10:
        identifier = _text_identifier(name, numbers, v, n_rows)
        if identifier is not None:
            return InferredRole(ColumnRole.identifier, identifier, tokens=v.tokens,
                                numeric_fraction=numeric_fraction, n_unique=v.n_unique)
        return InferredRole(ColumnRole.numeric, how, tokens=v.tokens, numeric_fraction=numeric_fraction,
                            n_unique=v.n_unique)
    fmt = None
    if numeric_fraction < 0.5:  # dates are judged on rows, so weigh each distinct value by its rows
        rows = keys.sample(2000, weights=v.counts.to_numpy(dtype=float), replace=True, random_state=0)
        fmt = detect_datetime_format(rows)
    if fmt:
        return InferredRole(ColumnRole.datetime, f"dates written as text ({fmt})", fmt, tokens=v.tokens,
                         numeric_fraction=numeric_fraction, n_unique=v.n_unique)
    # in a column of categories a placeholder is a category of its own (Ames "NA" = none)
    tokens: dict[str, int] = {}
    sample = keys.iloc[:5000] if v.exact else keys
    mean_words = float(sample.str.split().str.len().mean())
    mean_len = float(sample.str.len().mean())
    n_filled = v.n_rows + sum(c for k, c in v.tokens.items() if k not in tokens)
    n_unique = v.n_unique + len(v.tokens) - len(tokens)
    unique_ratio = n_unique / max(n_filled, 1)
    if n_filled >= 20 and unique_ratio > 0.999 and mean_words < 2.5:
        return InferredRole(ColumnRole.identifier, "unique per row", tokens=tokens, numeric_fraction=numeric_fraction,
                         n_unique=n_unique)
    if unique_ratio > 0.3 and (mean_words >= 5 or mean_len >= 40) and v.n_unique >= 20:
        return InferredRole(ColumnRole.text, f"free text ({mean_words:.0f} words on average)", tokens=tokens,
                         numeric_fraction=numeric_fraction, n_unique=n_unique)
    return InferredRole(ColumnRole.categorical, f"{n_unique} distinct values", tokens=tokens,
                     numeric_fraction=numeric_fraction, n_unique=n_unique)


def _infer_clock(name: str, nonnull: pd.Series) -> InferredRole | None:
    """The numeric role for a column of times of day (``datetime.time`` values, or text such as 08:30:00 or
    8:30 pm), read as seconds since midnight; None for any other column, or one of a single time."""
    share, typed = clock_share(nonnull)
    if share < CLOCK_SHARE:
        return None
    v = _value_summary(nonnull, name=name, tokens=MISSING_TOKENS)
    if v.n_unique < 2:
        return None
    first = next(k for k in v.counts.index if clock_seconds(k) is not None)
    how = " (a time type)" if typed else f" written as text ({str(first).strip()})"
    return InferredRole(ColumnRole.numeric, f"times of day{how}, read as seconds since midnight", TIME_OF_DAY,
                        tokens=v.tokens, n_unique=v.n_unique)


#: what a typed column's values are, for the reason of a role inferred from them (not "written as text")
_TYPED = ((Decimal, "decimal numbers (a decimal type)"), (dt.datetime, "dates and times (a date/time type)"),
          (dt.date, "dates (a date type)"))


def _typed_reason(nonnull: pd.Series, inferred: InferredRole) -> InferredRole:
    """``inferred`` with a reason that says what a typed column holds (a Parquet decimal, a SQL date), where
    its values are of one such type: they are not numbers or dates written as text."""
    if not inferred.reason.startswith(("numbers written as text", "dates written as text")):
        return inferred
    head = nonnull.iloc[:500].tolist()
    for kind, words in _TYPED:
        if head and all(isinstance(v, kind) for v in head):
            inferred.reason = words
            break
    return inferred


def infer_role(name: str, s: pd.Series, nonnull: pd.Series, n_rows: int) -> InferredRole:
    """The role of column ``s`` (``nonnull``: its filled rows) in a table of ``n_rows``."""
    if nonnull.empty:
        return InferredRole(ColumnRole.constant, "every value is missing", n_unique=0)
    typed = (pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
             or (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)))
    if not typed:
        return _infer_clock(name, nonnull) or _typed_reason(nonnull, _infer_text(name, nonnull, n_rows))
    n_unique = int(nonnull.nunique())
    if n_unique == 1:
        if _is_flag(len(nonnull), n_rows):
            return InferredRole(ColumnRole.categorical, f"one value ({_show(nonnull.iloc[0])}) or empty: a flag",
                             n_unique=1)
        return InferredRole(ColumnRole.constant, f"a single value ({_show(nonnull.iloc[0])}) in every filled row",
                         n_unique=1)
    if pd.api.types.is_bool_dtype(s):
        return InferredRole(ColumnRole.boolean, "true/false values", n_unique=n_unique)
    if pd.api.types.is_datetime64_any_dtype(s):
        return InferredRole(ColumnRole.datetime, "a date/time type", n_unique=n_unique)
    return _infer_numeric_dtype(name, nonnull, n_rows, n_unique)
