"""CatBoost: gradient-boosted oblivious trees with ordered target statistics for categories; strong on small
and categorical data with its defaults."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._attribution import split_bias
from ._oblivious import ObliviousTrees
from .base import Attribution, FitContext, FittedModel, ModelFamily, register

_SMALL_BATCH = 64


def _cat_text(v: float) -> str:
    # category codes as text, for predictions and explanations alike
    return "nan" if v != v else str(int(v))


def catboost_data(X: np.ndarray, categorical: list[int]) -> Any:
    """``X`` as CatBoost wants it: category codes as text, numbers as floats."""
    if not categorical:
        return np.asarray(X, dtype=np.float32)
    cat = set(categorical)
    if len(X) <= _SMALL_BATCH:  # a list of rows is 5x faster to hand over than a DataFrame
        return [[_cat_text(v) if j in cat else float(v) for j, v in enumerate(row)] for row in X.tolist()]
    import pandas as pd

    frame = pd.DataFrame(X)
    for j in categorical:
        col = X[:, j]
        frame[j] = np.where(np.isnan(col), "nan", np.nan_to_num(col, nan=0).astype(np.int64).astype(str))
    return frame


class CatBoostModel(FittedModel):
    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        data = catboost_data(X, self.params["_categorical"])
        threads = 1 if len(X) <= _SMALL_BATCH else self.params.get("_n_jobs", 1)
        if self.task.is_classification:
            p = self.estimator.predict_proba(data, thread_count=threads)
            return self._proba(p, np.asarray(self.estimator.classes_, dtype=np.int64))
        return np.asarray(self.estimator.predict(data, thread_count=threads), dtype=np.float64)

    def with_rounds(self, rounds: int) -> CatBoostModel:
        """The first ``rounds`` trees as a model of their own (CatBoost's ``shrink`` on a copy)."""
        n = min(rounds, self.best_iteration or rounds)
        est = self.estimator.copy()
        if n < est.tree_count_:
            est.shrink(ntree_end=n)
        cut = copy.copy(self)
        cut.estimator, cut.best_iteration = est, n
        return cut

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_raw`` for one encoded row (1, f): the oblivious trees walked in numpy
        (``_oblivious.py``, tens of microseconds against ~150-500 us for CatBoost's ``predict``, which
        builds a ``Pool`` per call), then CatBoost's own link (the logistic, softmax or identity). Where the
        model splits on categories (target statistics, which only CatBoost computes), its evaluator is
        called on a ``Pool`` directly, without ``predict``'s checks (~30 us less)."""
        kind = self.task.kind
        loss = str(self.estimator.get_params().get("loss_function", ""))
        if loss not in ("Logloss", "MultiClass", "RMSE"):
            return None
        trees = ObliviousTrees.from_catboost(self.estimator)
        if trees is None:
            return self._pool_row()
        seen = np.asarray(self.estimator.classes_, dtype=np.int64) if kind != "regression" else None

        def row(X: np.ndarray) -> np.ndarray:
            z = trees.raw(X[0])
            if kind == "regression":
                return z[:1].copy()
            if kind == "binary":
                p = 1.0 / (1.0 + np.exp(-z[0]))
                return self._proba(np.array([[1.0 - p, p]]), seen)
            e = np.exp(z - z.max())
            return self._proba((e / e.sum())[None, :], seen)

        return row

    def _pool_row(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """One row through CatBoost's own evaluator on a ``Pool`` (``_base_predict``, what ``predict``
        calls); None when this CatBoost has no such call or it answers differently from ``predict_raw``."""
        from catboost import Pool

        est, cat = self.estimator, list(self.params["_categorical"])
        kind = "Probability" if self.task.is_classification else "RawFormulaVal"
        seen = np.asarray(est.classes_, dtype=np.int64) if self.task.is_classification else None

        def row(X: np.ndarray) -> np.ndarray:
            p = est._object._base_predict(Pool(catboost_data(X, cat), cat_features=cat or None), kind, 0, 0, 1,
                                          False, "CPU")
            p = np.asarray(p, dtype=np.float64)
            return self._proba(p, seen) if seen is not None else p.reshape(len(X))

        probe = np.zeros((1, est.n_features_in_), dtype=np.float32)
        try:
            same = np.array_equal(row(probe), self.predict_raw(probe))
        except Exception:  # noqa: BLE001 - a CatBoost whose private call differs: predict_raw answers
            return None
        return row if same else None

    def feature_importance(self) -> np.ndarray:
        return np.asarray(self.estimator.get_feature_importance(), dtype=np.float64)

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """CatBoost's own TreeSHAP (``ShapValues``), in log-odds or raw scores."""
        from catboost import Pool

        cat = list(self.params.get("_categorical") or [])
        data = catboost_data(X, cat)
        if isinstance(data, list):  # a few rows come as a list of lists; Pool wants a frame for mixed types
            import pandas as pd

            data = pd.DataFrame(data)
        pool = Pool(data, cat_features=cat or None)
        raw = np.asarray(self.estimator.get_feature_importance(pool, type="ShapValues"), dtype=float)
        return Attribution(*split_bias(raw, X.shape[1]), "margin", "TreeSHAP")


@register
class CatBoostFamily(ModelFamily):
    name = "catboost"
    target_range = "within"
    place = 3
    place_large = 5  # on large data the slowest booster
    packages = ("catboost",)
    early_stopping = True
    probe_units = 64  # its first rounds are cheaper than later ones: priced on 64 (and late_unit_cost)
    relative_cost = 3.0

    def late_unit_cost(self, ctx: FitContext, rows: int) -> float:
        # with categorical features its rounds grow dearer as it combines them into new statistics, the more
        # so the more rows: over its first 64 rounds against from round 256 on, 2.9 against 4.3 ms a round on
        # 1,200 rows (46 categorical columns), 3.9 against 8.7 on 10,000 and 7.7 against 23 on 31,000 (a
        # census table, 8 categorical columns); on numbers alone the same throughout (four tables)
        if not ctx.categorical:
            return 1.0
        return float(min(max(1.0 + 0.3 * math.log(max(rows, 1) / 300), 1.0), 3.0))

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        lr = 0.1 if n_rows * max(len(task.classes), 1) > 100_000 else 0.05
        return [
            {"learning_rate": lr, "depth": 6, "l2_leaf_reg": 3.0},
            {"learning_rate": 0.06, "depth": 8, "l2_leaf_reg": 5.0, "rsm": 0.8},
            {"learning_rate": 0.08, "depth": 4, "l2_leaf_reg": 1.0},
        ]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "depth": trial.suggest_int("depth", 4, 8),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.5, 20.0, log=True),
            "random_strength": trial.suggest_float("random_strength", 0.1, 5.0, log=True),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        from catboost import CatBoostClassifier, CatBoostRegressor

        num_rounds = int(params.pop("n_estimators", 10000 if X_val is not None else 300))
        num_rounds = num_rounds if ctx.max_units is None else min(num_rounds, ctx.max_units)
        loss = {"binary": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"}[ctx.task.kind]
        cls = CatBoostClassifier if ctx.task.is_classification else CatBoostRegressor
        # CatBoost hands a Python callback every metric's whole history at every round, so a deadline checked
        # that way makes training quadratic in the rounds (car's table, 4,096 rounds: 2.6 s without the callback,
        # 15.2 s with it, 6.6 s with the training metric computed only at the end). Where the plan caps the
        # rounds (``max_units``) the cap bounds the fit and no callback runs; elsewhere (a refit on all rows,
        # a fit outside a plan) the deadline stays, and without validation rows the training metric is computed
        # once (``metric_period``), so the history the callback is handed stays short.
        deadline = ctx.deadline()
        watch = ctx.max_units is None
        extra = {"metric_period": num_rounds} if watch and X_val is None else {}
        est = cls(iterations=num_rounds, loss_function=loss, thread_count=ctx.n_jobs, random_seed=ctx.seed,
                  verbose=0, allow_writing_files=False, cat_features=list(ctx.categorical) or None,
                  one_hot_max_size=8, **extra, **params)

        class StopAtDeadline:
            def after_iteration(self, info: Any) -> bool:
                return not deadline.passed()  # False stops training

        # CatBoost wants the big-batch form (a DataFrame) at training, whatever the size
        def big(A: np.ndarray) -> Any:
            if not ctx.categorical:
                return np.asarray(A, dtype=np.float32)
            import pandas as pd

            return pd.DataFrame(catboost_data(A, ctx.categorical)) if len(A) <= _SMALL_BATCH else \
                catboost_data(A, ctx.categorical)

        fit_kw: dict[str, Any] = {"callbacks": [StopAtDeadline()] if watch else None,
                                  "sample_weight": ctx.sample_weight}
        w_val = ctx.valid_weight
        if X_val is not None and y_val is not None and ctx.task.is_classification:
            # a class with a row or two may be missing from this fold's training rows: CatBoost refuses
            # validation rows of a class it has not learned, so early stopping watches the others
            known = np.isin(y_val, np.unique(y))
            X_val, y_val = (X_val[known], y_val[known]) if known.any() else (None, None)
            w_val = None if w_val is None else w_val[known]
        if X_val is not None:
            patience = int(max(20, min(200, 5 / params.get("learning_rate", 0.05))))
            eval_set: Any = (big(X_val), y_val)
            if w_val is not None:  # the user's row weights: early stopping watches the weighted loss
                from catboost import Pool

                eval_set = Pool(big(X_val), y_val, weight=w_val, cat_features=list(ctx.categorical) or None)
            fit_kw.update(eval_set=eval_set, early_stopping_rounds=patience, use_best_model=True)
        est.fit(big(X), y, **fit_kw)
        model = CatBoostModel(est, {**params, "n_estimators": num_rounds, "_categorical": list(ctx.categorical),
                                    "_n_jobs": ctx.n_jobs}, ctx.task)
        model.best_iteration = int(est.tree_count_)
        # the rounds run: the validation history has one entry a round (the training metric may be computed
        # only at the end); without validation rows every round is kept
        evals = est.get_evals_result().get("validation") or {}
        model.rounds_run = max((len(v) for v in evals.values()), default=model.best_iteration)
        return model
