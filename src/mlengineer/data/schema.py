"""The Schema contract: each column's role, type and observed domain, inferred from training data.

Roles: numeric, categorical (including low-cardinality whole-number codes), boolean, datetime (also parsed from
text in the common formats), text (free text), identifier (unique per row, or a running counter), constant
(one value, or none) and ignore (dropped on the user's word). The target is named apart. Every inferred role
carries the reason it was chosen, so that a user can see why and override it.

Inference looks at each column's distinct values once (``value_counts``) rather than at every row, so it stays
fast on a million rows; placeholders such as ``NA`` or ``?`` in a column of numbers are read as missing values
(and remembered, so that prediction reads them the same way).

The Schema is saved in the model bundle; serving builds its request validation from it and monitoring
compares live data with its domains.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, PrivateAttr

from ..errors import DataError, SchemaError
from ._hashing import hashable_frame

__all__ = [
    "FEATURE_ROLES",
    "MISSING_TOKENS",
    "Column",
    "ColumnRole",
    "Schema",
    "category_key",
    "detect_datetime_format",
    "infer_schema",
    "parse_datetime",
]


class ColumnRole(StrEnum):
    numeric = "numeric"
    categorical = "categorical"
    boolean = "boolean"
    datetime = "datetime"
    text = "text"
    identifier = "identifier"
    constant = "constant"
    ignore = "ignore"


FEATURE_ROLES = frozenset({ColumnRole.numeric, ColumnRole.categorical, ColumnRole.boolean,
                           ColumnRole.datetime, ColumnRole.text})
#: how yes/no values are written (compared lower-cased); one definition for inference, cleaning and serving
TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0", "0.0"})
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|index|idx|key|instant|row|record)$|^(id|uid|pk)[_\s-]|Id$", re.I)
MAX_CATEGORIES_KEPT = 2000
#: text that means "no value" when it stands in a column of numbers, dates or yes/no values (compared
#: stripped and lower-cased). In a column of categories it stays a category: there "NA" or "None" may be a
#: real one (in the Ames housing data "NA" means "no pool").
MISSING_TOKENS = frozenset({"", "?", "??", "-", "--", "na", "n/a", "nan", "nat", "null", "none", "nil", "missing",
                            "#n/a", "#na", "#null!", "#value!", "#div/0!", "undefined", "(null)", "<na>"})
#: a column of text is numbers when this share of its filled cells (placeholders aside) reads as numbers;
#: the rest are reported by the audit (mixed types) and read as missing
NUMERIC_SHARE = 0.95
_EXACT_LIMIT = 50_000  # above this many distinct values, judge a column on a sample of its rows
_SAMPLE = 20_000


class Column(BaseModel):
    """One column: its role, why, and what was seen of it in the training data."""

    name: str
    role: ColumnRole
    reason: str = ""
    dtype: str = ""
    n_unique: int = 0
    missing_fraction: float = 0.0
    # numeric and datetime domain
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    # categorical and boolean domain: the most frequent values (as category keys) and their frequencies
    categories: list[str] | None = None
    frequencies: list[float] | None = None
    datetime_format: str | None = None
    # placeholders read as missing (e.g. "NA" in a column of numbers), with how many rows held them
    missing_tokens: list[str] | None = None
    n_missing_tokens: int = 0
    # for a column of text: the share of its filled rows that read as numbers (mixed types show here)
    numeric_fraction: float | None = None

    @property
    def is_feature(self) -> bool:
        return self.role in FEATURE_ROLES


class Schema(BaseModel):
    """All columns of a training table, the target among them."""

    columns: list[Column]
    target: str | None = None
    target_dtype: str | None = None
    n_rows: int = 0
    overrides: dict[str, str] = Field(default_factory=dict)

    _index: dict[str, int] = PrivateAttr(default_factory=dict)

    def __getitem__(self, name: str) -> Column:
        # a lookup table (rebuilt if the columns changed), so wide tables do not cost columns x columns
        i = self._index.get(name)
        if i is None or i >= len(self.columns) or self.columns[i].name != name:
            self._index = {c.name: j for j, c in enumerate(self.columns)}
            i = self._index.get(name)
            if i is None:
                raise KeyError(name)
        return self.columns[i]

    def __contains__(self, name: object) -> bool:
        try:
            self[name]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.is_feature and c.name != self.target]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    def by_role(self, role: ColumnRole | str) -> list[str]:
        role = ColumnRole(role)
        return [c.name for c in self.columns if c.role == role and c.name != self.target]

    def check_frame(self, df: pd.DataFrame, *, where: str = "the data") -> None:
        """Raise SchemaError naming the first feature column ``df`` lacks."""
        missing = [n for n in self.feature_names if n not in df.columns]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise SchemaError(
                f"Column {missing[0]!r}{more} is missing from {where}: the model needs "
                f"{', '.join(self.feature_names[:12])}{', ...' if len(self.feature_names) > 12 else ''}."
            )

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.model_validate_json(text)


def category_key(v: Any) -> str | None:
    """The canonical string of a categorical value, so that 3, 3.0, '3' and ' 3 ' are one category."""
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return None
        if float(v).is_integer():
            return str(int(v))
        return repr(float(v))
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if v is pd.NA or v is pd.NaT:
        return None
    s = str(v).strip()
    return s if s else None


def _show(v: Any) -> str:
    """A value as a user wrote it: 0 rather than np.float64(0.0), 'yes' quoted as text."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)


