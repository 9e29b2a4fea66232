"""From a cleaned table to the numeric matrix every model family learns from.

One encoder is fitted per training table and shared by every candidate of the search, so the table is
encoded once rather than once per model. Its output keeps categories as integer codes (tree learners use
them natively; families that need one-hot columns add ``OneHotScaler`` on top), dates as their parts,
and free text as a few dense TF-IDF components.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["DATETIME_PARTS", "FeatureEncoder"]

DATETIME_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "minute")
RARE = "__rare__"
_SMALL = 64  # below this many rows a dict lookup beats building a pandas Index


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """Encode a cleaned frame (columns typed by ``CleaningPlan``) into a float32 matrix.

    Parameters
    ----------
    roles : mapping of column name to role (numeric, categorical, boolean, datetime, text).
    max_categories : most categories kept per column; rarer ones share one code.
    min_category_count : categories seen fewer times than this share the rare code.
    text_components : dense components per free-text column.
    """

    def __init__(self, roles: dict[str, str] | None = None, *, max_categories: int = 1000,
                 min_category_count: int = 2, text_components: int = 32) -> None:
        self.roles = roles
        self.max_categories = max_categories
        self.min_category_count = min_category_count
        self.text_components = text_components

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEncoder:
        roles = dict(self.roles or {})
        self.roles_ = {c: roles.get(c, "numeric") for c in X.columns if roles.get(c, "numeric") != "ignore"}
        self.categories_: dict[str, list[str]] = {}
        self.cat_lookup_: dict[str, dict[str, int]] = {}
        self.datetime_parts_: dict[str, list[str]] = {}
        self.text_models_: dict[str, Any] = {}
        names: list[str] = []
        categorical: list[int] = []
        for col, role in self.roles_.items():
            s = X[col]
            if role == "categorical":
                counts = s.dropna().value_counts()
                frequent = counts[counts >= self.min_category_count].index[: self.max_categories]
                cats = [str(c) for c in frequent]
                if len(counts) > len(frequent):
                    cats.append(RARE)
                if not cats:  # every value seen once: keep them all rather than nothing
                    cats = [str(c) for c in counts.index[: self.max_categories]]
                self.categories_[col] = cats
                self.cat_lookup_[col] = {c: i for i, c in enumerate(cats)}
                categorical.append(len(names))
                names.append(col)
            elif role == "datetime":
                parts = _datetime_parts(np.asarray(s))
                varying = [p for p in DATETIME_PARTS if len(np.unique(parts[p][~np.isnan(parts[p])])) > 1]
                self.datetime_parts_[col] = varying
                names.extend(f"{col}__{p}" for p in varying)
                names.append(f"{col}__days")
            elif role == "text":
                self.text_models_[col] = _fit_text(s, self.text_components)
                k = self.text_models_[col]["k"]
                names.extend(f"{col}__svd{i}" for i in range(k))
                names.extend([f"{col}__words", f"{col}__chars"])
            else:  # numeric, boolean
                names.append(col)
        self.feature_names_ = names
        self.categorical_features_ = categorical
        self.cardinalities_ = [len(self.categories_[names[i]]) for i in categorical]
        self.n_features_out_ = len(names)
        return self

    # -- transforming ------------------------------------------------------------------------------------
    def transform(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """The feature matrix of ``X``: a cleaned DataFrame, or a mapping of column name to cleaned array
        (``CleaningPlan.apply_arrays``), which is the faster form for a few rows."""
        check_is_fitted(self, "roles_")
        first = next(iter(self.roles_), None)
        n = len(X) if isinstance(X, pd.DataFrame) else (len(X[first]) if first is not None else 0)
        out = np.empty((n, self.n_features_out_), dtype=np.float32)
        j = 0
        for col, role in self.roles_.items():
            values = np.asarray(X[col])
            if role == "categorical":
                out[:, j] = self._codes(col, values)
                j += 1
            elif role == "datetime":
                parts = _datetime_parts(values)
                for p in self.datetime_parts_[col]:
                    out[:, j] = parts[p]
                    j += 1
                out[:, j] = parts["days"]
                j += 1
            elif role == "text":
                block = _transform_text(self.text_models_[col], pd.Series(values, dtype=object))
                out[:, j : j + block.shape[1]] = block
                j += block.shape[1]
            else:
                out[:, j] = values.astype(np.float32) if values.dtype.kind in "biuf" else \
                    pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
                j += 1
        return out

    def _codes(self, col: str, values: np.ndarray) -> np.ndarray:
        lookup = self.cat_lookup_[col]
        rare = lookup.get(RARE, np.nan)
        values = values.astype(object, copy=False)
        if len(values) < _SMALL:
            return np.array([np.nan if v is None or v != v else lookup.get(v, rare) for v in values], dtype=np.float32)
        idx = pd.Index(self.categories_[col]).get_indexer(values).astype(np.float32)
        unknown = idx < 0
        if unknown.any():
            missing = pd.isna(values)
            idx[unknown & ~missing] = rare
            idx[missing] = np.nan
        return idx

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_")
        return np.asarray(self.feature_names_, dtype=object)

    def source_column(self, feature: str) -> str:
        """The input column a derived feature came from (``date__month`` -> ``date``)."""
        base = feature.split("__", 1)[0]
        return base if base in self.roles_ else feature


def _datetime_parts(values: np.ndarray) -> dict[str, np.ndarray]:
    """Calendar parts of datetime64 values as float32 arrays (NaN where the date is missing), computed with
    numpy so that one row costs microseconds. Monday is day 0, as in pandas."""
    t = np.asarray(values)
    if t.dtype.kind != "M":
        t = pd.to_datetime(pd.Series(t, dtype=object), errors="coerce").to_numpy()
    t = t.astype("datetime64[ns]")
    missing = np.isnat(t)
    day = t.astype("datetime64[D]")
    month = t.astype("datetime64[M]")
    year = t.astype("datetime64[Y]")
    days_since_epoch = day.astype(np.int64)
    parts = {
        "year": year.astype(np.int64) + 1970,
        "month": month.astype(np.int64) % 12 + 1,
        "day": (day - month.astype("datetime64[D]")).astype(np.int64) + 1,
        "dayofweek": (days_since_epoch + 3) % 7,
        "dayofyear": (day - year.astype("datetime64[D]")).astype(np.int64) + 1,
        "hour": (t - day.astype("datetime64[ns]")).astype("timedelta64[h]").astype(np.int64),
        "minute": (t - t.astype("datetime64[h]").astype("datetime64[ns]")).astype("timedelta64[m]").astype(np.int64),
        "days": (t - np.datetime64("1970-01-01", "ns")).astype(np.int64) / 86_400e9,
    }
    out = {}
    for k, v in parts.items():
        f = v.astype(np.float32)
        f[missing] = np.nan
        out[k] = f
    return out


def _fit_text(s: pd.Series, components: int) -> dict[str, Any]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = s.fillna("").astype(str)
    vec = TfidfVectorizer(max_features=20000, ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
    try:
        tfidf = vec.fit_transform(docs)
    except ValueError:  # empty vocabulary: too few documents or only stop words
        vec = TfidfVectorizer(min_df=1, dtype=np.float32)
        tfidf = vec.fit_transform(docs.where(docs != "", "empty"))
    k = int(max(1, min(components, tfidf.shape[1] - 1, tfidf.shape[0] - 1)))
    svd = TruncatedSVD(n_components=k, random_state=0) if tfidf.shape[1] > 1 else None
    if svd is not None:
        svd.fit(tfidf)
    return {"vectorizer": vec, "svd": svd, "k": k}


def _transform_text(model: dict[str, Any], s: pd.Series) -> np.ndarray:
    docs = s.fillna("").astype(str)
    tfidf = model["vectorizer"].transform(docs)
    dense = model["svd"].transform(tfidf) if model["svd"] is not None else tfidf.toarray()[:, : model["k"]]
    words = docs.str.split().str.len().to_numpy(dtype=np.float32)
    chars = docs.str.len().to_numpy(dtype=np.float32)
    return np.column_stack([dense.astype(np.float32), words, chars])
