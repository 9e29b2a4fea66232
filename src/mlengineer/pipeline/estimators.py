"""``AutoClassifier`` and ``AutoRegressor``: the whole search behind scikit-learn's estimator contract.

They can be cloned, put in a Pipeline and passed to ``cross_val_score`` like any estimator; constructors
only store their arguments, and what fitting learns ends in ``_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..bundle.model import Model

__all__ = ["AutoClassifier", "AutoRegressor"]

_TARGET = "__target__"


def _frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


class _AutoBase(BaseEstimator):
    _task = "auto"

    def __init__(self, *, time_budget: float = 60.0, metric: str | None = None, seed: int = 0,
                 families: list[str] | None = None, max_predict_ms_per_row: float | None = None,
                 n_jobs: int = 0) -> None:
        self.time_budget = time_budget
        self.metric = metric
        self.seed = seed
        self.families = families
        self.max_predict_ms_per_row = max_predict_ms_per_row
        self.n_jobs = n_jobs

    def _fit_model(self, X: Any, y: Any, task: str) -> Model:
        from .run import train

        df = _frame(X)
        if _TARGET in df.columns:
            df = df.rename(columns={_TARGET: f"{_TARGET}_feature"})
        df[_TARGET] = np.asarray(y)
        self.feature_names_in_ = np.asarray([str(c) for c in _frame(X).columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        # every column of X is a feature: an estimator inside a Pipeline has no say on identifiers
        roles = {c: "numeric" for c in df.columns if c != _TARGET and pd.api.types.is_numeric_dtype(df[c])}
        return train(df, _TARGET, task=task, time_budget=self.time_budget, metric=self.metric, seed=self.seed,
                     families=self.families, max_predict_ms_per_row=self.max_predict_ms_per_row,
                     n_jobs=self.n_jobs, track=False, name=type(self).__name__, column_roles=roles)

    def _X(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        df = _frame(X)
        if not isinstance(X, pd.DataFrame):
            df.columns = list(self.feature_names_in_)
        return df


class AutoClassifier(ClassifierMixin, _AutoBase):
    """Searches model families within ``time_budget`` seconds and keeps the best ensemble."""

    def fit(self, X: Any, y: Any) -> AutoClassifier:
        y = np.asarray(y)
        n_classes = len(np.unique(y[~pd.isna(y)]))
        self.model_ = self._fit_model(X, y, "binary" if n_classes == 2 else "multiclass")
        self.classes_ = np.asarray(self.model_.classes)
        return self

    def predict(self, X: Any) -> np.ndarray:
        rows = self._X(X)
        return np.asarray(self.model_.predict(rows), dtype=self.classes_.dtype)

    def predict_proba(self, X: Any) -> np.ndarray:
        rows = self._X(X)
        return self.model_.predict_raw(rows)


class AutoRegressor(RegressorMixin, _AutoBase):
    """Searches model families within ``time_budget`` seconds and keeps the best ensemble."""

    def fit(self, X: Any, y: Any) -> AutoRegressor:
        self.model_ = self._fit_model(X, np.asarray(y, dtype=float), "regression")
        return self

    def predict(self, X: Any) -> np.ndarray:
        rows = self._X(X)  # first: an unfitted estimator raises NotFittedError
        return np.asarray(self.model_.predict(rows), dtype=float)
