"""Columns made comparable: reference and live values in one form per kind, whatever their source.

A live column may come from the prediction log (numbers as float64, everything else as text) or from a user's
file (anything); the reference holds the training table's raw values. Both go through the cleaning plan's own
per-value conversion (``conform_values``), applied to each distinct value once, so 1,000,000 rows of a
category cost a factorisation, not a million Python calls:

- ``numeric``: float64 (booleans as 0/1, dates as days since 1970), NaN for missing;
- ``categorical``: integer codes into a list of category keys (-1 for missing);
- ``text``: the strings themselves.

``Prepared.unreadable`` counts values that were there but could not be read as the column's type (text in a
column of numbers): a schema problem of the live data, reported by the quality checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.clean import Conform
from ..data.conform import conform_values
from ..data.values import MISSING_TOKENS

__all__ = ["Prepared", "conformed", "drift_kinds", "prepare", "role_of", "unmonitored"]

_KIND = {"numeric": "numeric", "boolean": "numeric", "datetime": "numeric", "categorical": "categorical",
         "text": "text"}
_DAY_NS = 86_400 * 10**9


def role_of(model: Any) -> dict[str, str]:
    """Each monitored feature column's role as the model's cleaning plan conforms it (a kept identifier is a
    category); image columns are left out (see ``unmonitored``)."""
    out = {}
    for c, role in _roles(model).items():
        if role != "image":
            out[c] = role if role in _KIND else "categorical"
    return out


def unmonitored(model: Any) -> list[str]:
    """Feature columns no test compares: pictures (each row's path is its own value, so counting them as
    categories would flag every new picture; comparing their contents would need an embedding model)."""
    return [c for c, role in _roles(model).items() if role == "image"]


def _roles(model: Any) -> dict[str, str]:
    conform = next((s for s in model.plan.steps if isinstance(s, Conform)), None)
    roles = dict(conform.roles) if conform is not None else {}
    return {c: str(roles.get(c) or model.schema[c].role.value) for c in model.feature_names}


def drift_kinds(model: Any) -> dict[str, str]:
    """How each feature column is compared: numeric, categorical or text."""
    return {c: _KIND[r] for c, r in role_of(model).items()}


@dataclass
class Prepared:
    """One column's values in the comparable form of its kind."""

    name: str
    kind: str
    role: str
    values: np.ndarray  # float64 (numeric), int32 codes (categorical), object strings (text)
    categories: list[str] = field(default_factory=list)
    unreadable: int = 0
    unreadable_example: Any = None
    _sorted: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> np.ndarray:
        if self.kind == "numeric":
            return np.isnan(self.values)
        if self.kind == "categorical":
            return self.values < 0
        return pd.isna(self.values)

    def present(self) -> np.ndarray:
        """The values that are not missing."""
        return self.values[~self.missing]

    def sorted_present(self) -> np.ndarray:
        """Numbers: the present values sorted, kept after the first call (a reference is compared again and
        again; the live side of a server's gauges every few seconds)."""
        if self._sorted is None:
            self._sorted = np.sort(self.present())
        return self._sorted

    def counts(self) -> np.ndarray:
        """Categorical: how many rows hold each category (in ``categories`` order)."""
        v = self.values[self.values >= 0]
        return np.bincount(v, minlength=len(self.categories))

    def take(self, rows: np.ndarray | slice) -> Prepared:
        """The same column restricted to ``rows`` (a window)."""
        return Prepared(self.name, self.kind, self.role, self.values[rows], self.categories)


