"""Random forest and extra trees (scikit-learn): strong, robust baselines that need no tuning."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import FitContext, FittedModel, ModelFamily, register


class ForestModel(FittedModel):
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        X = np.nan_to_num(X, nan=-1e9) if self.params.get("_fill_nan") else X
        if self.task.is_classification:
            return self._proba(self.estimator.predict_proba(X))
        return np.asarray(self.estimator.predict(X), dtype=np.float64)

    def feature_importance(self) -> np.ndarray:
        return self.estimator.feature_importances_


class _ForestFamily(ModelFamily):
    cost = 2
    classifier: Any = None
    regressor: Any = None

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"n_estimators": 300, "max_features": "sqrt" if task.is_classification else 0.6, "min_samples_leaf": 1}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {
            "n_estimators": 300,
            "max_features": trial.suggest_float("max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        import sklearn

        cls = self.classifier if ctx.task.is_classification else self.regressor
        est = cls(random_state=ctx.seed, n_jobs=ctx.n_jobs, **params)
        # scikit-learn's trees take NaN from 1.4 on; older versions need a filler
        fill = tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 4)
        est.fit(np.nan_to_num(X, nan=-1e9) if fill else X, y, sample_weight=ctx.sample_weight)
        est.n_jobs = 1  # predicting a few rows on one thread is faster than spreading them
        return ForestModel(est, {**params, "_fill_nan": fill}, ctx.task)


@register
class RandomForestFamily(_ForestFamily):
    name = "random_forest"

    def __init__(self) -> None:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        self.classifier, self.regressor = RandomForestClassifier, RandomForestRegressor


@register
class ExtraTreesFamily(_ForestFamily):
    name = "extra_trees"

    def __init__(self) -> None:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        self.classifier, self.regressor = ExtraTreesClassifier, ExtraTreesRegressor
