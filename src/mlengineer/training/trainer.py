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

from ..data.clean import CleaningPlan, fit_cleaning_plan
from ..data.load import as_read, unread
from ..data.quality import Finding, audit
from ..data.schema import Schema, infer_schema
from ..errors import ConfigError, DataError
from ..features.encoder import FeatureEncoder, encode_training
from ..features.text import TIME_HOLDOUT
from ..metrics import Metric, ensemble_metric, get_metric
from ..tasks import Task, make_task
from .config import TrainConfig
from .ensemble import Ensemble
from .models.threads import one_thread
from .selection import search_and_ensemble
from .validation import split_keys, split_words
from .weights import check_metric_weighs, check_weight_column, numbered, read_weights, weighted_words

__all__ = ["TrainResult", "check_columns", "encode_rows", "fit_pipeline", "pipeline_ms"]

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
    #: the user's weights of those rows (``TrainConfig.weight_column``); None: every row counts once
    valid_weight: np.ndarray | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    #: rows kept apart from every fit (``calibration_fraction``): positions in the cleaned training rows;
    #: ``valid_y``/``valid_pred`` are then these rows and the final model's own predictions of them
    calibration_index: np.ndarray | None = field(default=None, repr=False)
    #: positions in the training table (the DataFrame handed to ``fit_pipeline``) of the rows ``valid_y`` /
    #: ``valid_pred`` describe; None when its index has duplicate labels, which hide the positions
    valid_rows: np.ndarray | None = field(default=None, repr=False)
    #: when the user's time budget ends (a ``time.perf_counter()`` value): work done after training (the
    #: calibrator, explanations) should finish by then, as the budget covers the whole ``train`` call
    deadline: float | None = None
    #: {"reproducible": bool, "why": [reasons a rerun may differ], "plan": what the search plan was decided from}
    reproducibility: dict[str, Any] = field(default_factory=dict)


def no_progress(*_: Any, **__: Any) -> None:
    return None


@dataclass
class _Prepared:
    """The table read for training: its schema, task and metrics, the audit, the fitted cleaning plan, the
    cleaned rows (those with a target), their encoded target and the user's row weights (or None)."""

    schema: Schema
    task: Task
    metric: Metric
    blend_metric: Metric
    findings: list[Finding]
    plan: CleaningPlan
    clean: pd.DataFrame
    y: np.ndarray
    weights: np.ndarray | None


def check_columns(df: pd.DataFrame, config: TrainConfig) -> None:
    """The columns the options name (the target, --group-column, --time-column) are in ``df``, or the one-line
    DataError naming the one that is not: checked before the tracking store is opened too, so a mistyped
    target leaves no store behind."""
    if config.target not in df.columns:
        raise DataError(f"Target column {config.target!r} is not in the data; its columns are: "
                        f"{', '.join(map(str, df.columns[:30]))}.")
    for opt, col in (("--group-column", config.group_column), ("--time-column", config.time_column)):
        if col is not None and col not in df.columns:
            raise DataError(f"{opt} names the column {col!r}, which the data does not have.")


