"""The Schema contract: each column's role, type and observed domain, inferred from training data.

Roles and how they are inferred are in ``roles``, how values are read in ``values``; both are re-exported here.
The target is named apart. The Schema is saved in the model bundle; serving builds its request validation from
it and monitoring compares live data with its domains.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, PrivateAttr

from ..errors import DataError, SchemaError
from ._hashing import hashable_frame
from .clock import CLOCK_SHARE, TIME_OF_DAY, clock_numbers, clock_seconds, clock_share
from .roles import FEATURE_ROLES, NUMERIC_SHARE, ColumnRole, InferredRole, infer_role
from .values import (
    DATETIME_MAX,
    DATETIME_MIN,
    FALSE_TOKENS,
    MISSING_TOKENS,
    THOUSANDS_SEPARATOR,
    TRUE_TOKENS,
    as_written,
    category_key,
    detect_datetime_format,
    numbers_from_text,
    parse_datetime,
)

__all__ = [
    "DATETIME_MAX",
    "DATETIME_MIN",
    "FALSE_TOKENS",
    "FEATURE_ROLES",
    "MAX_CATEGORIES_KEPT",
    "MISSING_TOKENS",
    "NUMERIC_SHARE",
    "THOUSANDS_SEPARATOR",
    "TRUE_TOKENS",
    "Column",
    "ColumnRole",
    "Schema",
    "category_key",
    "detect_datetime_format",
    "infer_schema",
    "numbers_from_text",
    "parse_datetime",
]

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
        x = (nonnull.to_numpy(dtype=float) if numeric_dtype else clock_numbers(nonnull).to_numpy(dtype=float)
             if col.datetime_format == TIME_OF_DAY else numbers_from_text(nonnull).to_numpy(dtype=float))
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
    """Infer each column's role from ``df``; ``overrides`` (column -> role) win over inference. The durations
    the reader read as seconds (``df.attrs["source"]["seconds"]``) are numbers, whatever their values."""
    seconds = frozenset(map(str, df.attrs.get("source", {}).get("seconds", ())))
    with np.errstate(all="ignore"):  # huge or infinite values in the data are its business, not a warning
        return _infer_schema(hashable_frame(df), target, overrides, seconds)


def _as_duration(inferred: InferredRole) -> InferredRole:
    """A duration column's role: a quantity (numeric) whatever its values look like (a few whole numbers of
    seconds are no code, and seconds unique per row no identifier), unless it holds one value or none."""
    if inferred.role == ColumnRole.constant:
        return inferred
    return InferredRole(ColumnRole.numeric, "durations, read as seconds", n_unique=inferred.n_unique)


def _overridden(name: str, role: ColumnRole, inferred: InferredRole, s: pd.Series,
                nonnull: pd.Series) -> tuple[str | None, dict[str, int] | None]:
    """The date format (``TIME_OF_DAY`` for times of day) and placeholders of a column whose role the user set;
    a DataError for a role its values cannot take (a time of day has no date)."""
    fmt, tokens = inferred.fmt, inferred.tokens
    share = clock_share(nonnull)[0] if role in (ColumnRole.numeric, ColumnRole.datetime) else 0.0
    if role == ColumnRole.datetime and share >= CLOCK_SHARE:
        example = next(v for v in nonnull if clock_seconds(v) is not None)
        raise DataError(f"--column-role gives column {name!r} the role datetime, but it holds times of day without "
                        f"a date (such as {as_written(example)}), which are read as seconds since midnight: give it "
                        f"the role numeric (or leave it to inference), or write each time with its date.")
    if role == ColumnRole.datetime and not pd.api.types.is_datetime64_any_dtype(s):
        fmt = detect_datetime_format(s) or "mixed"
    elif role == ColumnRole.numeric and share >= 0.5:
        fmt = TIME_OF_DAY
    elif fmt == TIME_OF_DAY and role != ColumnRole.numeric:
        fmt = None
    if role not in (ColumnRole.numeric, ColumnRole.datetime, ColumnRole.boolean):
        tokens = None
    return fmt, tokens


def _infer_schema(df: pd.DataFrame, target: str | None = None, overrides: dict[str, str] | None = None,
                  seconds: frozenset[str] = frozenset()) -> Schema:
    """Infer each column's role from ``df``; ``overrides`` (column -> role) win over inference."""
    overrides = dict(overrides or {})
    valid = ", ".join(r.value for r in ColumnRole)
    for name, role in overrides.items():
        if name not in df.columns:
            raise DataError(f"--column-role names the column {name!r}, which the data does not have.")
        if role not in {r.value for r in ColumnRole}:
            near = difflib.get_close_matches(str(role).lower(), [r.value for r in ColumnRole], n=1, cutoff=0.6)
            raise DataError(f"--column-role gives column {name!r} the role {role!r}"
                            f"{f' (did you mean {near[0]!r}?)' if near else ''}; roles are: {valid}.")
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
        inferred = infer_role(str(name), s, nonnull, n_rows)
        if str(name) in seconds:
            inferred = _as_duration(inferred)
        role, reason, fmt = inferred.role, inferred.reason, inferred.fmt
        tokens = inferred.tokens
        if name in overrides:
            role, reason = ColumnRole(overrides[name]), "set by the user"
            fmt, tokens = _overridden(str(name), role, inferred, s, nonnull)
            if fmt == TIME_OF_DAY and role == ColumnRole.numeric:
                reason += "; times of day, read as seconds since midnight"
        col = Column(name=str(name), role=role, reason=reason, datetime_format=fmt,
                     numeric_fraction=inferred.numeric_fraction)
        columns.append(_describe(col, s, nonnull, tokens, inferred.n_unique if tokens is inferred.tokens else None))
    tgt_dtype = str(df[target].dtype) if target is not None else None
    return Schema(columns=columns, target=target, target_dtype=tgt_dtype, n_rows=n_rows, overrides=overrides)
