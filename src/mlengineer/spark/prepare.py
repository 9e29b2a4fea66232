"""From a raw Spark table to the encoded one the learners read: the CleaningPlan and the FeatureEncoder are
fitted on the driver's sample (they are small: types, categories, a few statistics) and applied on the
cluster by ``mapInPandas``, batch by batch, through the same ``CleaningPlan.apply`` and
``FeatureEncoder.transform`` as everywhere else; the held-out rows are marked on the cluster too (``holdout``).

The plan's counts (rows without a target, values unreadable as their column's type) are then taken over
every row, by the plan's own steps, so the bundle reports the whole table rather than the sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.clean import CleaningPlan, Conform, DropMissingTarget, conform_column, fit_cleaning_plan
from ..data.findings import Finding
from ..data.schema import Schema
from ..errors import ConfigError, DataError
from ..features.encoder import FeatureEncoder
from ..tasks import Task
from ..training.config import TrainConfig
from ..training.weights import WeightCounts, class_factors, refuse_bad_weights, weight_type_error
from .batches import map_batches
from .holdout import has_target, split_column, time_key
from .read import qcol
from .stats import TableStats, is_number_type, type_of

__all__ = ["FIT_WEIGHT", "LABEL", "VALID", "WEIGHT", "EncodedTable", "WeightCheck", "balance_classes", "check_weights",
           "encode_table", "fit_preparation", "plan_counts", "split_column", "time_key"]

LABEL = "__label"
VALID = "__valid"
#: the user's row weights (``TrainConfig.weight_column``) in the encoded table, as doubles
WEIGHT = "__weight"
#: the weights the learners fit with where the metric judges every class alike: the user's (or 1) times their
#: class's factor (``training.weights.class_factors``)
FIT_WEIGHT = "__fit_weight"


@dataclass
class EncodedTable:
    """The encoded table on the cluster (cached): feature columns ``f0..fk``, the encoded target and the
    held-out mark, with what the learners need to know about the features."""

    frame: Any
    task: Task
    encoder: FeatureEncoder
    n_train: int
    n_valid: int
    split: str
    feature_columns: list[str] = field(default_factory=list)
    #: the column of row weights (``WEIGHT``), or None where every row counts once
    weight: str | None = None
    #: the weights of the rows to train on and of the held-out rows, added up (the row counts without weights)
    weight_train: float = 0.0
    weight_valid: float = 0.0
    #: the column the learners fit with: ``weight``, ``FIT_WEIGHT`` (those balanced by class,
    #: ``balance_classes``), or None; held-out scores count ``weight`` alone
    fit_weight: str | None = None
    #: the cached frame (``frame`` may be a projection of it), released by ``release``
    cached: Any = None

    def release(self) -> None:
        (self.cached if self.cached is not None else self.frame).unpersist()

    @property
    def feature_names(self) -> list[str]:
        return list(self.encoder.feature_names_)

    @property
    def categorical(self) -> list[int]:
        return list(self.encoder.categorical_features_)

    @property
    def cardinalities(self) -> list[int]:
        return list(self.encoder.cardinalities_)


def fit_preparation(sample: pd.DataFrame, schema: Schema, config: TrainConfig,
                    findings: list[Finding]) -> tuple[CleaningPlan, FeatureEncoder]:
    """The cleaning plan and the feature encoder, fitted on the driver's sample as the local trainer fits
    them on its whole table (the same drops, keeps and roles)."""
    target = config.target
    drop = {c: "dropped by the user (--drop)" for c in config.drop}
    if config.group_column is not None and config.group_column not in config.keep:
        drop.setdefault(config.group_column, "the group column (a feature that names the group would leak across "
                        "folds)")
    if config.weight_column is not None:
        drop[config.weight_column] = "the weight column (row weights, not a feature)"
    plan = fit_cleaning_plan(sample, schema, drop=drop, keep=config.keep, findings=findings)
    clean = plan.apply(sample, training=True)
    if len(clean) < 10:
        raise DataError(f"Only {len(clean)} sampled rows have a target value: at least 10 are needed to train.")
    features = clean.drop(columns=[target])
    roles = {c: schema[c].role.value for c in features.columns}
    for c in config.keep:  # a kept identifier or constant is used as a category
        if roles.get(c) in ("identifier", "constant", "ignore"):
            roles[c] = "categorical"
    return plan, FeatureEncoder(roles).fit(features)


def encode_table(frame: Any, plan: CleaningPlan, encoder: FeatureEncoder, task: Task, target: str,
                 valid: Any, split: str, *, weight: str | None = None) -> EncodedTable:
    """The table cleaned, encoded and marked on the cluster, cached for the learners' passes; with ``weight``
    (a column of numbers ``check_weights`` passed), the rows' weights as the column ``WEIGHT``."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    names = [f"f{j}" for j in range(encoder.n_features_out_)]
    label_type = "double" if task.kind == "regression" else "int"
    extra = [] if weight is None else [WEIGHT]
    fields = [*((n, "float") for n in names), (LABEL, label_type), (VALID, "boolean"), *((w, "double") for w in extra)]
    needed = list(dict.fromkeys([*plan.feature_columns, target]))

    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            mark = batch.pop(VALID).to_numpy(dtype=bool)
            w = batch.pop(WEIGHT).to_numpy(dtype=np.float64, na_value=np.nan) if extra else None
            clean = plan.apply(batch, training=True)
            if not len(clean):
                continue
            X = encoder.transform(clean.drop(columns=[target]))
            out = pd.DataFrame(X, columns=names)
            out[LABEL] = task.encode(clean[target])
            rows = batch.index.get_indexer(clean.index)
            out[VALID] = mark[rows]
            if w is not None:
                out[WEIGHT] = w[rows]
            yield out

    raw = frame.select(*[qcol(c) for c in needed], valid.alias(VALID),
                       *([] if weight is None else [qcol(weight).cast("double").alias(WEIGHT)]))
    encoded = map_batches(raw, encode, fields).persist(StorageLevel.MEMORY_AND_DISK)
    sums = [F.sum(WEIGHT).alias("w")] if extra else []
    by = {bool(r[VALID]): (int(r["count"]), float(r["w"] or 0) if extra else float(r["count"]))
          for r in encoded.groupBy(VALID).agg(F.count(F.lit(1)).alias("count"), *sums).collect()}
    (n_train, w_train), (n_valid, w_valid) = by.get(False, (0, 0.0)), by.get(True, (0, 0.0))
    if n_train < 10 or n_valid < 1:
        encoded.unpersist()
        raise ConfigError(f"The split left {n_train:,} rows to train on and {n_valid:,} to validate on: too few. "
                          "Use more rows, or another --time-column/--group-column.")
    return EncodedTable(frame=encoded, task=task, encoder=encoder, n_train=n_train, n_valid=n_valid, split=split,
                        feature_columns=names, weight=WEIGHT if extra else None, weight_train=w_train,
                        weight_valid=w_valid, fit_weight=WEIGHT if extra else None, cached=encoded)