def _prepare(df: pd.DataFrame, config: TrainConfig, progress: Progress) -> _Prepared:
    """Schema, task, audit and cleaning plan; the cleaned rows, their target and weights, checked: every
    problem with the table is found here, before any model is fitted."""
    target, weight = config.target, config.weight_column
    check_columns(df, config)
    if config.time_column is not None:
        _check_time_column(df[config.time_column], config.time_column)
    if weight is not None:
        check_weight_column(df, weight, target=target, keep=config.keep)
    progress("stage", name="schema")
    overrides = dict(config.column_roles)
    schema = infer_schema(df, target, overrides)
    task = make_task(df[target], config.task)
    if task.is_classification and config.target_transform in ("log", "power"):
        raise ConfigError(f"--target-transform {config.target_transform} is for a regression target, and {target!r} "
                          f"is {task.kind}: leave --target-transform out.")
    metric = get_metric(config.metric, task.kind)
    blend_metric = ensemble_metric(metric, config.ensemble_metric, task.kind)
    if weight is not None:
        check_metric_weighs(metric, weight, config.metric)
    # the weight column is no feature: the audit's findings on it (an identifier, outliers, leakage) say nothing
    findings = [f for f in audit(df, schema, task_kind=task.kind) if weight is None or f.column != weight]
    idle = next((f for f in findings if f.check == "target_identifier" and task.is_classification), None)
    if idle is not None:  # a class a row: a classifier of it learns nothing (and trains for the whole budget)
        raise DataError(f"The target {target!r} {idle.message.rstrip('.')}: {idle.suggestion}")
    drop = {c: "dropped by the user (--drop)" for c in config.drop}
    for col in (config.group_column,):
        if col is not None and col not in config.keep:
            drop.setdefault(col, "the group column (a feature that names the group would leak across folds)")
    if weight is not None:
        drop[weight] = "the weight column (row weights, not a feature)"
    # the audit's leakage findings drop their columns unless the user keeps them (--keep)
    plan = fit_cleaning_plan(df, schema, drop=drop, keep=config.keep, findings=findings)
    clean = plan.apply(df, training=True)
    if len(clean) < 10:
        raise DataError(f"Only {len(clean)} rows have a target value: at least 10 are needed to train a model.")
    y = task.encode(clean[target])
    if task.is_classification and len(np.unique(y)) < 2:
        raise DataError(f"After dropping rows without a target, {target!r} has a single value: nothing to predict.")
    # rows without a target are gone whatever their weight; those left must each have one
    weights = None if weight is None else read_weights(df.loc[clean.index, weight], weight, by_number=numbered(df.index))
    return _Prepared(schema, task, metric, blend_metric, findings, plan, clean, y, weights)


