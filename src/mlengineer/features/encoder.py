"""From a cleaned table to the numeric matrix every model family learns from.

One encoder is fitted per training table and shared by every candidate of the search, so the table is
encoded once rather than once per model. Its output keeps categories as integer codes (tree learners use
them natively; families that need one-hot columns add ``OneHotScaler`` on top), dates as their parts, free
text as the scores of a linear model on its full TF-IDF vocabulary (out of fold on the training rows, see
``text.py``; without a target, a few dense TF-IDF components), and pictures as a block of pixels
(``images.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..data.values import digit_twins, twin_key
from .images import ImagePixels
from .text import TextFeatures

__all__ = ["DATETIME_PARTS", "FeatureEncoder", "encode_training"]

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
    text_components : dense components per free-text column when there is no target to score text by.
    task_kind, n_classes : the target's task (binary, multiclass, regression) and classes; with a target
        given to ``fit_transform``, text columns become the scores of linear text models.
    time_budget : seconds of the training's budget; text features take at most about 40% of it.
    embeddings : sentence embeddings of text: "auto" (when installed and the budget allows), "always", "never".
    latency_ms : the user's limit for one prediction; embeddings that alone take longer are left out.
    """

    def __init__(self, roles: dict[str, str] | None = None, *, max_categories: int = 1000,
                 min_category_count: int = 2, text_components: int = 32, task_kind: str | None = None,
                 n_classes: int = 0, time_budget: float | None = None, seed: int = 0, n_jobs: int = 1,
                 embeddings: str = "auto", latency_ms: float | None = None) -> None:
        self.roles = roles
        self.max_categories = max_categories
        self.min_category_count = min_category_count
        self.text_components = text_components
        self.task_kind = task_kind
        self.n_classes = n_classes
        self.time_budget = time_budget
        self.seed = seed
        self.n_jobs = n_jobs
        self.embeddings = embeddings
        self.latency_ms = latency_ms

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEncoder:
        self._fit_columns(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, *, groups: np.ndarray | None = None,
                      order: np.ndarray | None = None, **_: Any) -> np.ndarray:
        """Fit on the training table ``X`` (and the encoded target ``y``) and return its matrix, whose text
        scores are out of fold: each row scored by text models that did not see it, the folds cut as the
        validation is (``groups``: whole groups; ``order``: by time, a row scored from earlier rows only)."""
        oof = self._fit_columns(X, y, groups=groups, order=order)
        return self.transform(X, _fitted_text=oof)

    def _fit_columns(self, X: pd.DataFrame, y: Any, *, groups: np.ndarray | None = None,
                     order: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Fit every column's encoding; returns the text columns' out-of-fold blocks of the rows of ``X``."""
        roles = dict(self.roles or {})
        self.roles_ = {c: roles.get(c, "numeric") for c in X.columns if roles.get(c, "numeric") != "ignore"}
        self.categories_: dict[str, list[str]] = {}
        self.cat_lookup_: dict[str, dict[str, int]] = {}
        self.datetime_parts_: dict[str, list[str]] = {}
        self.text_models_: dict[str, Any] = {}
        self.image_models_: dict[str, ImagePixels] = {}
        oof: dict[str, np.ndarray] = {}
        n_text = sum(r == "text" for r in self.roles_.values())
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
            elif role == "text" and y is not None and self.task_kind is not None:
                budget = None if self.time_budget is None else 0.4 * self.time_budget / n_text
                text = TextFeatures(col, task_kind=self.task_kind, n_classes=self.n_classes, budget_s=budget,
                                    seed=self.seed, n_jobs=self.n_jobs, embeddings=self.embeddings,
                                    latency_ms=self.latency_ms)
                oof[col] = text.fit_transform(s, y, groups=groups, order=order)
                self.text_models_[col] = text
                names.extend(text.names)
            elif role == "text":
                self.text_models_[col] = _fit_text(s, self.text_components)
                k = self.text_models_[col]["k"]
                names.extend(f"{col}__svd{i}" for i in range(k))
                names.extend([f"{col}__words", f"{col}__chars"])
            elif role == "image":
                self.image_models_[col] = ImagePixels(col).fit(s.to_numpy(dtype=object))
                names.extend(self.image_models_[col].names)
            else:  # numeric, boolean
                names.append(col)
        self.feature_names_ = names
        self.categorical_features_ = categorical
        self.cardinalities_ = [len(self.categories_[names[i]]) for i in categorical]
        self.n_features_out_ = len(names)
        return oof

    def text_features(self, column: str) -> TextFeatures | None:
        """The fitted text features of ``column`` when they score its words (None for other columns)."""
        model = getattr(self, "text_models_", {}).get(column)
        return model if isinstance(model, TextFeatures) else None

    def image_pixels(self, column: str) -> ImagePixels | None:
        """The pixel block of image ``column``, or None."""
        return getattr(self, "image_models_", {}).get(column)

    @property
    def packages(self) -> list[str]:
        """The pip packages transforming rows needs beyond the base ones (Pillow, the embedding model)."""
        out = ["pillow"] if getattr(self, "image_models_", None) else []
        for model in getattr(self, "text_models_", {}).values():
            out += getattr(model, "packages", [])
        return list(dict.fromkeys(out))

    # -- transforming ------------------------------------------------------------------------------------
    def transform(self, X: pd.DataFrame | Mapping[str, np.ndarray], *,
                  _fitted_text: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The feature matrix of ``X``: a cleaned DataFrame, or a mapping of column name to cleaned array
        (``CleaningPlan.apply_arrays``), which is the faster form for a few rows."""
        check_is_fitted(self, "roles_")
        fitted = _fitted_text or {}
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
            elif role in ("text", "image"):
                block = self._block(col, role, values, fitted)
                out[:, j : j + block.shape[1]] = block
                j += block.shape[1]
            else:
                out[:, j] = values.astype(np.float32) if values.dtype.kind in "biuf" else \
                    pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
                j += 1
        return out

    def _block(self, col: str, role: str, values: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
        if role == "image":
            return self.image_models_[col].transform(values)
        if col in fitted:
            return fitted[col]
        model = self.text_models_[col]
        if isinstance(model, TextFeatures):
            return model.transform(values)
        return _transform_text(model, pd.Series(values, dtype=object))

    def _codes(self, col: str, values: np.ndarray) -> np.ndarray:
        lookup = self.cat_lookup_[col]
        rare = lookup.get(RARE, np.nan)
        twins = self.twins(col)

        def code(v: Any) -> float:  # a category not seen may be one seen, its digits written with or without zeros
            c = lookup.get(v)
            return c if c is not None else lookup.get(twin_key(v, twins), rare)  # type: ignore[arg-type]

        values = values.astype(object, copy=False)
        if len(values) < _SMALL:
            return np.array([np.nan if v is None or v != v else code(v) for v in values], dtype=np.float32)
        idx = pd.Index(self.categories_[col]).get_indexer(values).astype(np.float32)
        unknown = idx < 0
        if unknown.any():
            missing = pd.isna(values)
            idx[unknown & ~missing] = [code(v) for v in values[unknown & ~missing]]
            idx[missing] = np.nan
        return idx

    def twins(self, col: str) -> dict[str, str]:
        """``digit_twins`` of a column's categories, found once (an encoder pickled before has none kept)."""
        twins = self.__dict__.setdefault("twins_", {})
        if col not in twins:
            twins[col] = digit_twins(c for c in self.categories_[col] if c != RARE)
        return twins[col]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_")
        return np.asarray(self.feature_names_, dtype=object)

    def source_column(self, feature: str) -> str:
        """The input column a derived feature came from (``date__month`` -> ``date``)."""
        base = feature.split("__", 1)[0]
        return base if base in self.roles_ else feature


def encode_training(encoder: FeatureEncoder, X: pd.DataFrame, y: np.ndarray,
                    fit_rows: np.ndarray | None = None, *, groups: np.ndarray | None = None,
                    order: np.ndarray | None = None) -> np.ndarray:
    """Fit ``encoder`` on the training rows and return the matrix of every row of ``X``. With ``fit_rows``
    (positions), only those rows (and their targets) fit it, and the other rows (kept apart for
    calibration) are encoded as new rows are, so no text model learns their labels. ``groups`` and ``order``
    (one per row of ``X``): the validation's groups and time, which the text scores' folds follow."""
    if fit_rows is None:
        return encoder.fit_transform(X, y, groups=groups, order=order)
    fitted = encoder.fit_transform(X.iloc[fit_rows], y[fit_rows], groups=None if groups is None else groups[fit_rows],
                                   order=None if order is None else order[fit_rows])
    out = np.empty((len(X), fitted.shape[1]), dtype=np.float32)
    out[fit_rows] = fitted
    rest = np.setdiff1d(np.arange(len(X)), fit_rows)
    if len(rest):
        for pixels in getattr(encoder, "image_models_", {}).values():  # training rows too, though kept apart
            pixels.note_missing(X[pixels.column].iloc[rest])
        out[rest] = encoder.transform(X.iloc[rest])
    return out


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