def balance_classes(table: EncodedTable) -> np.ndarray:
    """Make the learners fit ``table`` with class-balancing weights, as training in memory does for a metric that
    judges every class alike: each training row's weight (or 1) times its class's factor, from one aggregation of
    the training rows by class. Returns the factors, by encoded class."""
    from pyspark.sql import functions as F

    total = F.sum(table.weight) if table.weight is not None else F.count(F.lit(1))
    rows = table.frame.where(~F.col(VALID)).groupBy(LABEL).agg(total.alias("t")).collect()
    totals = np.zeros(len(table.task.classes))
    for r in rows:
        totals[int(r[LABEL])] = float(r["t"] or 0.0)
    factors = class_factors(totals)
    by_class = F.create_map(*[x for i, f in enumerate(factors) for x in (F.lit(i), F.lit(float(f)))])
    base = F.col(table.weight) if table.weight is not None else F.lit(1.0)
    table.frame = table.cached.withColumn(FIT_WEIGHT, base * by_class[F.col(LABEL)])
    table.fit_weight = FIT_WEIGHT
    return factors


class WeightCheck:
    """The weight column ``column`` of ``frame`` refused as training in memory refuses it, in the same words
    (``training.weights.refuse_bad_weights``): text, no value, infinity or a negative weight in a row that has a
    target (the rows ``plan`` keeps), or weights that add up to nothing. ``aggs`` count them over the labelled
    rows, made by a pass that already happens (``holdout.spark_split``'s ``tally``); ``judge`` reads their row.
    Only where one is found does it pass over ``frame`` again, for the first such row and its number in the
    input's order (the files in name order, as the local reader takes them, then the rows within each).
    ``value``: the column as doubles."""

    def __init__(self, frame: Any, column: str, plan: CleaningPlan, target: str) -> None:
        from pyspark.sql import functions as F

        self.frame, self.plan, self.target = frame, plan, target
        self.name, kind, c = f"The weight column {column!r}", type_of(frame, column), qcol(column)
        if kind == "string":  # numbers written as text are read as the local path reads them
            x = F.trim(c).try_cast("double")
            text, missing = c.isNotNull() & (x.isNull() | F.isnan(x)), c.isNull()
        elif kind == "boolean" or is_number_type(kind):
            x = c.cast("double")
            text, missing = F.lit(False), x.isNull() | F.isnan(x)
        else:
            raise weight_type_error(self.name, kind)
        number = ~text & ~missing
        self.value, self.text = x, c.cast("string")
        self.problems = {"text": text, "missing": missing, "infinite": number & (F.abs(x) == float("inf")),
                         "negative": number & (x < 0)}
        self.aggs = [F.count(F.lit(1)).alias("__w_rows"), F.sum(F.when(number, x)).alias("__w_total"),
                     *(F.count(F.when(e, 1)).alias(f"__w_{k}") for k, e in self.problems.items())]

    def judge(self, row: Any) -> None:
        """Refuse the column where ``row`` (of ``aggs``, over the labelled rows) counts a problem."""
        from pyspark.sql import functions as F

        counts = WeightCounts(rows=int(row["__w_rows"]), total=float(row["__w_total"] or 0.0),
                              text=int(row["__w_text"]), missing=int(row["__w_missing"]),
                              infinite=int(row["__w_infinite"]), negative=int(row["__w_negative"]))
        key = next((k for k in self.problems if row[f"__w_{k}"]), None)
        if key is not None:  # the first such row and its number: the rows before it in the input's order
            rows = self.frame.select(has_target(self.frame, self.plan, self.target).alias("__t"), *_place(),
                                     self.problems[key].alias("__p"), self.text.alias("__v"))
            first = rows.where(F.col("__t") & F.col("__p")).agg(F.min(F.struct("__f", "__i", "__v")).alias("m")
                                                                 ).first()["m"]
            f, i = F.col("__f"), F.col("__i")
            before = (f < first["__f"]) | ((f == first["__f"]) & (i < first["__i"]))
            counts.first[key] = self.frame.select(*_place()).where(before).count()
            counts.first_text = first["__v"]
        refuse_bad_weights(counts, self.name)


