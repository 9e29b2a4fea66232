"""The Schema contract: each column's role, type and observed domain, inferred from training data.

Roles: numeric, categorical (including low-cardinality whole-number codes), boolean, datetime (also parsed from
text in the common formats), text (free text), identifier (unique per row, or a running counter), constant
(one value, or none) and ignore (dropped on the user's word). The target is named apart. Every inferred role
carries the reason it was chosen, so that a user can see why and override it.

The Schema is saved in the model bundle; serving builds its request validation from it and monitoring
compares live data with its domains.
"""

from __future__ import annotations

import re
import warnings
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from ..errors import DataError, SchemaError

__all__ = ["Column", "ColumnRole", "FEATURE_ROLES", "Schema", "category_key", "infer_schema"]


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
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|index|idx|key|instant|row|record)$|^(id|uid|pk)[_\s-]|Id$", re.I)
MAX_CATEGORIES_KEPT = 2000


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

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

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


def _looks_numeric(s: pd.Series) -> pd.Series | None:
    """``s`` as floats if nearly all its text values are numbers (thousands separators allowed), else None."""
    cleaned = s.astype(str).str.strip().str.replace(r"(?<=\d),(?=\d{3}\b)", "", regex=True)
    num = pd.to_numeric(cleaned, errors="coerce")
    if num.notna().mean() >= 0.98:
        return num
    return None


_DATE_HINT = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?\s*$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y",
                 "%d.%m.%Y", "%Y-%m-%d %H:%M", "%d-%m-%Y", "%m-%d-%Y")


def detect_datetime_format(s: pd.Series) -> str | None:
    """The strftime format (or 'ISO8601'/'mixed') that parses nearly all of ``s``, or None if it is not dates."""
    sample = s.dropna().astype(str)
    if sample.empty:
        return None
    sample = sample.sample(min(len(sample), 500), random_state=0)
    if sample.str.match(_DATE_HINT).mean() < 0.95:
        return None
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(sample.str.strip(), format=fmt, errors="coerce")
        if parsed.notna().mean() >= 0.98:
            return fmt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, format="ISO8601", errors="coerce", utc=True)
    if parsed.notna().mean() >= 0.98:
        return "ISO8601"
    return None


