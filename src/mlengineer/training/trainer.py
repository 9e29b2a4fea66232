"""Orchestration of one training run: schema, audit, cleaning plan, split, encoding, search, ensemble, refit.

The trainer returns the fitted parts and what was learned along the way (``TrainResult``); turning them
into a Model bundle and recording the run in MLflow happen in the public API, one stage later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import TrainConfig
from ..data.clean import CleaningPlan, fit_cleaning_plan
from ..data.quality import Finding, audit
from ..data.schema import Schema, infer_schema
from ..data.split import Split, make_holdout
from ..errors import DataError
from ..features.encoder import FeatureEncoder
from ..metrics import Metric, get_metric
from ..tasks import Task, make_task
from .ensemble import Ensemble, select_ensemble
from .models import FAMILIES, FitContext
from .search import Candidate, SearchResult, portfolio, run_search

__all__ = ["TrainResult", "fit_pipeline"]

Progress = Callable[..., None]


@dataclass
class TrainResult:
    """Everything a training run produced, before it becomes a bundle."""

    config: TrainConfig
    schema: Schema
    plan: CleaningPlan
    encoder: FeatureEncoder
    task: Task
    metric: Metric
    predictor: Ensemble
    leaderboard: list[dict[str, Any]]
    findings: list[Finding]
    split_strategy: str
    validation_score: float
    n_train_rows: int
    seconds: float
    refit: bool
    # validation rows kept for later stages (intervals, calibration, evaluation plots)
    valid_y: np.ndarray | None = field(default=None, repr=False)
    valid_pred: np.ndarray | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)


def _noop(*_: Any, **__: Any) -> None:
    return None


def fit_pipeline(df: pd.DataFrame, config: TrainConfig, *, progress: Progress = _noop) -> TrainResult:
    """Train on ``df`` as ``config`` says, within ``config.time_budget`` seconds."""
    start = time.perf_counter()
    budget = config.time_budget
    timings: dict[str, float] = {}
    target = config.target
    if target not in df.columns:
        raise DataError(
            f"Target column {target!r} is not in the data; its columns are: {', '.join(map(str, df.columns[:30]))}."
        )
    for opt, col in (("--group-column", config.group_column), ("--time-column", config.time_column)):
        if col is not None and col not in df.columns:
            raise DataError(f"{opt} names the column {col!r}, which the data does not have.")
    progress("stage", name="schema")
    overrides = dict(config.column_roles)
    schema = infer_schema(df, target, overrides)
    task = make_task(df[target], config.task)
    metric = get_metric(config.metric, task.kind)
    findings = audit(df, schema, task_kind=task.kind)
    drop = {c: "dropped by the user (--drop)" for c in config.drop}
    for col in (config.group_column,):
        if col is not None and col not in config.keep:
            drop.setdefault(col, "the group column (a feature that names the group would leak across folds)")
    plan = fit_cleaning_plan(df, schema, drop=drop, keep=config.keep)
    clean = plan.apply(df, training=True)
    if len(clean) < 10:
        raise DataError(f"Only {len(clean)} rows have a target value: at least 10 are needed to train a model.")
    y = task.encode(clean[target])
    if task.is_classification and len(np.unique(y)) < 2:
        raise DataError(f"After dropping rows without a target, {target!r} has a single value: nothing to predict.")
    features = clean.drop(columns=[target])
    timings["prepare_s"] = time.perf_counter() - start

    progress("stage", name="encode")
    roles = {c: schema[c].role.value for c in features.columns}
    for c in config.keep:  # a kept identifier or constant is used as a category
        if roles.get(c) in ("identifier", "constant", "ignore"):
            roles[c] = "categorical"
    encoder = FeatureEncoder(roles).fit(features)
    X = encoder.transform(features)
    timings["encode_s"] = time.perf_counter() - start - timings["prepare_s"]

    groups = df.loc[clean.index, config.group_column].to_numpy() if config.group_column else None
    order = None
    if config.time_column:
        from ..data.schema import parse_datetime

        tcol = df.loc[clean.index, config.time_column]
        order = tcol.to_numpy() if pd.api.types.is_numeric_dtype(tcol) else parse_datetime(tcol, None).to_numpy()
    split: Split = make_holdout(y, fraction=config.holdout_fraction, stratify=task.is_classification,
                                groups=groups, order=order, seed=config.seed)

    n_jobs = config.n_jobs or os.cpu_count() or 1
    ctx = FitContext(task=task, categorical=encoder.categorical_features_, cardinalities=encoder.cardinalities_,
                     feature_names=encoder.feature_names_, seed=config.seed, n_jobs=n_jobs)
    configs = portfolio(task, len(X), X.shape[1], config.families)
    elapsed = time.perf_counter() - start
    # the search gets most of what is left; the rest pays for the refit on all rows
    search_budget = max(0.5, (budget - elapsed) * 0.65)
    progress("search_start", total=len(configs), budget=search_budget)
    result: SearchResult = run_search(
        X[split.train], y[split.train], X[split.valid], y[split.valid], ctx, metric,
        budget=search_budget, configs=configs, max_predict_ms_per_row=config.max_predict_ms_per_row,
        on_candidate=lambda c: progress("candidate", candidate=c),
    )
    timings["search_s"] = result.seconds
    ok = result.ok
    if not ok:
        reasons = "; ".join(f"{c.name}: {c.status}" for c in result.candidates[:3]) or "no time to fit any"
        raise DataError(f"No model could be trained on this data ({reasons}).")

    weights = select_ensemble({c.name: c.valid_pred for c in ok}, y[split.valid], metric)
    by_name = {c.name: c for c in ok}
    ens_pred = sum(by_name[n].valid_pred * w for n, w in weights.items())
    valid_score = metric(y[split.valid], ens_pred)

    progress("stage", name="refit")
    members, refit = _refit(X, y, ctx, [(by_name[n], w) for n, w in weights.items()],
                            deadline=start + budget * 0.97, n_train=len(split.train))
    leaderboard = [c.row() for c in sorted(result.candidates, key=lambda c: c.loss)]
    leaderboard.insert(0, {"model": "ensemble", "family": "ensemble", "score": valid_score,
                           "fit_s": round(sum(by_name[n].fit_seconds for n in weights), 3),
                           "predict_ms_per_row": round(sum(by_name[n].predict_ms_per_row for n in weights), 4),
                           "status": "ok", "params": {"weights": weights}})
    seconds = time.perf_counter() - start
    timings["total_s"] = seconds
    return TrainResult(
        config=config, schema=schema, plan=plan, encoder=encoder, task=task, metric=metric,
        predictor=Ensemble(members), leaderboard=leaderboard, findings=findings,
        split_strategy=split.strategy, validation_score=float(valid_score), n_train_rows=len(X),
        seconds=seconds, refit=refit, valid_y=y[split.valid], valid_pred=ens_pred, timings=timings,
    )


def _refit(X: np.ndarray, y: np.ndarray, ctx: FitContext, chosen: list[tuple[Candidate, float]], *,
           deadline: float, n_train: int) -> tuple[list[tuple[str, Any, float]], bool]:
    """Fit each chosen configuration again on all rows if the time left allows; otherwise keep the models
    fitted on the training part. Rounds found by early stopping are scaled up for the larger data."""
    scale = len(X) / max(n_train, 1)
    estimate = sum(c.fit_seconds for c, _ in chosen) * scale * 1.2
    if time.perf_counter() + estimate > deadline:
        return [(c.name, c.model, w) for c, w in chosen], False
    members = []
    for cand, w in chosen:
        family = FAMILIES[cand.family]
        params = {k: v for k, v in cand.params.items() if not k.startswith("_")}
        if family.early_stopping and cand.best_iteration:
            params["n_estimators"] = max(1, int(round(cand.best_iteration * min(scale, 1.25))))
        left = deadline - time.perf_counter()
        model = family.fit(X, y, FitContext(**{**ctx.__dict__, "time_limit": max(left, 0.5)}), params)
        members.append((cand.name, model, w))
    return members, True
