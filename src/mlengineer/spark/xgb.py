"""Boosted trees on the cluster with ``xgboost.spark`` (pip only, no Maven), exported as the ordinary
``xgboost`` family's fitted model: the bundle predicts with the booster alone, without Spark.

The workers train one booster together (one barrier task each, their histograms allreduced), stop early on
the held-out rows the encoded table marks (each row counted by its weight in the fit and in early stopping,
where the table has weights), and stop at the time budget's end (a callback that reads the
wall clock, the same on every machine that keeps NTP time).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import xgboost as xgb

from ..training.models import get_family
from ..training.models.xgboost import XGBoostModel
from .prepare import LABEL, VALID, EncodedTable

__all__ = ["MIN_ROUNDS", "StopAtTime", "train_xgboost"]

#: rounds trained whatever the clock says, so that a budget spent on preparation still yields a model
MIN_ROUNDS = 10
_SKLEARN_NAMES = {"eta": "learning_rate", "lambda": "reg_lambda", "alpha": "reg_alpha"}


class StopAtTime(xgb.callback.TrainingCallback):
    """Stops boosting at a wall-clock time (seconds since the epoch), after at least ``MIN_ROUNDS`` rounds;
    the workers agree on the round (one allreduce of a flag), whatever their clocks say."""

    def __init__(self, end: float) -> None:
        super().__init__()
        self.end = end

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        late = epoch + 1 >= MIN_ROUNDS and time.time() >= self.end
        if xgb.collective.is_distributed():  # every worker must stop at the same round, or the others wait
            late = bool(xgb.collective.allreduce(np.array([late], dtype=np.int32), xgb.collective.Op.MAX)[0])
        return late


def train_xgboost(table: EncodedTable, *, params: dict[str, Any] | None, seconds: float, num_workers: int,
                  seed: int) -> XGBoostModel:
    """One booster trained on the cluster for at most ``seconds`` (early stopping on the marked rows),
    returned as the ``xgboost`` family's fitted model."""
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    task = table.task
    family = get_family("xgboost")
    config = dict(params or family.default_configs(task, table.n_train, len(table.feature_names))[0])
    eta = float(config.get("eta", 0.1))
    patience = int(max(20, min(200, 5 / eta)))
    kwargs: dict[str, Any] = {_SKLEARN_NAMES.get(k, k): v for k, v in config.items()}
    cat = set(table.categorical)
    # max_bin stays at xgboost's default: xgboost.spark builds the held-out rows' matrix with the default
    # and refuses a booster whose max_bin differs (xgboost 3.2)
    kwargs.update(
        features_col=table.feature_columns, label_col=LABEL, validation_indicator_col=VALID,
        num_workers=num_workers, n_estimators=10_000, early_stopping_rounds=patience, tree_method="hist",
        max_cat_to_onehot=8, random_state=seed, verbose=False, verbosity=0,
        feature_types=["c" if j in cat else "q" for j in range(len(table.feature_columns))],
        feature_names=[f"f{j}" for j in range(len(table.feature_columns))],
        callbacks=[StopAtTime(time.time() + seconds)], missing=float("nan"),
        eval_metric={"binary": "logloss", "multiclass": "mlogloss"}.get(task.kind, "rmse"),
    )
    if table.fit_weight is not None:  # the training rows' and the held-out rows' weights alike
        kwargs["weight_col"] = table.fit_weight
    estimator = (SparkXGBClassifier if task.is_classification else SparkXGBRegressor)(**kwargs)
    t0 = time.perf_counter()
    fitted = estimator.fit(table.frame)
    booster = fitted.get_booster()
    run = booster.num_boosted_rounds()
    best_attr = booster.attr("best_iteration")
    best = int(best_attr) + 1 if best_attr is not None else run
    if best < run:
        booster = booster[:best]  # what early stopping kept: the local family saves the best rounds alone
    booster.set_param({"nthread": 1})  # one row at a time is faster on one thread
    model = XGBoostModel(booster, {**config, "n_estimators": run}, task)
    model.family = "xgboost"
    model.fit_seconds = time.perf_counter() - t0
    model.best_iteration = best
    model.rounds_run = run
    # the clock, not early stopping, ended it: the best round is among the last ones fitted
    model.stopped_by_time = run < 10_000 and run - best < patience
    return model
