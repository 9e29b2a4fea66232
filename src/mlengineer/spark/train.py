"""Training on Spark, start to end, into an ordinary bundle: the same Schema, audit, CleaningPlan, encoder and
bundle as the local run, with every pass over the rows made by the cluster.

    model = train_spark("s3a://bucket/sales/", "churned", master="spark://head:7077", time_budget=600,
                        out="churn-model")

Schema and audit from Spark aggregations (roles and the leakage candidates on a driver sample, confirmed on
every row, or on a random million rows of a larger table, so that they fit in the time budget); the plan and encoder fitted on that sample and applied on the cluster; MLlib's linear model
and xgboost.spark's boosted trees trained on the encoded table within the time budget, stopped early on
held-out rows marked on the cluster and scored there; the better one exported as the local family's
fitted model, so ``predict``, ``serve`` and ``mlflow.pyfunc.load_model`` work on the bundle without Spark.
With a weight column (``weight_column``) its values are checked over every row in the in-memory words before
any fit, and each row counts by its weight in both families' fits, early stopping and every held-out score.
Where the metric judges every class alike (balanced accuracy, F1, recall...), the fits weigh each class alike
too (``prepare.balance_classes``), as in memory; the held-out scores count the rows (or their weights) as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bundle.model import Model
from ..bundle.store import check_destination
from ..data.formats import written_marks
from ..errors import ConfigError, DataError
from ..metrics import get_metric
from ..pipeline.build import build_model
from ..pipeline.run import check_named_columns, default_name, save_and_track
from ..training.config import TrainConfig
from ..training.ensemble import Ensemble
from ..training.latency import latency_ms
from ..training.trainer import Progress, TrainResult, no_progress, pipeline_ms
from ..training.weights import check_metric_weighs, check_weight_column, weighted_words, weightless_error
from .audit import audit_spark
from .evaluate import metric_on_cluster, score_held_out
from .holdout import spark_split
from .linear import train_linear
from .prepare import (
    WEIGHT,
    EncodedTable,
    WeightCheck,
    balance_classes,
    encode_table,
    fit_preparation,
    plan_counts,
)
from .read import SparkTable, check_source, driver_sample, known_columns, read_table
from .session import spark_session
from .stats import TableStats, census, spark_schema, spark_task
from .xgb import train_xgboost

__all__ = ["SPARK_FAMILIES", "check_names", "train_spark"]

#: the families that train on the cluster, in the order they are tried
SPARK_FAMILIES = ("linear", "xgboost")
#: rows the driver holds to infer roles, fit the plan and the encoder, and explain the model
SAMPLE_ROWS = 100_000
#: rows the schema's statistics and the audit are counted over, at most (a random sample of larger tables)
STATS_ROWS = 1_000_000
#: held-out rows brought to the driver for the calibrator, the conformal scores and monitoring's reference
VALID_SAMPLE_ROWS = 20_000
#: share of the time left kept for scoring the held-out rows and building the bundle
FINISH_SHARE = 0.1


@dataclass
class _Candidate:
    """One family's model as the progress display and the leaderboard see it."""

    name: str
    family: str
    model: Any
    score: float
    fit_seconds: float
    status: str = "ok"