def check_weights(frame: Any, column: str, plan: CleaningPlan, target: str) -> Any:
    """``WeightCheck`` by a pass of its own (one aggregation; a second only where a problem is found). Returns
    the column as doubles."""
    check = WeightCheck(frame, column, plan, target)
    check.judge(frame.where(has_target(frame, plan, target)).agg(*check.aggs).first())
    return check.value


def _place() -> list[Any]:
    """Where a row lies in the input: its file and its place within it (Spark numbers rows by partition)."""
    from pyspark.sql import functions as F

    return [F.input_file_name().alias("__f"), F.monotonically_increasing_id().alias("__i")]


def plan_counts(frame: Any, plan: CleaningPlan, target: str, *, stats: TableStats | None = None) -> None:
    """Replace the plan's counts from the sample by counts over every row, made by the plan's own steps:
    rows without a target, and values that conforming turns into missing ones (only text columns can hold
    such values; typed columns convert without loss). When ``stats`` says ``frame`` is a random sample of
    a larger table (``of_rows``), the rows without a target come from the table's census and the unreadable
    values are the sample's counts scaled to the table, said as "about"."""
    drop = next((s for s in plan.steps if isinstance(s, DropMissingTarget)), None)
    conform = next((s for s in plan.steps if isinstance(s, Conform)), None)
    if conform is None:
        return
    text = [c for c, role in conform.roles.items()
            if role in ("numeric", "boolean", "datetime") and type_of(frame, c) == "string"]
    sampled = stats is not None and stats.of_rows > 0
    if drop is not None and stats is not None and sampled:
        _dropped(drop, stats.of_unlabelled, target)
        drop = None
    cols = list(dict.fromkeys([*text, *([target] if drop is not None else [])]))
    if not cols:
        return
    fields = [("__rows", "long"), *((f"c{i}", "long") for i in range(len(text)))]

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            row = {"__rows": [len(b) - len(drop.apply(b)) if drop is not None else 0]}
            for i, c in enumerate(text):
                s = b[c]
                row[f"c{i}"] = [int((s.notna() & conform_column(s, conform.roles[c],
                                                                conform.datetime_formats.get(c)).isna()).sum())]
            yield pd.DataFrame(row)

    totals = map_batches(frame.select(*[qcol(c) for c in cols]), count, fields).groupBy().sum().first()
    if drop is not None:
        _dropped(drop, int(totals[0] or 0), target)
    scale = stats.of_rows / max(stats.n_rows, 1) if stats is not None and sampled else 1.0
    lost = {c: int(round(int(totals[i + 1]) * scale)) for i, c in enumerate(text) if totals[i + 1]}
    conform.details = lost
    conform.rows_changed = int(np.sum(list(lost.values()))) if lost else 0
    about = "about " if sampled else ""
    conform.summary = "typed every feature column by its role" + (
        f"; values unreadable as their type became missing: {', '.join(f'{k} ({about}{v})' for k, v in lost.items())}"
        if lost else "")


def _dropped(drop: DropMissingTarget, n: int, target: str) -> None:
    drop.rows_changed = n
    drop.summary = f"dropped {n} rows without a value for {target!r}" if n else f"every row has a value for {target!r}"