# -- dates ---------------------------------------------------------------------------------------------------
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_HINT = re.compile(
    r"^\s*(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([ap]\.?m\.?)?)?(Z|\s?[+-]\d{2}:?\d{2})?"
    rf"|\d{{1,2}}[- ]{_MONTH}[- ,]*\d{{2,4}}(\s\d{{1,2}}:\d{{2}}(:\d{{2}})?)?"
    rf"|{_MONTH}\s\d{{1,2}},?\s\d{{4}}(\s\d{{1,2}}:\d{{2}}(:\d{{2}})?)?"
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)\s*$",
    re.I,
)
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S.%f",
                 "%Y-%m-%dT%H:%M:%S.%f", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y",
                 "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p",
                 "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d-%m-%Y", "%m-%d-%Y", "%d-%b-%Y",
                 "%d %b %Y", "%d-%b-%y", "%b %d, %Y", "%B %d, %Y", "%d %B %Y", "%d/%m/%y", "%m/%d/%y")


def detect_datetime_format(s: pd.Series) -> str | None:
    """The strftime format (or 'ISO8601') that parses nearly all of ``s``, or None if it is not dates."""
    sample = s.dropna()
    if sample.empty:
        return None
    sample = sample.sample(min(len(sample), 500), random_state=0).astype(str).str.strip()
    values = sample.tolist()
    # most columns are plainly not dates: look at a few values before all of them
    if not any(_DATE_HINT.match(v) for v in values[:20]):
        return None
    if sum(1 for v in values if _DATE_HINT.match(v)) < 0.95 * len(values):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in _DATE_FORMATS:
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
            if parsed.notna().mean() >= 0.98:
                return fmt
        parsed = pd.to_datetime(sample, format="ISO8601", errors="coerce", utc=True)
    if parsed.notna().mean() >= 0.98:
        return "ISO8601"
    return None