def prepare(s: pd.Series | np.ndarray, role: str, fmt: str | None = None, *, name: str = "",
            categories: list[str] | None = None) -> Prepared:
    """Values of a column with ``role`` (the plan's role) in comparable form. ``categories`` fixes the code
    order of a categorical column (the reference's), new categories are appended after it."""
    kind = _KIND.get(role, "categorical")
    s = pd.Series(s) if not isinstance(s, pd.Series) else s
    if kind == "numeric":
        return _numeric(s, role, fmt, name)
    if kind == "text":
        return Prepared(name, kind, role, np.asarray(s.astype(object).where(s.notna(), None)))
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    raw = np.asarray(uniques, dtype=object)
    keys = conform_values(raw, "categorical", name=name)
    known = list(categories or [])
    index = {k: i for i, k in enumerate(known)}
    lookup = np.empty(len(keys) + 1, dtype=np.int32)
    lookup[-1] = -1
    for i, k in enumerate(keys):
        if k is None:
            lookup[i] = -1
            continue
        if k not in index:
            index[k] = len(known)
            known.append(k)
        lookup[i] = index[k]
    return Prepared(name, kind, role, lookup[codes], known)


def _numeric(s: pd.Series, role: str, fmt: str | None, name: str) -> Prepared:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and role != "datetime":
        return _finite(Prepared(name, "numeric", role, s.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)))
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    raw = np.asarray(uniques, dtype=object)
    if role == "datetime":
        parsed = conform_values(raw, "datetime", fmt, name=name)
        ints = parsed.astype("datetime64[ns]").astype(np.int64)
        conv = np.where(np.isnat(parsed), np.nan, ints / _DAY_NS)
    else:  # a number column of times of day (fmt) reads "08:30:00" as its seconds, as the cleaning plan does
        conv = conform_values(raw, role, fmt, name=name)
    # a placeholder such as "NA" is a missing value, not a wrong one
    placeholder = np.fromiter((isinstance(v, str) and v.strip().lower() in MISSING_TOKENS for v in raw), dtype=bool,
                              count=len(raw))
    bad = np.isnan(conv) & ~placeholder
    example = raw[bad.argmax()] if bad.any() else None
    table = np.append(conv.astype(np.float64), np.nan)
    unreadable = int(np.bincount(codes[codes >= 0], minlength=len(raw))[bad].sum()) if bad.any() else 0
    return _finite(Prepared(name, "numeric", role, table[codes], unreadable=unreadable, unreadable_example=example))


def _finite(p: Prepared) -> Prepared:
    """Infinite numbers (a division by zero upstream) as unreadable values: no test or summary can use them."""
    inf = np.isinf(p.values)
    if inf.any():
        if p.unreadable_example is None:
            p.unreadable_example = str(p.values[inf.argmax()])
        p.unreadable += int(inf.sum())
        p.values[inf] = np.nan
    return p


def conformed(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's feature columns of ``frame`` as its cleaning plan conforms them at prediction (values that
    do not fit their type read as missing), each distinct value converted once: the plan's own per-value
    function, so the encoder sees exactly what ``CleaningPlan.apply`` would give it, at a fraction of the cost
    on a million rows of categories. An infinite number (a division by zero upstream) reads as missing too:
    no model can use it, and the quality checks count it as unreadable (``_finite``)."""
    conform = next((s for s in model.plan.steps if isinstance(s, Conform)), None)
    roles = dict(conform.roles) if conform is not None else {}
    fmts = dict(conform.datetime_formats) if conform is not None else {}
    out = {}
    for c in model.feature_names:
        s, role = frame[c], str(roles.get(c, "numeric"))
        if role in ("numeric", "boolean") and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[c] = _no_infinity(s.to_numpy(dtype=np.float64, na_value=np.nan))
            continue
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        values = conform_values(np.asarray(uniques, dtype=object), role, fmts.get(c), name=c)
        missing = {"numeric": np.nan, "boolean": np.nan, "datetime": np.datetime64("NaT", "ns")}.get(role)
        table = np.empty(len(values) + 1, dtype=values.dtype)
        table[:-1] = values
        table[-1] = missing
        out[c] = _no_infinity(table[codes]) if table.dtype.kind == "f" else table[codes]
    return pd.DataFrame(out, index=frame.index)


def _no_infinity(values: np.ndarray) -> np.ndarray:
    """Float values with ±inf as NaN (a copy only when there is one)."""
    inf = np.isinf(values)
    return np.where(inf, np.nan, values) if inf.any() else values
