"""Spark training's held-out rows follow the local split's rules: rows that repeat another exactly (every cleaned
feature and the target) stay on the side of their copies where the table has enough distinct rows, and with
--group-column under --time-column each group stays whole, on the side of its first time; the validation
strategy says so in the local run's words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.clean import fit_cleaning_plan
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema
from mlengineer.data.split import row_content_keys
from mlengineer.training.config import TrainConfig
from mlengineer.training.validation import split_keys, split_words

pytest.importorskip("pyspark")

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark]

COPIES = "repeating another exactly kept on the side of their copies"
FIRST_TIME = ", whole groups (--group-column) on one side, each by its first time"


def _table(n: int = 240, copies: int = 90, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct rows, then ``copies`` of them again, each row with its own identifier (dropped by the plan):
    copies that differ only there."""
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({"x": rng.normal(size=n).round(4), "c": rng.choice(["a", "b", "c"], n),
                         "y": rng.integers(0, 2, n)})
    df = pd.concat([base, base.sample(copies, random_state=seed)], ignore_index=True)
    return df.assign(id=[f"r{i:05d}" for i in range(len(df))])


def _split(spark, df: pd.DataFrame, config: TrainConfig):  # noqa: ANN001, ANN202
    """(the rows as Spark marks them, with their copy key from the plan's cleaned rows; the split) as
    train_spark makes it."""
    from mlengineer.spark.holdout import spark_split
    from mlengineer.spark.prepare import fit_preparation
    from mlengineer.spark.read import driver_sample
    from mlengineer.spark.stats import spark_schema

    frame = spark.createDataFrame(df)
    sample = driver_sample(frame, len(df), 100_000)
    schema, _ = spark_schema(frame, sample, config.target)
    plan, _ = fit_preparation(sample, schema, config, [])
    split = spark_split(frame, config, len(df), schema=schema, plan=plan)
    got = frame.select("*", split.valid.alias("held")).toPandas()
    got["key"] = row_content_keys(plan.apply(got.drop(columns=["held"]), training=True))
    assert "id" not in plan.feature_columns
    return got, split


def _local_words(df: pd.DataFrame, config: TrainConfig) -> str:
    """What the local run adds to its split's name for ``df``: its plan's cleaned rows through ``split_keys``."""
    schema = infer_schema(df, config.target)
    drop = {config.group_column: "the group column"} if config.group_column else {}
    plan = fit_cleaning_plan(df, schema, drop=drop, findings=audit(df, schema, task_kind="binary"))
    clean = plan.apply(df, training=True)
    groups = df[config.group_column].to_numpy() if config.group_column else None
    order = df[config.time_column].to_numpy(dtype=float) if config.time_column else None
    _, _, copies = split_keys(clean, groups, order)
    return split_words("", copies=copies, user_groups=groups is not None, timed=order is not None,
                       classification=True)


def test_copies_stay_on_the_side_of_their_copies_on_spark(spark) -> None:
    """Copies differing only in an identifier were split by the whole row's hash: now by their content's."""
    df = _table()
    config = TrainConfig(target="y")
    got, split = _split(spark, df, config)
    assert (got.groupby("key")["held"].nunique() == 1).all()
    assert 0.1 < got["held"].mean() < 0.3
    assert split.copies == 90 and split.words.startswith("holdout of 20% of rows at random")
    words = split.strategy(int(got["held"].sum()), classification=True)
    assert words.endswith(f", on Spark ({int(got['held'].sum())} rows); 90 rows {COPIES}")
    assert _local_words(df, config) == f"; 90 rows {COPIES}"
    other, _ = _split(spark, df, TrainConfig(target="y", seed=7))  # the seed moves the split, copies still whole
    assert not other["held"].equals(got["held"]) and (other.groupby("key")["held"].nunique() == 1).all()