def parse_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    """Parse ``s`` with the format found at training; unparseable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt in (None, "ISO8601", "mixed"):
                out = pd.to_datetime(s, format=fmt or "mixed", errors="coerce", utc=True)
            else:
                out = pd.to_datetime(s.astype(str).str.strip(), format=fmt, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def _infer_role(name: str, s: pd.Series, n_rows: int) -> tuple[ColumnRole, str, str | None]:
    """Role, reason, and datetime format for one column."""
    nonnull = s.dropna()
    if nonnull.empty:
        return ColumnRole.constant, "every value is missing", None
    n_unique = int(nonnull.nunique())
    if n_unique == 1:
        return ColumnRole.constant, f"a single value ({nonnull.iloc[0]!r}) in every filled row", None
    if pd.api.types.is_bool_dtype(s):
        return ColumnRole.boolean, "true/false values", None
    if pd.api.types.is_datetime64_any_dtype(s):
        return ColumnRole.datetime, "a date/time type", None
    if pd.api.types.is_numeric_dtype(s):
        values = nonnull.to_numpy(dtype=float)
        whole = bool(np.all(np.mod(values, 1) == 0))
        if n_unique == 2 and set(np.unique(values)) <= {0.0, 1.0}:
            return ColumnRole.boolean, "only 0 and 1", None
        if whole and len(nonnull) >= 20 and n_unique == len(nonnull):
            span = values.max() - values.min() + 1
            if _ID_NAME.search(name):
                return ColumnRole.identifier, "unique per row, named like an identifier", None
            if span <= 1.3 * n_rows:
                return ColumnRole.identifier, "unique per row and a running counter", None
        if whole and n_unique <= 10 and len(nonnull) >= 50 and values.min() >= 0:
            return ColumnRole.categorical, f"{n_unique} distinct whole numbers: a code", None
        return ColumnRole.numeric, "numbers", None
    # text-like: numbers written as text, dates, identifiers, free text or categories
    as_str = nonnull.astype(str)
    lower = set(as_str.str.strip().str.lower().unique()[:3])
    if n_unique == 2 and lower <= (_TRUE | _FALSE) and len(lower) == 2:
        return ColumnRole.boolean, "yes/no values", None
    if _looks_numeric(as_str) is not None and n_unique > 10:
        return ColumnRole.numeric, "numbers written as text", None
    fmt = detect_datetime_format(as_str)
    if fmt:
        return ColumnRole.datetime, f"dates written as text ({fmt})", fmt
    sample = as_str.iloc[: 5000]
    mean_words = sample.str.split().str.len().mean()
    mean_len = sample.str.len().mean()
    unique_ratio = n_unique / len(nonnull)
    if len(nonnull) >= 20 and unique_ratio > 0.999 and mean_words < 2.5:
        return ColumnRole.identifier, "unique per row", None
    if unique_ratio > 0.3 and (mean_words >= 5 or mean_len >= 40) and n_unique >= 20:
        return ColumnRole.text, f"free text ({mean_words:.0f} words on average)", None
    return ColumnRole.categorical, f"{n_unique} distinct values", None


def _describe(col: Column, s: pd.Series) -> Column:
    nonnull = s.dropna()
    col.dtype = str(s.dtype)
    col.missing_fraction = float(s.isna().mean()) if len(s) else 0.0
    col.n_unique = int(nonnull.nunique()) if len(nonnull) else 0
    if col.role == ColumnRole.numeric and len(nonnull):
        num = pd.to_numeric(nonnull, errors="coerce") if not pd.api.types.is_numeric_dtype(nonnull) else nonnull
        if not pd.api.types.is_numeric_dtype(nonnull):
            num = _looks_numeric(nonnull.astype(str))
            num = num if num is not None else pd.Series(dtype=float)
        num = num.dropna().astype(float)
        if len(num):
            col.min, col.max = float(num.min()), float(num.max())
            col.mean, col.std = float(num.mean()), float(num.std(ddof=0))
    elif col.role in (ColumnRole.categorical, ColumnRole.boolean) and len(nonnull):
        keys = nonnull.map(category_key).dropna()
        counts = keys.value_counts()
        top = counts.iloc[:MAX_CATEGORIES_KEPT]
        col.categories = [str(k) for k in top.index]
        col.frequencies = [float(v) / len(keys) for v in top.to_numpy()]
    elif col.role == ColumnRole.datetime and len(nonnull):
        parsed = parse_datetime(nonnull, col.datetime_format).dropna()
        if len(parsed):
            col.min, col.max = str(parsed.min()), str(parsed.max())
    return col


def infer_schema(df: pd.DataFrame, target: str | None = None, overrides: dict[str, str] | None = None) -> Schema:
    """Infer each column's role from ``df``; ``overrides`` (column -> role) win over inference."""
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in df.columns:
            raise DataError(f"--column-role names the column {name!r}, which the data does not have.")
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
        role, reason, fmt = _infer_role(name, s, n_rows)
        if name in overrides:
            role, reason = ColumnRole(overrides[name]), "set by the user"
            if role == ColumnRole.datetime and not pd.api.types.is_datetime64_any_dtype(s):
                fmt = detect_datetime_format(s.astype(str)) or "mixed"
        col = Column(name=name, role=role, reason=reason, datetime_format=fmt)
        columns.append(_describe(col, s))
    tgt_dtype = str(df[target].dtype) if target is not None else None
    return Schema(columns=columns, target=target, target_dtype=tgt_dtype, n_rows=n_rows, overrides=overrides)