def _config(target: str | None, config: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    if config is None:
        config = TrainConfig.build(target=target, **options)
    elif target is not None or options:
        config = TrainConfig.build(**{**config.model_dump(), **({"target": target} if target else {}), **options})
    if config.engine != "spark":  # a copy keeps how the user wrote each option (``TrainConfig.said``)
        config = config.model_copy(update={"engine": "spark"})
    for refused, why in _in_memory_only(config):
        if refused:
            raise ConfigError(why)
    unknown = sorted(set(config.families or []) - set(SPARK_FAMILIES))
    if unknown:
        raise ConfigError(f"On Spark the model families are {', '.join(SPARK_FAMILIES)}; {', '.join(unknown)} "
                          "train in memory only (drop --engine spark, or train on a sample).")
    return config


def _in_memory_only(config: TrainConfig) -> list[tuple[bool, str]]:
    """The options Spark training does not honour, each with whether ``config`` sets it and the line that says
    so (and what to do)."""
    memory = "drop --engine spark to train in memory (on a sample of the table if it is too large)"
    return [
        (bool(config.calibration_fraction), "calibration_fraction is for in-memory training: on Spark the calibrator "
         "already learns from held-out rows the final model never trained on. Leave it at 0."),
        (config.target_transform in ("log", "power"), f"target_transform {config.target_transform!r} is for "
         "in-memory training: on Spark the target is learned on its own scale. Leave it at auto, or drop --engine "
         "spark."),
        (config.max_predict_ms_per_row is not None, "--max-predict-ms (max_predict_ms_per_row) is for in-memory "
         "training: Spark's models are not held to a prediction time. Leave it out, or " + memory + "."),
        (config.validation == "kfold", "validation 'kfold' is for in-memory training: Spark validates on one "
         "holdout (holdout_fraction of the rows). Leave validation at auto or holdout, or " + memory + "."),
        (config.max_search_rows is not None, "max_search_rows is for in-memory training: Spark trains on every row "
         "of the table within --time-budget. Leave it out, or " + memory + "."),
        (bool(config.n_jobs), "n_jobs is for in-memory training: on Spark the cores are the cluster's (--spark-master "
         "local[N], or --spark-conf spark.task.cpus=N for the threads of each xgboost worker). Leave it at 0."),
    ]


def train_spark(data: str | None = None, target: str | None = None, *, config: TrainConfig | None = None,
                sql: str | None = None, out: str | Path | None = None, track: bool = True, name: str | None = None,
                master: str | None = None, spark_conf: dict[str, str] | None = None,
                progress: Progress = no_progress, **options: Any) -> Model:
    """Train on ``data`` (a file, folder, Delta table or URI Spark reads; or ``sql`` over the catalog) on
    Spark, within ``time_budget`` seconds; save the bundle to ``out`` and record the run when ``track``.
    ``master`` (or the config's ``spark_master``) names the cluster; local[*] by default."""
    config = _config(target, config, options)
    if out is not None:
        check_destination(out)  # before any Spark work: a wrong --out costs nothing
    # a column whose role keeps its text (categorical, text, identifier) is read as written, as in memory
    found = check_source(data, written_marks(None, config.column_roles))
    names = None if sql or found is None else known_columns(found)
    if names is not None:  # a mistyped column named before Spark starts or the store opens, where the file tells
        check_names(names, config, found.source if found is not None else "")
    if track and names is not None:  # the store opens, and a run open in this thread may be the parent
        _prepare_recording(config)
    conf = {**config.spark_conf, **(spark_conf or {})}
    with spark_session(master or config.spark_master, conf) as spark:
        start = time.perf_counter()
        progress("stage", name="read")
        table = read_table(spark, data, sql=sql, found=found)
        check_names(table.frame.columns, config, table.where)
        if track and names is None:  # after the names are checked: a mistyped column leaves no store behind
            _prepare_recording(config)
        model, result = _train(spark, table, data, config, progress, start)
        model.metadata["name"] = name or default_name(out, data, config.target)
        # how the file wrote its numbers, which predict and Spark scoring read a later file by
        model.metadata["read_marks"] = None if sql else (table.marks or None)
        return save_and_track(model, result, out=out, track=track)


def _prepare_recording(config: TrainConfig) -> None:
    from ..tracking.runs import prepare_recording

    prepare_recording(config.tracking_uri)


def check_names(columns: list[str], config: TrainConfig, where: str) -> None:
    """The columns the options name are among ``columns`` (the table's): a misspelt --drop, --keep, --column-role,
    --group-column or --time-column in the words training in memory says it (``check_named_columns``: the
    closest name and the table's columns), a missing target in Spark's."""
    check_named_columns(pd.DataFrame(columns=list(columns)), config)
    for opt, col in (("target", config.target), ("--group-column", config.group_column),
                     ("--time-column", config.time_column)):
        if col is not None and col not in columns:
            raise DataError(f"The {opt} column {col!r} is not in {where}; its columns are: "
                            f"{', '.join(list(columns)[:30])}.")


def _train(spark: Any, table: SparkTable, data: str | None, config: TrainConfig, progress: Progress,
           start: float) -> tuple[Model, TrainResult]:
    timings: dict[str, float] = {}
    frame, target, weight = table.frame, config.target, config.weight_column
    if table.merged:  # xgboost's barrier stage refuses a union (or a coalesce) as its input: one shuffle ends it
        frame = frame.repartition(frame.rdd.getNumPartitions())
    if weight is not None:
        check_weight_column(frame, weight, target=target, keep=config.keep)
    prep = _prepare(frame, config, progress, source=table.source)
    schema, stats, task, metric, plan, encoder, sample = (prep.schema, prep.stats, prep.task, prep.metric, prep.plan,
                                                          prep.encoder, prep.sample)
    # every row's weight checked before any fit, by the split's pass (its first bad row numbered in the input's
    # order: before the shuffle)
    check = WeightCheck(table.frame, weight, plan, target) if weight is not None else None
    timings["prepare_s"] = time.perf_counter() - start
    progress("stage", name="encode")
    held_out = spark_split(frame, config, prep.n_rows, schema=schema, plan=plan, tally=check)
    if check is not None and weight is not None:
        frame = frame.withColumn(weight, check.value)
    valid, split = held_out.valid, held_out.words
    encoded = encode_table(frame, plan, encoder, task, target, valid, split, weight=weight)
    try:
        otherwise = "split otherwise (without --time-column or --group-column, which pick the validation rows)"
        if weight is not None and not encoded.weight_valid > 0:
            raise weightless_error("the validation rows", split, otherwise)
        if weight is not None and not encoded.weight_train > 0:
            raise weightless_error("the rows to train on", split, otherwise, learn=True)
        if task.is_classification and metric.balanced:  # as in memory: every class weighs alike in the fits
            balance_classes(encoded)
        timings["encode_s"] = time.perf_counter() - start - timings["prepare_s"]
        clean = plan.apply(sample, training=True)
        sample_X = encoder.transform(clean.drop(columns=[target]))
        candidates = _fit_families(spark, encoded, sample_X, config, metric, start, progress)
    finally:
        encoded.release()
    best = min((c for c in candidates if c.status == "ok"), key=lambda c: -c.score if metric.greater_is_better
               else c.score)
    timings["search_s"] = time.perf_counter() - start - timings["prepare_s"] - timings["encode_s"]
    progress("stage", name="bundle")
    marked = frame.select("*", valid.alias("__held_out"))  # selected, not filtered by: the mark may be a window
    held = driver_sample(marked.where("__held_out").drop("__held_out"), encoded.n_valid, VALID_SAMPLE_ROWS,
                         seed=config.seed + 1)
    data_rows = pd.concat([sample, held], ignore_index=True)
    held_clean = plan.apply(held, training=True)
    rows = held.index.get_indexer(held_clean.index)  # the held-out rows that have a target
    predictor = Ensemble([(best.name, best.model, 1.0)])
    valid_pred = predictor.predict_raw(encoder.transform(held_clean.drop(columns=[target])))
    leaderboard = _leaderboard(candidates, best, sample_X, overhead=pipeline_ms(plan, encoder, sample.drop(columns=[target]).iloc[:1]))
    strategy = held_out.strategy(encoded.n_valid, classification=task.is_classification)
    if weight is not None:  # said wherever the split is (the leaderboard, the report, the run), as in memory
        strategy += f"; {weighted_words(weight)}"
        leaderboard[0]["params"]["weighted_by"] = weight
    result = TrainResult(
        config=config, schema=schema, plan=plan, encoder=encoder, task=task, metric=metric, predictor=predictor,
        leaderboard=leaderboard, findings=prep.findings, split_strategy=strategy,
        validation_score=best.score, n_train_rows=encoded.n_train, seconds=time.perf_counter() - start,
        refit=False, valid_y=task.encode(held_clean[target]), valid_pred=valid_pred, timings=timings,
        valid_weight=None if weight is None else held[weight].to_numpy(dtype=np.float64)[rows],
        valid_rows=len(sample) + rows, deadline=start + config.time_budget)
    model = build_model(result, data_rows, name=config.target, source=data or "the query")
    result.seconds = time.perf_counter() - start
    sc = spark.sparkContext
    model.metadata.update({
        "engine": "spark", "train_seconds": round(result.seconds, 2), "data_fingerprint":
        TableStats(n_rows=prep.n_rows, fingerprint=prep.fingerprint).data_fingerprint(list(frame.columns)),
        "spark": {"master": sc.master, "version": spark.version, "rows": prep.n_rows, "statistics_rows":
                  stats.n_rows, "sample_rows": len(sample),
                  "held_out_rows": encoded.n_valid, "workers": _workers(spark), "read": table.how}})
    model.metadata["timings"] = {**model.metadata.get("timings", {}), **timings, "total_s": round(result.seconds, 2)}
    return model, result


@dataclass
class _Prepared:
    """The table's census, schema and task, the audit and the plan and encoder fitted on the driver's sample."""

    n_rows: int
    fingerprint: str
    sample: pd.DataFrame
    schema: Any
    stats: TableStats
    task: Any
    metric: Any
    findings: list[Any]
    plan: Any
    encoder: Any


def _prepare(frame: Any, config: TrainConfig, progress: Progress, *, source: dict[str, Any] | None = None
             ) -> _Prepared:
    """Census, schema, task, audit and the cleaning plan and encoder, from Spark passes and a driver sample;
    a metric that cannot weigh rows is refused here, with a weight column, before any fit. ``source`` is how
    the table was read (``SparkTable.source``), for the audit."""
    target, weight = config.target, config.weight_column
    progress("stage", name="schema")
    n_rows, fingerprint, labelled = census(frame, target)
    # statistics and audit of a large table from a random STATS_ROWS of it: the passes over every row cost
    # more than the time budget at 10M rows on a small cluster, and a plan fitted on 100,000 driver rows
    # gains nothing from exact counts; `mlengineer audit` still counts every row
    part = frame.sample(withReplacement=False, fraction=STATS_ROWS / n_rows, seed=config.seed).persist(
        _storage()) if n_rows > STATS_ROWS * 1.5 else frame
    try:
        sample = driver_sample(part, n_rows if part is frame else STATS_ROWS, SAMPLE_ROWS, seed=config.seed)
        schema, stats = spark_schema(part, sample, target, dict(config.column_roles))
        if part is not frame:
            stats.of_rows, stats.of_unlabelled = n_rows, n_rows - labelled
        schema.n_rows = n_rows
        task = spark_task(frame, target, config.task, sample, stats)  # every row: a rare class must not be lost
        metric = get_metric(config.metric, task.kind)
        if weight is not None:
            check_metric_weighs(metric, weight)
        progress("stage", name="audit")
        # the weight column is no feature: the audit's findings on it (an identifier, outliers) say nothing
        findings = [f for f in audit_spark(part, schema, stats, sample, task_kind=task.kind, seed=config.seed,
                                           source=source) if weight is None or f.column != weight]
        plan, encoder = fit_preparation(sample, schema, config, findings)
        plan_counts(part, plan, target, stats=stats)
    finally:
        if part is not frame:
            part.unpersist()
    return _Prepared(n_rows, fingerprint, sample, schema, stats, task, metric, findings, plan, encoder)


def _storage() -> Any:
    from pyspark import StorageLevel

    return StorageLevel.MEMORY_AND_DISK


def _workers(spark: Any) -> int:
    """xgboost workers: the tasks that can run at once (cores / ``spark.task.cpus``; each worker trains with
    ``spark.task.cpus`` threads). All must run together: xgboost trains in one barrier stage."""
    sc = spark.sparkContext
    per_task = int(sc.getConf().get("spark.task.cpus", "1"))
    return max(1, int(sc.defaultParallelism) // max(per_task, 1))


def _fit_families(spark: Any, table: EncodedTable, sample_X: np.ndarray, config: TrainConfig, metric: Any,
                  start: float, progress: Progress) -> list[_Candidate]:
    """Each Spark family in turn on the encoded table, within what the time budget leaves; each scored on
    the held-out rows on the cluster."""
    families = [f for f in SPARK_FAMILIES if f in (config.families or SPARK_FAMILIES)]
    end = start + config.time_budget
    out = []
    for family in families:
        left = end - time.perf_counter()
        t0 = time.perf_counter()
        progress("stage", name=f"{family} on Spark")
        model: Any
        if family == "linear":
            if len(families) > 1 and left < 0.3 * config.time_budget:  # keep the time for the trees
                out.append(_Candidate("linear_spark", "linear", None, float("nan"), 0.0,
                                      "skipped: too little of the time budget left"))
                continue
            model = train_linear(table, sample_X)
        else:
            finish = max(5.0, FINISH_SHARE * left)
            model = train_xgboost(table, params=None, seconds=max(1.0, left - finish), num_workers=_workers(spark),
                                  seed=config.seed)
        cand = _Candidate(f"{family}_spark", family, model, _score(table, model, metric), time.perf_counter() - t0)
        out.append(cand)
        progress("candidate", candidate=cand)
    if not any(c.status == "ok" for c in out):
        raise ConfigError("No model trained within the time budget: raise --time-budget.")
    return out


def _score(table: EncodedTable, model: Any, metric: Any) -> float:
    value = metric_on_cluster(score_held_out(table, model), metric, table.task)
    if value is None:  # a scikit-learn scorer without a Spark form: judged on held-out rows on the driver
        scored = score_held_out(table, model).limit(200_000).toPandas()
        weights = scored.pop(WEIGHT).to_numpy() if table.weight is not None else None
        raw = scored.drop(columns=[scored.columns[0]]).to_numpy()
        value = metric(scored.iloc[:, 0].to_numpy(), raw if raw.shape[1] > 1 else raw[:, 0], weights)
    return float(value)


def _leaderboard(candidates: list[_Candidate], best: _Candidate, sample_X: np.ndarray, *,
                 overhead: float) -> list[dict[str, Any]]:
    rows = []
    batch = sample_X[:2000]
    for c in candidates:
        ms_row = one = float("nan")
        if c.model is not None and len(batch):
            t0 = time.perf_counter()
            c.model.predict_raw(batch)
            ms_row = 1000 * (time.perf_counter() - t0) / len(batch)
            one = latency_ms(c.model, batch[:1])
        rows.append({"model": c.name, "family": c.family, "phase": "spark", "score": c.score,
                     "fit_s": round(c.fit_seconds, 3), "predict_ms_per_row": round(ms_row, 4),
                     "predict_1row_ms": round(one + overhead, 4),
                     "best_iteration": getattr(c.model, "best_iteration", None), "status": c.status,
                     "stopped_by_time": bool(getattr(c.model, "stopped_by_time", False)),
                     "params": {k: v for k, v in (getattr(c.model, "params", {}) or {}).items()
                                if not k.startswith("_")}})
    chosen = next(r for r in rows if r["model"] == best.name)
    return [{**chosen, "model": "ensemble", "family": "ensemble", "phase": "ensemble",
             "params": {"weights": {best.name: 1.0}, "refit_on_all_rows": False}}, *rows]