def _check_time_column(s: pd.Series, name: str) -> None:
    """Refuse a --time-column that holds neither numbers nor dates (a few hundred values tried), naming it."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return
    from ..data.schema import parse_datetime

    filled = s.dropna().iloc[:500]
    if len(filled) and parse_datetime(filled, None).notna().sum() == 0:
        raise DataError(f"The --time-column {name!r} holds no dates or times (e.g. {filled.iloc[0]!r}) to order the "
                        "rows by: name a column of dates, times or numbers that grow with time.")


def fit_pipeline(df: pd.DataFrame, config: TrainConfig, *, progress: Progress = no_progress) -> TrainResult:
    """Train on ``df`` as ``config`` says, within ``config.time_budget`` seconds, BLAS on one thread (the
    search's parallelism is its own: ``threads``)."""
    with one_thread():
        return _fit_pipeline(df, config, progress)


def _fit_pipeline(df: pd.DataFrame, config: TrainConfig, progress: Progress) -> TrainResult:
    start = time.perf_counter()
    budget = config.time_budget
    timings: dict[str, float] = {}
    target = config.target
    if not df.index.is_unique:  # rows are found by their labels below (weights, groups): positions serve as well
        df = df.reset_index(drop=True)
    if unread(df):  # a frame handed over directly: read as a file of it is (nested objects, lists, zoned times)
        df = as_read(df.copy())
    prep = _prepare(df, config, progress)
    schema, task, plan, clean, y, weights = prep.schema, prep.task, prep.plan, prep.clean, prep.y, prep.weights
    features = clean.drop(columns=[target])
    timings["prepare_s"] = time.perf_counter() - start

    progress("stage", name="encode")
    roles = {c: schema[c].role.value for c in features.columns}
    for c in config.keep:  # a kept identifier or constant is used as a category
        if roles.get(c) in ("identifier", "constant", "ignore"):
            roles[c] = "categorical"
    groups = df.loc[clean.index, config.group_column].to_numpy() if config.group_column else None
    order = None
    if config.time_column:
        from ..data.schema import parse_datetime

        tcol = df.loc[clean.index, config.time_column]
        # by the format the schema found (3/6/2011 day first where its other dates say so), as Spark reads it
        fmt = next((c.datetime_format for c in schema.columns if c.name == config.time_column), None)
        order = tcol.to_numpy() if pd.api.types.is_numeric_dtype(tcol) else parse_datetime(tcol, fmt).to_numpy()
    user_groups = groups is not None
    groups, order, copies = split_keys(clean, groups, order)
    fit_rows, cal_rows = calibration_slice(y, config, task, groups, order)
    # text columns are scored by models fitted on the targets of the fitting rows (not the calibration rows)
    encoder = FeatureEncoder(roles, task_kind=task.kind, n_classes=len(task.classes), time_budget=budget,
                             seed=config.seed, n_jobs=config.n_jobs or os.cpu_count() or 1,
                             latency_ms=config.max_predict_ms_per_row)
    X = encode_rows(encoder, features, y, None if cal_rows is None else fit_rows, groups=groups, order=order,
                    holdout_fraction=config.holdout_fraction)
    timings["encode_s"] = time.perf_counter() - start - timings["prepare_s"]
    overhead_ms = pipeline_ms(plan, encoder, df.loc[clean.index[:1]].drop(columns=[target]))

    def part(a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or cal_rows is None else a[fit_rows]

    Xf, yf = (X, y) if cal_rows is None else (X[fit_rows], y[fit_rows])  # no copy when nothing is kept apart
    result = search_and_ensemble(Xf, yf, task=task, metric=prep.metric, config=config, encoder=encoder,
                                 groups=part(groups), order=part(order), deadline=start + budget,
                                 overhead_ms=overhead_ms, progress=progress, blend_metric=prep.blend_metric,
                                 weights=part(weights))
    timings.update(result.timings)
    valid_y, valid_pred, valid_w = result.valid_y, result.valid_pred, result.valid_weight
    strategy = split_words(result.strategy, copies=copies, user_groups=user_groups, timed=order is not None,
                           classification=task.is_classification)
    scored = None if result.valid_rows is None else fit_rows[result.valid_rows]  # positions in ``clean``
    if cal_rows is not None:  # calibration and conformal scores from the final model on rows no fit saw
        valid_y, valid_pred, scored = y[cal_rows], result.predictor.predict_raw(X[cal_rows]), cal_rows
        valid_w = None if weights is None else weights[cal_rows]
        strategy += (f"; {len(cal_rows):,} rows ({len(cal_rows) / len(y):.0%}) kept apart from every fit for "
                     "calibration and conformal scores")
    if config.weight_column is not None:  # said wherever the split is (the leaderboard, the report, the run)
        strategy += f"; {weighted_words(config.weight_column)}"
        result.leaderboard[0]["params"]["weighted_by"] = config.weight_column
    timings["total_s"] = seconds = time.perf_counter() - start
    return TrainResult(
        config=config, schema=schema, plan=plan, encoder=encoder, task=task, metric=prep.metric,
        predictor=result.predictor, leaderboard=result.leaderboard, findings=prep.findings,
        split_strategy=strategy, validation_score=result.score, n_train_rows=len(fit_rows),
        seconds=seconds, refit=result.refit, valid_y=valid_y, valid_pred=valid_pred, valid_weight=valid_w,
        timings=timings, deadline=start + budget, calibration_index=cal_rows,
        reproducibility=_reproducibility(result.reproducibility, roles),
        valid_rows=None if scored is None or not df.index.is_unique else df.index.get_indexer(clean.index[scored]),
    )


def encode_rows(encoder: FeatureEncoder, features: pd.DataFrame, y: np.ndarray, fit_rows: np.ndarray | None, *,
                groups: np.ndarray | None, order: np.ndarray | None, holdout_fraction: float) -> np.ndarray:
    """``encode_training`` as the validation will split the rows: under a time order the latest
    ``holdout_fraction`` of them are validated on, and their text scores come from a model of the earlier
    (training) rows alone, so no validation row's score learns another validation row's label."""
    held = TIME_HOLDOUT.set(holdout_fraction)
    try:
        return encode_training(encoder, features, y, fit_rows, groups=groups, order=order)
    finally:
        TIME_HOLDOUT.reset(held)


def _reproducibility(found: dict[str, Any], roles: dict[str, str]) -> dict[str, Any]:
    """The search's verdict on whether a rerun repeats this run, with what the plan does not cover yet: text
    features and the picture network size their work by the clock (features/text.py, models/cnn.py)."""
    out = dict(found)
    media = sorted({r for r in roles.values() if r in ("text", "image")})
    if media:
        out["why"] = [*out.get("why", []), f"{' and '.join(media)} columns: their features and the picture "
                      "network are sized by measured time, not by the plan"]
        out["reproducible"] = False
    return out


def calibration_slice(y: np.ndarray, config: TrainConfig, task: Task, groups: np.ndarray | None,
                      order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows to fit on and the rows kept apart for calibration (None when ``calibration_fraction`` is 0).

    Stratified by class, whole groups together, the latest rows when the data has a time order (the way the
    validation split goes). A class the slice would take entirely stays with the fitting rows."""
    from ..data.split import make_holdout

    everything = np.arange(len(y))
    if not config.calibration_fraction:
        return everything, None
    s = make_holdout(y, fraction=config.calibration_fraction, stratify=task.is_classification, groups=groups,
                     order=order, seed=config.seed + 1)
    fit, cal = np.asarray(s.train), np.asarray(s.valid)
    if task.is_classification:
        lost = np.isin(y[cal], np.unique(y[fit]), invert=True)
        fit, cal = np.sort(np.r_[fit, cal[lost]]), cal[~lost]
    if len(cal) < 20 or len(fit) < 10:
        raise DataError(f"calibration_fraction {config.calibration_fraction:g} keeps {len(cal)} of {len(y)} rows "
                        "apart: at least 20 are needed (and 10 to train on); use a larger share, or 0 to calibrate "
                        "on the validation rows.")
    return fit, cal


def pipeline_ms(plan: CleaningPlan, encoder: FeatureEncoder, row: pd.DataFrame) -> float:
    """Milliseconds the cleaning plan and the encoder take for one row: the part of a prediction's latency
    that no model choice changes. Timed on the route a single record takes when predicted: the row path (a
    converter and a writer per column, ``data/row.py``, ``features/row.py``; covertype's 54 columns 0.054 ms,
    0.173 ms by column arrays), else column arrays (``CleaningPlan.apply_arrays``), else the DataFrame route."""
    from ..data.row import compile_row_cleaner
    from ..features.row import compile_row_encoder

    values = np.asarray([row.iloc[0].tolist()], dtype=object)
    cols = {c: values[:, i] for i, c in enumerate(row.columns)}
    plain = [v.item() if isinstance(v, np.generic) else v for v in values[0]]
    record = {c: None if isinstance(v, float) and v != v else v for c, v in zip(row.columns, plain, strict=True)}
    clean, encode = compile_row_cleaner(plan), compile_row_encoder(encoder)

    def by_row() -> None:
        encode(clean(record))  # type: ignore[misc]

    def by_arrays() -> None:
        encoder.transform(plan.apply_arrays(cols))

    def by_frame() -> None:
        encoder.transform(plan.apply(row, training=False))

    once = by_frame
    for route in ([by_row] if clean is not None and encode is not None else []) + [by_arrays]:
        try:  # the route is decided once, so the timings below are of one route only
            route()
            once = route
            break
        except Exception:  # noqa: BLE001 - a column this route cannot read: the next route then
            continue
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    # the least, not the median: what it costs when nothing else runs, which a busy machine disturbs least
    # (the plan rounds it and the latency aim is checked with it)
    return 1000 * float(np.min(times[1:]))