DATETIME_MIN, DATETIME_MAX = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def parse_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    """Parse ``s`` with the format found at training; unparseable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt in (None, "ISO8601", "mixed"):
                stripped = s.map(lambda v: v.strip() if isinstance(v, str) else v) if s.dtype == object else s
                out = pd.to_datetime(stripped, format=fmt or "mixed", errors="coerce", utc=True)
            else:
                out = pd.to_datetime(s.astype(str).str.strip(), format=fmt, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    # pandas may parse to seconds or microseconds; dates outside the nanosecond range (1677-2262) become
    # missing rather than an overflow in the cast below
    out = out.where((out >= DATETIME_MIN) & (out <= DATETIME_MAX))
    return out.astype("datetime64[ns]")


# -- reading the values of a column of text ----------------------------------------------------------------
THOUSANDS_SEPARATOR = re.compile(r"(?<=\d),(?=\d{3}\b)")


def numbers_from_text(values: pd.Series) -> pd.Series:
    """``values`` (text) as floats: thousands separators allowed; anything else that is not a number is NaN."""
    cleaned = values.astype(str).str.strip().str.replace(THOUSANDS_SEPARATOR, "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce")


def _looks_numeric(s: pd.Series) -> pd.Series | None:
    """``s`` as floats if nearly all its text values are numbers (thousands separators allowed), else None."""
    num = numbers_from_text(s)
    if num.notna().mean() >= 0.98:
        return num
    return None


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
class _Inferred:
    role: ColumnRole
    reason: str
    fmt: str | None = None
    tokens: dict[str, int] | None = None
    numeric_fraction: float | None = None
    n_unique: int | None = None  # distinct filled values other than placeholders, when already counted


def _infer_numeric_dtype(name: str, nonnull: pd.Series, n_rows: int, n_unique: int) -> _Inferred:
    values = nonnull.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    whole = bool(finite.size) and bool(np.all(np.mod(finite, 1) == 0))
    if n_unique == 2 and set(np.unique(values)) <= {0.0, 1.0}:
        return _Inferred(ColumnRole.boolean, "only 0 and 1", n_unique=n_unique)
    if whole and len(nonnull) >= 20 and n_unique == len(nonnull):
        span = finite.max() - finite.min() + 1
        if _ID_NAME.search(name):
            return _Inferred(ColumnRole.identifier, "unique per row, named like an identifier", n_unique=n_unique)
        if span <= 1.3 * n_rows:
            return _Inferred(ColumnRole.identifier, "unique per row and a running counter", n_unique=n_unique)
    if whole and n_unique <= 10 and len(nonnull) >= 50 and finite.min() >= 0:
        return _Inferred(ColumnRole.categorical, f"{n_unique} distinct whole numbers: a code", n_unique=n_unique)
    return _Inferred(ColumnRole.numeric, "numbers", n_unique=n_unique)


def _is_flag(n_filled: int, n_rows: int) -> bool:
    """One value in the filled rows, but enough rows filled and empty for "filled or not" to tell something."""
    return min(n_filled, n_rows - n_filled) >= max(5, 0.01 * n_rows)


def _infer_text(name: str, nonnull: pd.Series, n_rows: int) -> _Inferred:
    """Role of a column of text (or of mixed Python values): numbers or dates written as text, yes/no,
    identifiers, free text or categories."""
    v = _value_summary(nonnull, name=name, tokens=MISSING_TOKENS)
    if v.n_unique == 0:
        return _Inferred(ColumnRole.constant, "every value is a placeholder for a missing value", tokens=v.tokens,
                         n_unique=0)
    if v.n_unique == 1 and v.tokens:  # one value beside a placeholder ('yes' / 'none'): two categories
        return _Inferred(ColumnRole.categorical, f"{1 + len(v.tokens)} distinct values", tokens={},
                         n_unique=1 + len(v.tokens))
    if v.n_unique == 1:
        if _is_flag(v.n_rows, n_rows):
            return _Inferred(ColumnRole.categorical, f"one value ({_show(v.counts.index[0])}) or empty: a flag",
                             tokens=v.tokens, n_unique=1)
        return _Inferred(ColumnRole.constant, f"a single value ({_show(v.counts.index[0])}) in every filled row",
                         tokens=v.tokens, n_unique=1)
    keys = v.keys
    numbers = pd.to_numeric(keys.str.strip().str.replace(THOUSANDS_SEPARATOR, "", regex=True), errors="coerce")
    numeric_fraction = v.share(numbers.notna().to_numpy())
    lower = keys.str.strip().str.lower()
    if v.n_unique == 2 and lower.isin(TRUE_TOKENS | FALSE_TOKENS).all() and lower.nunique() == 2:
        return _Inferred(ColumnRole.boolean, "yes/no values", tokens=v.tokens, numeric_fraction=numeric_fraction,
                         n_unique=2)
    if numeric_fraction >= NUMERIC_SHARE and v.n_unique > 10:
        return _Inferred(ColumnRole.numeric, "numbers written as text", tokens=v.tokens,
                         numeric_fraction=numeric_fraction, n_unique=v.n_unique)
    fmt = None
    if numeric_fraction < 0.5:  # dates are judged on rows, so weigh each distinct value by its rows
        rows = keys.sample(2000, weights=v.counts.to_numpy(dtype=float), replace=True, random_state=0)
        fmt = detect_datetime_format(rows)
    if fmt:
        return _Inferred(ColumnRole.datetime, f"dates written as text ({fmt})", fmt, tokens=v.tokens,
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
        return _Inferred(ColumnRole.identifier, "unique per row", tokens=tokens, numeric_fraction=numeric_fraction,
                         n_unique=n_unique)
    if unique_ratio > 0.3 and (mean_words >= 5 or mean_len >= 40) and v.n_unique >= 20:
        return _Inferred(ColumnRole.text, f"free text ({mean_words:.0f} words on average)", tokens=tokens,
                         numeric_fraction=numeric_fraction, n_unique=n_unique)
    return _Inferred(ColumnRole.categorical, f"{n_unique} distinct values", tokens=tokens,
                     numeric_fraction=numeric_fraction, n_unique=n_unique)


def _infer_role(name: str, s: pd.Series, nonnull: pd.Series, n_rows: int) -> _Inferred:
    if nonnull.empty:
        return _Inferred(ColumnRole.constant, "every value is missing", n_unique=0)
    typed = (pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
             or (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)))
    if not typed:
        return _infer_text(name, nonnull, n_rows)
    n_unique = int(nonnull.nunique())
    if n_unique == 1:
        if _is_flag(len(nonnull), n_rows):
            return _Inferred(ColumnRole.categorical, f"one value ({_show(nonnull.iloc[0])}) or empty: a flag",
                             n_unique=1)
        return _Inferred(ColumnRole.constant, f"a single value ({_show(nonnull.iloc[0])}) in every filled row",
                         n_unique=1)
    if pd.api.types.is_bool_dtype(s):
        return _Inferred(ColumnRole.boolean, "true/false values", n_unique=n_unique)
    if pd.api.types.is_datetime64_any_dtype(s):
        return _Inferred(ColumnRole.datetime, "a date/time type", n_unique=n_unique)
    return _infer_numeric_dtype(name, nonnull, n_rows, n_unique)


def _describe(col: Column, s: pd.Series, nonnull: pd.Series, tokens: dict[str, int] | None,
              n_unique: int | None) -> Column:
    col.dtype = str(s.dtype)
    n = len(s)
    n_tokens = sum((tokens or {}).values())
    col.missing_tokens = sorted(tokens) if tokens else None
    col.n_missing_tokens = n_tokens
    col.missing_fraction = float((n - len(nonnull) + n_tokens) / n) if n else 0.0
    if tokens and not pd.api.types.is_numeric_dtype(s):
        nonnull = nonnull[~nonnull.astype(str).isin(list(tokens))]
    if n_unique is None:
        n_unique = int(nonnull.nunique()) if len(nonnull) else 0
    col.n_unique = n_unique
    numeric_dtype = pd.api.types.is_numeric_dtype(nonnull) and not pd.api.types.is_bool_dtype(nonnull)
    if col.role == ColumnRole.numeric and len(nonnull):
        x = (nonnull.to_numpy(dtype=float) if numeric_dtype else numbers_from_text(nonnull).to_numpy(dtype=float))
        x = x[np.isfinite(x)]
        if len(x):
            col.min, col.max = float(x.min()), float(x.max())
            col.mean, col.std = float(x.mean()), float(x.std())
    elif col.role in (ColumnRole.categorical, ColumnRole.boolean) and len(nonnull):
        if numeric_dtype:  # numbers: count with numpy (cheap per column of a wide table)
            values, n_of = np.unique(nonnull.to_numpy(dtype=float), return_counts=True)
            keys = [category_key(v) for v in values]
            counts = n_of
        else:
            vc = nonnull.value_counts()
            keys, counts = [category_key(v) for v in vc.index], vc.to_numpy()
        # counts summed over values sharing a key (3 and "3"), most common first
        by_key: dict[str, int] = {}
        for k, c in zip(keys, counts, strict=True):
            if k is not None:
                by_key[k] = by_key.get(k, 0) + int(c)
        ranked = sorted(by_key.items(), key=lambda kv: -kv[1])[:MAX_CATEGORIES_KEPT]
        total = float(sum(by_key.values())) or 1.0
        col.categories = [k for k, _ in ranked]
        col.frequencies = [c / total for _, c in ranked]
    elif col.role == ColumnRole.datetime and len(nonnull):
        distinct = nonnull if pd.api.types.is_datetime64_any_dtype(nonnull) else pd.Series(nonnull.unique())
        parsed = parse_datetime(distinct, col.datetime_format).dropna()
        if len(parsed):
            col.min, col.max = str(parsed.min()), str(parsed.max())
    return col


def infer_schema(df: pd.DataFrame, target: str | None = None, overrides: dict[str, str] | None = None) -> Schema:
    """Infer each column's role from ``df``; ``overrides`` (column -> role) win over inference."""
    with np.errstate(all="ignore"):  # huge or infinite values in the data are its business, not a warning
        return _infer_schema(hashable_frame(df), target, overrides)


