"""k-nearest neighbours on one-hot categories and standardised numbers: a different kind of learner that an
ensemble can use where trees are blunt (smooth, low-dimensional data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler
from .base import FitContext, FittedModel, ModelFamily, register


class KNNModel(FittedModel):
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        prep, est = self.estimator
        Z = prep.transform(X)
        if len(X) <= 8:
            return self._few(Z)
        if self.task.is_classification:
            return self._proba(est.predict_proba(Z), est.classes_)
        return np.asarray(est.predict(Z), dtype=np.float64)

    def _few(self, Z: np.ndarray) -> np.ndarray:
        """A brute-force search in numpy for a few rows: scikit-learn's setup costs 1 ms a call."""
        _, est = self.estimator
        train = est._fit_X
        k = est.n_neighbors
        out = []
        for z in np.asarray(Z, dtype=train.dtype):
            d = np.sqrt(np.maximum(((train - z) ** 2).sum(axis=1), 0.0))
            idx = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
            if est.weights == "distance":
                w = 1.0 / np.maximum(d[idx], 1e-12)
                exact = d[idx] == 0
                if exact.any():  # a training row equal to the query decides alone, as in scikit-learn
                    w = exact.astype(float)
            else:
                w = np.ones(len(idx))
            if self.task.is_classification:
                votes = np.bincount(est._y[idx], weights=w, minlength=len(est.classes_))
                out.append(votes / votes.sum())
            else:
                out.append(float(np.dot(w, est._y[idx]) / w.sum()))
        if self.task.is_classification:
            return self._proba(np.asarray(out), est.classes_)
        return np.asarray(out, dtype=np.float64)


@register
class KNNFamily(ModelFamily):
    name = "knn"
    place = 2
    tuned = False
    packages = ("scikit-learn",)
    relative_cost = 0.3

    def supports(self, task: Any, n_rows: int, n_features: int) -> bool:
        # a query scans every training row: beyond this it is slow to predict and rarely helps
        return n_rows * max(n_features, 1) <= 5_000_000

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"n_neighbors": 15, "weights": "distance"}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {"n_neighbors": trial.suggest_int("n_neighbors", 3, 60, log=True),
                "weights": trial.suggest_categorical("weights", ["uniform", "distance"])}

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        prep = OneHotScaler(ctx.categorical, ctx.cardinalities, max_onehot=50).fit(X)
        Z = prep.transform(X)
        k = int(min(params.get("n_neighbors", 15), len(X)))
        cls = KNeighborsClassifier if ctx.task.is_classification else KNeighborsRegressor
        est = cls(n_neighbors=k, weights=params.get("weights", "distance"), n_jobs=1)
        est.fit(Z, y)
        return KNNModel((prep, est), params, ctx.task)