def test_few_distinct_rows_split_across_copies_on_spark_as_in_memory(spark) -> None:
    """Under 50 distinct rows copies are how the table is: split across them, and nothing said, as in memory."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"c": rng.choice(list("abcd"), 300), "d": rng.choice(list("pq"), 300),
                       "y": rng.integers(0, 2, 300)}).assign(id=[f"r{i:04d}" for i in range(300)])
    config = TrainConfig(target="y")
    got, split = _split(spark, df, config)
    assert split.copies == 0 and COPIES not in split.strategy(1, classification=True)
    assert _local_words(df, config) == ""
    assert (got.groupby("key")["held"].nunique() == 2).any() and 0.1 < got["held"].mean() < 0.3


def test_groups_under_a_time_column_stay_whole_by_their_first_time_on_spark(spark) -> None:
    """--group-column with --time-column: the time cut used to split 34 of 40 groups; now each is whole, held
    out where its first time is among the latest."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"g": [f"k{i % 40}" for i in range(400)], "t": rng.permutation(400).astype(float),
                       "x": rng.normal(size=400).round(4), "y": rng.integers(0, 2, 400)})
    df.loc[::50, "g"] = None  # rows without a key: groups of their own
    config = TrainConfig(target="y", group_column="g", time_column="t")
    got, split = _split(spark, df, config)
    keyed = got[got["g"].notna()]
    assert (keyed.groupby("g")["held"].nunique() == 1).all() and 0.1 < got["held"].mean() < 0.35
    first = keyed.groupby("g").agg(start=("t", "min"), held=("held", "first"))
    assert first.loc[first["held"], "start"].min() > first.loc[~first["held"], "start"].max()
    assert split.copies == 0 and split.words.startswith("time-ordered holdout")
    assert split.strategy(9, classification=True).endswith(f", on Spark (9 rows){FIRST_TIME}")
    assert _local_words(df, config) == FIRST_TIME


def test_copies_in_several_groups_join_them_and_copies_take_their_first_time_on_spark(spark) -> None:
    """Groups that copies link are held out together (merge_groups' rule); without groups, under a time column,
    copies take their first time; no copy on both sides either way."""
    df = _table(seed=3)
    df["g"] = df.groupby(["x", "c", "y"]).ngroup().map(lambda i: f"k{i % 80}")  # copies in their original's group
    moved = df.index[df.duplicated(["x", "c", "y"])][:6]
    df.loc[moved, "g"] = [f"k{i}" for i in range(10, 16)]  # but 6 in another group: they join the two
    config = TrainConfig(target="y", group_column="g")
    got, split = _split(spark, df, config)
    assert (got.groupby("key")["held"].nunique() == 1).all() and (got.groupby("g")["held"].nunique() == 1).all()
    assert split.copies == 90 and 0.05 < got["held"].mean() < 0.4
    assert split.strategy(5, classification=True).endswith(f"; 90 rows {COPIES}")
    assert _local_words(df, config) == f"; 90 rows {COPIES}"
    df["t"] = np.random.default_rng(4).permutation(len(df)).astype(float)
    config = TrainConfig(target="y", time_column="t")
    got, split = _split(spark, df.drop(columns=["g"]), config)
    assert (got.groupby("key")["held"].nunique() == 1).all() and split.copies == 90
    first = got.groupby("key").agg(start=("t", "min"), held=("held", "first"))
    assert first.loc[first["held"], "start"].min() > first.loc[~first["held"], "start"].max()
    assert _local_words(df.drop(columns=["g"]), config) == f"; 90 rows {COPIES}"


@pytest.mark.slow
def test_spark_training_says_the_local_words(spark, tmp_path: Path) -> None:
    """One tiny training on Spark and in memory on the same table, with groups under a time column and copies:
    both record the same words for the split (the mark, a window per group, read by the encoding and the sample
    of held-out rows alike)."""
    import mlengineer
    from mlengineer.spark.train import train_spark

    rng = np.random.default_rng(5)
    base = pd.DataFrame({"g": [f"k{i % 40}" for i in range(240)], "t": rng.permutation(240).astype(float),
                         "x": rng.normal(size=240).round(4), "y": rng.integers(0, 2, 240)})
    df = pd.concat([base, base.sample(90, random_state=5)], ignore_index=True)
    path = tmp_path / "copies.parquet"
    df.to_parquet(path)
    options = {"group_column": "g", "time_column": "t", "track": False}
    model = train_spark(str(path), "y", time_budget=4, families=["linear"], out=tmp_path / "m", **options)
    local = mlengineer.train(df, "y", time_budget=2, out=tmp_path / "local", **options)
    words = f"{FIRST_TIME}; 90 rows {COPIES}"
    assert model.metadata["split"].endswith(words) and "on Spark" in model.metadata["split"]
    assert local.metadata["split"].endswith(words)
