"""From a raw Spark table to the encoded one the learners read: the CleaningPlan and the FeatureEncoder are
fitted on the driver's sample (they are small: types, categories, a few statistics) and applied on the
cluster by ``mapInPandas``, batch by batch, through the same ``CleaningPlan.apply`` and
``FeatureEncoder.transform`` as everywhere else; the held-out rows are marked on the cluster too.

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
from .read import qcol
from .stats import TableStats, number_expr, type_of

__all__ = ["LABEL", "VALID", "EncodedTable", "encode_table", "fit_preparation", "plan_counts", "split_column"]

LABEL = "__label"
VALID = "__valid"
#: the held-out rows are capped at this many: more adds time to every boosting round, not accuracy
MAX_VALID_ROWS = 1_000_000


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


def split_column(frame: Any, config: TrainConfig, n_rows: int) -> tuple[Any, str]:
    """The held-out mark, computed on the cluster: the latest rows by ``time_column``, whole groups by
    ``group_column``, else rows at random; with the words that say which."""
    from pyspark.sql import functions as F

    share = min(config.holdout_fraction, max(0.01, MAX_VALID_ROWS / max(n_rows, 1)))
    if config.time_column:
        kind = type_of(frame, config.time_column)
        t = qcol(config.time_column)
        when = (number_expr(frame, config.time_column) if kind != "string" and not kind.startswith(("date", "timest"))
                else F.unix_micros(F.to_timestamp(t) if kind == "string" else t.cast("timestamp")).cast("double"))
        cut = frame.select(when.alias("t")).approxQuantile("t", [1 - share], 0.001)
        if not cut:
            raise DataError(f"--time-column {config.time_column!r} holds no times Spark can read.")
        return F.coalesce(when >= F.lit(cut[0]), F.lit(False)), (
            f"time-ordered holdout: the latest {share:.0%} of rows by {config.time_column!r}")
    if config.group_column:
        bucket = F.abs(F.xxhash64(qcol(config.group_column))) % 10_000
        return bucket < int(share * 10_000), f"grouped holdout: {share:.0%} of the {config.group_column!r} groups"
    # a hash of the row's values rather than rand(): the same rows come back held out in every later pass,
    # and copies of a row fall on one side of the split
    row = F.xxhash64(F.lit(config.seed), *[e for c in frame.columns for e in (qcol(c), qcol(c).isNull())])
    return F.abs(row % 10_000) < int(share * 10_000), f"holdout of {share:.0%} of rows at random (by row hash)"


def encode_table(frame: Any, plan: CleaningPlan, encoder: FeatureEncoder, task: Task, target: str,
                 valid: Any, split: str) -> EncodedTable:
    """The table cleaned, encoded and marked on the cluster, cached for the learners' passes."""
    from pyspark import StorageLevel

    names = [f"f{j}" for j in range(encoder.n_features_out_)]
    label_type = "double" if task.kind == "regression" else "int"
    schema = ", ".join([*(f"{n} float" for n in names), f"{LABEL} {label_type}", f"{VALID} boolean"])
    needed = list(dict.fromkeys([*plan.feature_columns, target]))

    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            mark = batch.pop(VALID).to_numpy(dtype=bool)
            clean = plan.apply(batch, training=True)
            if not len(clean):
                continue
            X = encoder.transform(clean.drop(columns=[target]))
            out = pd.DataFrame(X, columns=names)
            out[LABEL] = task.encode(clean[target])
            out[VALID] = mark[batch.index.get_indexer(clean.index)]
            yield out

    raw = frame.select(*[qcol(c) for c in needed], valid.alias(VALID))
    encoded = raw.mapInPandas(encode, schema=schema).persist(StorageLevel.MEMORY_AND_DISK)
    counts = encoded.groupBy(VALID).count().collect()
    by = {bool(r[VALID]): int(r["count"]) for r in counts}
    n_train, n_valid = by.get(False, 0), by.get(True, 0)
    if n_train < 10 or n_valid < 1:
        encoded.unpersist()
        raise ConfigError(f"The split left {n_train:,} rows to train on and {n_valid:,} to validate on: too few. "
                          "Use more rows, or another --time-column/--group-column.")
    return EncodedTable(frame=encoded, task=task, encoder=encoder, n_train=n_train, n_valid=n_valid, split=split,
                        feature_columns=names)


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
    schema = ", ".join(["__rows long", *(f"`c{i}` long" for i in range(len(text)))])

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            row = {"__rows": [len(b) - len(drop.apply(b)) if drop is not None else 0]}
            for i, c in enumerate(text):
                s = b[c]
                row[f"c{i}"] = [int((s.notna() & conform_column(s, conform.roles[c],
                                                                conform.datetime_formats.get(c)).isna()).sum())]
            yield pd.DataFrame(row)

    totals = frame.select(*[qcol(c) for c in cols]).mapInPandas(count, schema=schema).groupBy().sum().first()
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