def _infer_schema(df: pd.DataFrame, target: str | None = None, overrides: dict[str, str] | None = None) -> Schema:
    """Infer each column's role from ``df``; ``overrides`` (column -> role) win over inference."""
    overrides = dict(overrides or {})
    valid = ", ".join(r.value for r in ColumnRole)
    for name, role in overrides.items():
        if name not in df.columns:
            raise DataError(f"--column-role names the column {name!r}, which the data does not have.")
        if role not in {r.value for r in ColumnRole}:
            raise DataError(f"--column-role gives column {name!r} the role {role!r}; roles are: {valid}.")
    if target is not None and target not in df.columns:
        raise DataError(
            f"Target column {target!r} is not in the data; its columns are: {', '.join(map(str, df.columns[:30]))}."
        )
    columns: list[Column] = []
    n_rows = len(df)
    for name in df.columns:
        if name == target:
            continue
        s = df[name]
        if isinstance(s, pd.DataFrame):
            raise DataError(f"The data has two columns named {name!r}: give each column its own name.")
        nonnull = s.dropna()
        inferred = _infer_role(str(name), s, nonnull, n_rows)
        role, reason, fmt = inferred.role, inferred.reason, inferred.fmt
        tokens = inferred.tokens
        if name in overrides:
            role, reason = ColumnRole(overrides[name]), "set by the user"
            if role == ColumnRole.datetime and not pd.api.types.is_datetime64_any_dtype(s):
                fmt = detect_datetime_format(s) or "mixed"
            if role not in (ColumnRole.numeric, ColumnRole.datetime, ColumnRole.boolean):
                tokens = None
        col = Column(name=str(name), role=role, reason=reason, datetime_format=fmt,
                     numeric_fraction=inferred.numeric_fraction)
        columns.append(_describe(col, s, nonnull, tokens, inferred.n_unique if tokens is inferred.tokens else None))
    tgt_dtype = str(df[target].dtype) if target is not None else None
    return Schema(columns=columns, target=target, target_dtype=tgt_dtype, n_rows=n_rows, overrides=overrides)
