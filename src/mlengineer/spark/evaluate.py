"""Validation on the cluster: the held-out rows scored where they lie (``mapInPandas`` over the exported
model's ``predict_raw``), and the metric computed by Spark aggregations and evaluators, so no row of them
travels to the driver. The metrics mlengineer names are all here (ROC AUC exact, from sorted scores); a
scikit-learn scorer name falls back to a sample of held-out rows scored on the driver. Where the table holds
the user's row weights (``WEIGHT``), every metric counts each row by its weight, as ``Metric(y, raw, weights)``
does in memory: means become weighted means, counts sums of weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..metrics import Metric
from ..tasks import Task
from .prepare import LABEL, VALID, WEIGHT, EncodedTable

__all__ = ["metric_on_cluster", "score_held_out"]

_EPS = 1e-15


def score_held_out(table: EncodedTable, predictor: Any) -> Any:
    """The held-out rows' encoded target, their weight (``WEIGHT``, where the table has weights) and the
    predictor's raw output (``p0..pk-1`` or ``pred``)."""
    task = table.task
    names = table.feature_columns
    outputs = [f"p{i}" for i in range(len(task.classes))] if task.is_classification else ["pred"]
    label_type = "double" if task.kind == "regression" else "int"
    weight = [] if table.weight is None else [WEIGHT]
    schema = ", ".join([f"{LABEL} {label_type}", *(f"{w} double" for w in weight), *(f"{o} double" for o in outputs)])

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            raw = np.asarray(predictor.predict_raw(b[names].to_numpy(dtype=np.float32)), dtype=np.float64)
            out = pd.DataFrame(raw.reshape(len(b), -1), columns=outputs)
            for c in reversed([LABEL, *weight]):
                out.insert(0, c, b[c].to_numpy())
            yield out

    from pyspark.sql import functions as F

    return table.frame.where(F.col(VALID)).select(LABEL, *weight, *names).mapInPandas(score, schema=schema)


def _weighted(scored: Any) -> bool:
    return WEIGHT in scored.columns


def _mean(scored: Any, x: Any) -> Any:
    """The mean of ``x`` over the scored rows: weighted by ``WEIGHT`` where they hold it."""
    from pyspark.sql import functions as F

    if not _weighted(scored):
        return F.avg(x)
    return F.sum(x * F.col(WEIGHT)) / F.sum(F.when(x.isNotNull(), F.col(WEIGHT)))


def _count(scored: Any, condition: Any) -> Any:
    """The rows where ``condition`` holds: their weights added up where the scored rows hold weights."""
    from pyspark.sql import functions as F

    return F.sum(F.when(condition, F.col(WEIGHT)).otherwise(0.0)) if _weighted(scored) else F.count(
        F.when(condition, 1))


def _true_proba(k: int) -> Any:
    from pyspark.sql import functions as F

    expr = F.lit(None).cast("double")
    for i in range(k):
        expr = F.when(F.col(LABEL) == i, F.col(f"p{i}")).otherwise(expr)
    return expr


def _argmax(k: int) -> Any:
    """The first class of highest probability, as numpy's argmax picks it."""
    from pyspark.sql import functions as F

    top = F.greatest(*[F.col(f"p{i}") for i in range(k)]) if k > 1 else F.col("p0")
    expr = F.lit(k - 1)
    for i in reversed(range(k)):
        expr = F.when(F.col(f"p{i}") == top, F.lit(i)).otherwise(expr)
    return expr


def _auc(scored: Any, score: str, positive: Any) -> float:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    weighted = {"weightCol": WEIGHT} if _weighted(scored) else {}
    frame = scored.select(positive.cast("double").alias("y"), scored[score].alias("s"), *weighted.values())
    return float(BinaryClassificationEvaluator(rawPredictionCol="s", labelCol="y", metricName="areaUnderROC",
                                               numBins=0, **weighted).evaluate(frame))


