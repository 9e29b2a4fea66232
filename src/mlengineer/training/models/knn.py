"""k-nearest neighbours on one-hot categories and standardised numbers: a different kind of learner that an
ensemble can use where trees are blunt (smooth, low-dimensional data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler
from .base import FitContext, FittedModel, ModelFamily, register


class KNNModel(FittedModel):
    _row: Callable[[np.ndarray], np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_row"}  # a closure: rebuilt on first use

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        prep, est = self.estimator
        if len(X) <= 8:  # scikit-learn's setup costs 1 ms a call: a few rows go one at a time in numpy
            if self._row is None:
                self._row = self.row_function()
            out = [self._row(X[i : i + 1]) for i in range(len(X))]
            return np.concatenate(out) if out else self._batch(prep.transform(X))
        return self._batch(prep.transform(X))

    def _batch(self, Z: np.ndarray) -> np.ndarray:
        _, est = self.estimator
        if self.task.is_classification:
            return self._proba(est.predict_proba(Z), est.classes_)
        return np.asarray(est.predict(Z), dtype=np.float64)

    def row_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """``predict_raw`` for one encoded row (1, f) without scikit-learn's per-call setup (~1 ms): the
        one-hot row written in place, the distances to every training row by one matrix-vector product
        (``|t|^2 - 2 t.z + |z|^2``, the form scikit-learn's brute search uses; a tree search's exact
        ``sum((t - z)^2)`` for the few rows near the k-th), then scikit-learn's weights and votes. A row
        whose k-th neighbour is tied (within rounding) with the next one, among rows of different
        targets, is left to scikit-learn, so that ties break as it breaks them."""
        prep, est = self.estimator
        write = prep.row_writer()
        train = np.asarray(est._fit_X, dtype=np.float64)
        norms = np.einsum("ij,ij->i", train, train)
        y = np.asarray(est._y)
        k, n = int(est.n_neighbors), len(train)
        exact = est._fit_method != "brute"  # a k-d or ball tree measures (t - z)^2 sums, not the expanded form
        slack = 1e-9 * (float(norms.max(initial=0.0)) + 1.0)  # far above the expanded form's rounding
        by_distance = est.weights == "distance"
        classification = self.task.is_classification
        n_classes = len(est.classes_) if classification else 0

        def row(X: np.ndarray) -> np.ndarray:
            z = write(X)[0].astype(np.float64)  # float32 values, upcast as scikit-learn's search does
            zz = float(np.dot(z, z))
            d2 = norms - 2.0 * np.einsum("ij,j->i", train, z) + zz  # not BLAS: its threads cost 10x for one row
            if k < n:
                kth = np.partition(d2, k - 1)[k - 1]
                near = np.flatnonzero(d2 <= kth + slack)
            else:
                near = np.arange(n)
            if exact:
                d2 = np.full(n, np.inf)
                d2[near] = ((train[near] - z) ** 2).sum(axis=1)
            order = near[np.argsort(d2[near], kind="stable")]
            idx, rest = order[:k], order[k:]
            if len(rest) and d2[rest[0]] - d2[idx[-1]] <= (slack if not exact else 1e-12 * (1.0 + d2[idx[-1]])):
                edge = order[d2[order] >= d2[idx[-1]] - slack]
                if len(np.unique(y[edge])) > 1:  # a tie that decides the answer: scikit-learn breaks it
                    return self._batch(z[None, :].astype(np.float32))
            d = np.sqrt(np.maximum(d2[idx], 0.0))
            if by_distance:
                with np.errstate(divide="ignore"):
                    w = 1.0 / d
                if np.isinf(w).any():  # a training row at the query itself decides alone, as in scikit-learn
                    w = np.isinf(w).astype(np.float64)
            else:
                w = np.ones(len(idx))
            if classification:
                votes = np.zeros((1, n_classes))
                np.add.at(votes[0], y[idx], w)
                return self._proba(votes / votes.sum(), est.classes_)
            return np.asarray([float(np.dot(y[idx], w) / w.sum())])

        return row


@register
class KNNFamily(ModelFamily):
    name = "knn"
    target_range = "within"
    place = 2
    tuned = False
    packages = ("scikit-learn",)
    relative_cost = 0.3
    # every validation row is compared with the training rows: at worst the rows count twice (a tree index
    # on few columns does far better, which the probe measures)
    max_row_exponent = 2.0

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

        # scikit-learn's neighbours take no row weights: each stored row votes once, whatever its weight; rows of
        # weight 0 (which count for nothing) are left out of the stored rows, and the search still judges the
        # family by the weighted scores of its out-of-fold predictions, as every family
        if ctx.sample_weight is not None and (ctx.sample_weight > 0).any():
            X, y = X[ctx.sample_weight > 0], y[ctx.sample_weight > 0]
        prep = OneHotScaler(ctx.categorical, ctx.cardinalities, max_onehot=50).fit(X)
        Z = prep.transform(X)
        k = int(min(params.get("n_neighbors", 15), len(X)))
        cls = KNeighborsClassifier if ctx.task.is_classification else KNeighborsRegressor
        est = cls(n_neighbors=k, weights=params.get("weights", "distance"), n_jobs=1)
        est.fit(Z, y)
        return KNNModel((prep, est), params, ctx.task)
