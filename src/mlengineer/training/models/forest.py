"""Random forest and extra trees (scikit-learn): strong, robust baselines that need no tuning.

Trees are grown in chunks so that a fit stops at its time limit with the trees it has; a few rows are
predicted through ``TreePack`` (30x faster than scikit-learn for one row), many through scikit-learn.
Explained by TreeSHAP (the ``shap`` package, the ``explain`` extra) when the forest is small enough for it
to be quick, otherwise by path attribution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._attribution import forest_shap, path_attribution
from ._forestrow import forest_row
from ._treepack import TreePack
from .base import Attribution, FitContext, FittedModel, ModelFamily, register

_SMALL_BATCH = 16  # up to this many rows the packed walk beats scikit-learn's per-tree loop
#: most tree-node visits (rows x trees x leaves x depth^2) spent on exact TreeSHAP for a forest
EXACT_FOREST_BUDGET = 2e7


class ForestModel(FittedModel):
    _pack: TreePack | None = None
    _row: tuple[Callable[[np.ndarray], np.ndarray] | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_row"}  # a LightGBM handle: rebuilt on load

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        X = np.nan_to_num(X, nan=-1e9) if self.params.get("_fill_nan") else X
        if len(X) <= _SMALL_BATCH:
            out = self._packed().predict(X)
            if self.task.is_classification:
                return self._proba(out, self.estimator.classes_)
            return out[:, 0]
        if self.task.is_classification:
            return self._proba(self.estimator.predict_proba(X), self.estimator.classes_)
        return np.asarray(self.estimator.predict(X), dtype=np.float64)

    def _packed(self) -> TreePack:
        """The trees packed for small batches (built once; the one-row function takes its leaves' values)."""
        if self._pack is None:
            self._pack = TreePack(self.estimator, len(self.task.classes) if self.task.is_classification else 1)
        return self._pack

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_raw`` for one encoded row (1, f): the trees walked by LightGBM's single-row C call
        (``_forestrow.py``), the leaves' mean in numpy as ``TreePack`` takes it, so the same numbers a few
        times faster (deep trees: ``TreePack`` steps one level a numpy call). None where that call is missing.
        Built once per model (about a second per million nodes) and kept, never pickled."""
        if self._row is None:
            self._row = (self._make_row(),)
        return self._row[0]

    def _make_row(self) -> Callable[[np.ndarray], np.ndarray] | None:
        classification = self.task.is_classification
        walk = forest_row(self.estimator, len(self.task.classes) if classification else 1, pack=self._packed())
        if walk is None:
            return None
        fill, classes = bool(self.params.get("_fill_nan")), self.estimator.classes_ if classification else None

        def row(X: np.ndarray) -> np.ndarray:
            out = walk(np.nan_to_num(X, nan=-1e9) if fill else X)
            return self._proba(out, classes) if classification else out[:, 0]

        return row

    def prepare(self) -> None:
        """Build the fast path now rather than on the first small request."""
        self.predict_raw(np.zeros((1, self.estimator.n_features_in_), dtype=np.float32))

    def feature_importance(self) -> np.ndarray:
        return self.estimator.feature_importances_

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """TreeSHAP where it is quick and ``shap`` is installed, else path attribution; in probabilities
        or values (the forest's own output)."""
        est = self.estimator
        if self.params.get("_fill_nan"):
            X = np.nan_to_num(X, nan=-1e9)
        # exact TreeSHAP costs trees x leaves x depth^2 per row: fine for small forests, minutes for deep ones
        cost = len(X) * sum(t.tree_.n_leaves * max(t.tree_.max_depth, 1) ** 2 for t in est.estimators_)
        if cost <= EXACT_FOREST_BUDGET:
            try:
                return Attribution(*forest_shap(est, X), "output", "TreeSHAP")
            except ImportError:
                pass
        return Attribution(*path_attribution(est, X, k), "output", "path attribution")


class _ForestFamily(ModelFamily):
    target_range = "within"
    packages = ("scikit-learn",)
    relative_cost = 2.0
    classifier: Any = None
    regressor: Any = None

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        leaf = 1 if n_rows < 20_000 else 2
        if task.is_classification:
            return [{"max_features": "sqrt", "min_samples_leaf": leaf, "criterion": "gini"},
                    {"max_features": "sqrt", "min_samples_leaf": leaf, "criterion": "entropy"}]
        return [{"max_features": self.regression_max_features, "min_samples_leaf": leaf}]

    regression_max_features: Any = 1.0

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {
            "max_features": trial.suggest_float("max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        import sklearn

        total = int(params.pop("n_estimators", 300))
        total = total if ctx.max_units is None else min(total, ctx.max_units)
        cls = self.classifier if ctx.task.is_classification else self.regressor
        est = cls(random_state=ctx.seed, n_jobs=ctx.n_jobs, warm_start=True, n_estimators=0, **params)
        # scikit-learn's trees take NaN from 1.4 on; older versions need a filler
        fill = tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 4)
        Xf = np.nan_to_num(X, nan=-1e9) if fill else X
        deadline = ctx.deadline()
        chunk = 20
        while est.n_estimators < total:
            began = time.perf_counter()
            est.n_estimators = min(total, est.n_estimators + chunk)
            grown = est.n_estimators - (len(est.estimators_) if hasattr(est, "estimators_") else 0)
            est.fit(Xf, y, sample_weight=ctx.sample_weight)
            per_tree = (time.perf_counter() - began) / max(grown, 1)
            if deadline.left() < per_tree * chunk and est.n_estimators < total:
                deadline.hit = True
                break  # the next chunk would not finish in time: keep the trees grown so far
            chunk = 60
        est.n_jobs = 1  # predicting a few rows on one thread is faster than spreading them
        est.warm_start = False
        return ForestModel(est, {**params, "n_estimators": est.n_estimators, "_fill_nan": fill}, ctx.task)


@register
class RandomForestFamily(_ForestFamily):
    name = "random_forest"
    place = 7
    regression_max_features = 0.6

    def __init__(self) -> None:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        self.classifier, self.regressor = RandomForestClassifier, RandomForestRegressor


@register
class ExtraTreesFamily(_ForestFamily):
    name = "extra_trees"
    place = 6

    def __init__(self) -> None:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        self.classifier, self.regressor = ExtraTreesClassifier, ExtraTreesRegressor