def _per_class(scored: Any, k: int) -> list[dict[str, float]]:
    """Per class: rows, rows predicted as it, and rows rightly predicted as it (weights added up, where the
    rows hold them)."""
    from pyspark.sql import functions as F

    pred = _argmax(k)
    exprs = []
    for i in range(k):
        exprs += [_count(scored, F.col(LABEL) == i).alias(f"n{i}"), _count(scored, pred == i).alias(f"p{i}"),
                  _count(scored, (pred == i) & (F.col(LABEL) == i)).alias(f"t{i}")]
    row = scored.agg(*exprs).first()
    return [{"n": row[f"n{i}"], "pred": row[f"p{i}"], "tp": row[f"t{i}"]} for i in range(k)]


def _f1(c: dict[str, float]) -> float:
    return 2 * c["tp"] / (c["n"] + c["pred"]) if c["n"] + c["pred"] else 0.0


def _classification(scored: Any, name: str, k: int) -> float | None:
    from pyspark.sql import functions as F

    if name == "roc_auc":
        if k == 2:
            return _auc(scored, "p1", F.col(LABEL) == 1)
        rows = scored.where(F.col(WEIGHT) > 0) if _weighted(scored) else scored  # classes of weight above 0
        present = [r[0] for r in rows.select(LABEL).distinct().collect()]
        return float(np.mean([_auc(scored, f"p{c}", F.col(LABEL) == c) for c in sorted(present)]))
    if name == "log_loss":
        p = F.least(F.greatest(_true_proba(k), F.lit(_EPS)), F.lit(1.0))
        return float(scored.agg(_mean(scored, -F.log(p))).first()[0])
    if name == "brier" and k == 2:
        return float(scored.agg(_mean(scored, (F.col("p1") - F.col(LABEL)) ** 2)).first()[0])
    if name == "accuracy":
        return float(scored.agg(_mean(scored, (_argmax(k) == F.col(LABEL)).cast("double"))).first()[0])
    if name in ("balanced_accuracy", "f1", "f1_macro"):
        cls = _per_class(scored, k)
        if name == "balanced_accuracy":
            return float(np.mean([c["tp"] / c["n"] for c in cls if c["n"]]))
        if name == "f1":
            return _f1(cls[1]) if k == 2 else None
        return float(np.mean([_f1(c) for c in cls]))
    return None


def metric_on_cluster(scored: Any, metric: Metric, task: Task) -> float | None:
    """``metric`` of the scored held-out rows, computed by Spark; None when it has no Spark form here."""
    from pyspark.sql import functions as F

    if task.is_classification:
        return _classification(scored, metric.name, len(task.classes))
    err = F.col("pred") - F.col(LABEL)
    if metric.name == "rmse":
        return float(np.sqrt(scored.agg(_mean(scored, err * err)).first()[0]))
    if metric.name == "mae":
        return float(scored.agg(_mean(scored, F.abs(err))).first()[0])
    if metric.name == "mape":
        eps = float(np.finfo(np.float64).eps)
        return float(scored.agg(_mean(scored, F.abs(err) / F.greatest(F.abs(F.col(LABEL)), F.lit(eps)))).first()[0])
    if metric.name == "r2":
        if _weighted(scored):
            return _weighted_r2(scored, err)
        row = scored.agg(F.sum(err * err).alias("sse"), F.var_pop(LABEL).alias("v"), F.count(LABEL).alias("n")).first()
        total = float(row["v"]) * row["n"]
        return 1.0 - float(row["sse"]) / total if total else 0.0
    return None


def _weighted_r2(scored: Any, err: Any) -> float:
    """R² with row weights (scikit-learn's ``r2_score(..., sample_weight=w)``): 1 - sum w e² / sum w (y - ȳ_w)²,
    the spread about the weighted mean from the sums of w, w y and w y², y taken from one row's target so that
    a large mean beside a small spread loses no precision in one pass."""
    from pyspark.sql import functions as F

    first = scored.select(LABEL).where(F.col(LABEL).isNotNull()).first()
    w, y = F.col(WEIGHT), F.col(LABEL) - F.lit(float(first[0]) if first is not None else 0.0)
    row = scored.agg(F.sum(w * err * err).alias("sse"), F.sum(w).alias("sw"), F.sum(w * y).alias("swy"),
                     F.sum(w * y * y).alias("swyy")).first()
    sw = float(row["sw"] or 0.0)
    total = float(row["swyy"]) - float(row["swy"]) ** 2 / sw if sw > 0 else 0.0
    return 1.0 - float(row["sse"]) / total if total > 0 else 0.0
