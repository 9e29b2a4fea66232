"""Regularised linear models: logistic regression for classes, ridge regression for values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler
from .base import Attribution, FitContext, FittedModel, ModelFamily, register


class LinearModel(FittedModel):
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        prep, est = self.estimator
        # the model's own formula in numpy: scikit-learn's input checks cost 10x the arithmetic for one row
        return self._output(prep.transform(X) @ est.coef_.T + est.intercept_)

    def _output(self, z: np.ndarray) -> np.ndarray:
        """Probabilities or values from the margins ``z`` (n, outputs)."""
        if not self.task.is_classification:
            return np.asarray(z, dtype=np.float64).reshape(len(z)) * self.params["_y_scale"] + self.params["_y_mean"]
        from scipy.special import expit, softmax

        z = np.asarray(z, dtype=np.float64)
        if z.shape[1] == 1:  # binary: the logistic of the one margin
            p1 = expit(z[:, 0])
            p = np.column_stack([1.0 - p1, p1])
        else:
            p = softmax(z, axis=1)
        return self._proba(p, self.estimator[1].classes_)

    def row_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """``predict_raw`` for one encoded row (1, f): the one-hot row written in place
        (``OneHotScaler.row_writer``) instead of ``transform``'s blocks, then the same product in the same
        dtypes (bundle/rowpath.py calls it)."""
        prep, est = self.estimator
        coef_t, intercept = est.coef_.T, est.intercept_
        write = prep.row_writer()

        def row(X: np.ndarray) -> np.ndarray:
            return self._output(write(X) @ coef_t + intercept)

        return row

    def feature_importance(self) -> np.ndarray:
        """|coefficient| x the spread of its column, summed back onto the input features."""
        prep, est = self.estimator
        coef = np.abs(np.atleast_2d(est.coef_)).mean(axis=0) * self.params["_z_std"]
        return np.bincount(prep.source_index_, weights=coef, minlength=self.params["_n_in"])

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """Coefficient x (value - the background's average value), summed back onto the input features: in
        log-odds for classes, in the target's units for values."""
        prep, est = self.estimator
        Z = prep.transform(X)
        z_ref = prep.transform(background).mean(axis=0) if background is not None else np.zeros(Z.shape[1])
        coef = np.atleast_2d(est.coef_)  # (outputs, d)
        intercept = np.atleast_1d(est.intercept_)
        d = Z - z_ref
        n, f = X.shape
        outs = coef.shape[0]
        contrib = np.zeros((n, f, outs))
        for o in range(outs):
            per_z = d * coef[o]
            contrib[:, :, o] = np.stack([np.bincount(prep.source_index_, weights=row, minlength=f) for row in per_z])
        base = np.broadcast_to(intercept + coef @ z_ref, (n, outs)).copy()
        if not self.task.is_classification:
            scale, mean = self.params["_y_scale"], self.params["_y_mean"]
            return Attribution(contrib * scale, base * scale + mean, "output", "linear")
        return Attribution(contrib, base, "margin", "linear")


#: percent of each number's range clipped off at each end for a regression (ridge), whose answer follows a
#: number beyond the training rows' range without bound (a logistic model's probabilities level off): at 1%
#: rather than the scaler's 0.1%, the ridge alone on the 8 regression tasks gave a lower test RMSE on 6 (house
#: prices 37,188 -> 35,484, parkinsons 0.0444 -> 0.0423), the same on kin8nm and 0.03% more on traffic volume;
#: for classes it was mixed (vehicle 0.389 -> 0.450 log loss), so they keep 0.1% (bench/RESULTS.md)
REGRESSION_CLIP = 1.0


def clip_percent(task: Any) -> float:
    """Percent of each number's range the linear model's scaler clips off at each end (``OneHotScaler``'s
    ``clip``): ``REGRESSION_CLIP`` for values, the scaler's 0.1 for classes; the Spark trainer asks the same."""
    return 0.1 if task.is_classification else REGRESSION_CLIP


@register
class LinearFamily(ModelFamily):
    name = "linear"
    target_range = "beyond"
    place = 1
    packages = ("scikit-learn",)
    relative_cost = 0.3

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"C": 1.0}] if task.is_classification else [{"alpha": 1.0}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        if task.is_classification:
            return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        from sklearn.linear_model import LogisticRegression, Ridge

        prep = OneHotScaler(ctx.categorical, ctx.cardinalities, clip=clip_percent(ctx.task)).fit(X)
        Z = prep.transform(X)
        params = {**params, "_z_std": Z.std(axis=0), "_n_in": X.shape[1]}
        if ctx.task.is_classification:
            est = LogisticRegression(C=params.get("C", 1.0), max_iter=300, tol=1e-3)
            est.fit(Z, y, sample_weight=ctx.sample_weight)
            return LinearModel((prep, est), params, ctx.task)
        y_mean, y_scale = float(np.mean(y)), float(np.std(y) or 1.0)
        est = Ridge(alpha=params.get("alpha", 1.0))
        est.fit(Z, (y - y_mean) / y_scale, sample_weight=ctx.sample_weight)
        return LinearModel((prep, est), {**params, "_y_mean": y_mean, "_y_scale": y_scale}, ctx.task)
