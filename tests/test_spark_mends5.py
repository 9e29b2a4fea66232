"""Spark as local, five more: rows equal once cleaned are copies on Spark as in memory (the copy key hashes the
cleaned values); copies whose groups are too many to join are said so in the split's words; a JSON key mixing
objects and numbers reads its numbers as local cleaning does; predict notes for nested columns agree; and the
weight column is checked by the split's own pass, not a second one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.clean import fit_cleaning_plan
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema
from mlengineer.data.split import row_content_keys
from mlengineer.errors import DataError
from mlengineer.training.config import TrainConfig
from mlengineer.training.validation import split_keys

pytest.importorskip("pyspark")

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark]

COPIES = "repeating another exactly kept on the side of their copies"


def _table() -> pd.DataFrame:
    """240 rows of text as a file holds it, then 60 of them again written otherwise ("0.5" as "0.50" or " 0.5",
    "a" as " a", "yes" as "Yes"): copies once cleaned, not in their raw values. A weight column and a group
    column (no features); the copies fall in other groups than their originals."""
    rng = np.random.default_rng(0)
    n = 240
    base = pd.DataFrame({"x": [f"{v:.2f}" for v in rng.normal(size=n)], "c": rng.choice(["a", "b", "c"], n),
                         "b": rng.choice(["yes", "no"], n), "y": rng.integers(0, 2, n)})
    again = base.sample(60, random_state=0)
    again = again.assign(x=[v + "0" if i % 2 else " " + v for i, v in enumerate(again["x"])], c=" " + again["c"],
                         b=again["b"].str.capitalize())
    df = pd.concat([base, again], ignore_index=True)
    return df.assign(w=np.linspace(0.5, 2.0, len(df)), g=[f"k{i % 50}" for i in range(len(df))])


#: the configuration the plan is fitted with: the weight and the group column are no features
CONFIG = TrainConfig(target="y", weight_column="w", group_column="g")


def _prepared(spark, df: pd.DataFrame):  # noqa: ANN001, ANN202
    """(the Spark table, its schema and plan) as train_spark fits them on the driver's sample."""
    from mlengineer.spark.prepare import fit_preparation
    from mlengineer.spark.read import driver_sample
    from mlengineer.spark.stats import spark_schema

    frame = spark.createDataFrame(df)
    sample = driver_sample(frame, len(df), 100_000)
    schema, _ = spark_schema(frame, sample, "y")
    plan, _ = fit_preparation(sample, schema, CONFIG, [])
    return frame, schema, plan


@pytest.fixture(scope="module")
def table(spark):  # noqa: ANN001, ANN201
    """The one small table of this module, with its Spark frame, schema and plan."""
    df = _table()
    return (df, *_prepared(spark, df))


def _local_copies(df: pd.DataFrame, drop: dict[str, str]) -> tuple[int, np.ndarray]:
    """(how many rows repeat another, each row's copy key) as training in memory finds them: on the cleaned rows."""
    schema = infer_schema(df, "y")
    plan = fit_cleaning_plan(df, schema, drop=drop, findings=audit(df, schema, task_kind="binary"))
    clean = plan.apply(df, training=True)
    return split_keys(clean, None, None)[2], row_content_keys(clean)


def test_rows_equal_once_cleaned_are_copies_on_spark_as_in_memory(table) -> None:  # noqa: ANN001
    """The copy key hashed the raw values: "0.50" and "0.5", " a" and "a", "Yes" and "yes" were no copies on
    Spark, where local training calls them copies. Now both engines find the same copies, and keep them whole."""
    from mlengineer.spark.holdout import cleaned_key, content_key, spark_split

    df, frame, schema, plan = table
    config = TrainConfig(target="y")
    columns = [*plan.feature_columns, "y"]
    raw = frame.select(content_key(frame, columns).alias("k")).distinct().count()
    cleaned = frame.select(cleaned_key(frame, plan, columns).alias("k")).distinct().count()
    copies, keys = _local_copies(df, {"w": "weights", "g": "groups"})
    assert copies >= 60 and cleaned == len(df) - copies and raw > cleaned + 50
    split = spark_split(frame, config, len(df), schema=schema, plan=plan)
    held = frame.select(split.valid.alias("held")).toPandas()["held"].to_numpy()
    assert split.copies == copies and pd.Series(held).groupby(keys).nunique().max() == 1
    assert 0.1 < held.mean() < 0.35
    assert split.strategy(int(held.sum()), classification=True).endswith(f"; {copies} rows {COPIES}")


def test_copies_whose_groups_are_too_many_to_join_are_said(table, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Past MAX_LINKED (group, copy) links the groups stay whole without being joined, and the words said nothing
    of copies: now they say what was done."""
    from mlengineer.spark import holdout

    df, frame, schema, plan = table
    config = TrainConfig(target="y", group_column="g")
    copies, _ = _local_copies(df, {"w": "weights", "g": "groups"})
    monkeypatch.setattr(holdout, "MAX_LINKED", 5)
    split = holdout.spark_split(frame, config, len(df), schema=schema, plan=plan)
    assert split.copies == 0 and split.unjoined == copies >= 60
    got = frame.select("g", split.valid.alias("held")).toPandas()
    assert got.groupby("g")["held"].nunique().max() == 1 and 0 < got["held"].mean() < 0.4  # each group whole
    words = split.strategy(int(got["held"].sum()), classification=True)
    assert COPIES not in words and words.endswith(
        f"; {copies} rows repeating another exactly kept with their own group only: the groups copies link "
        "were not joined (more than 5 links), so a copy may lie on the other side from one in another group")


#: JSON Lines as written by hand: numbers in the forms a file may hold them (2.0, 1.50, 1e+20, -0.0, 1E2)
MIXED_LINES = [
    '{"a": {"b": 1}, "u": {"code": {"z": 1}, "age": 30}, "y": 0}',
    '{"a": 2.0, "u": {"code": 2.0, "age": 31}, "y": 1}',
    '{"a": 2, "u": {"code": 2, "age": 32}, "y": 0}',
    '{"a": 1.50, "u": {"code": 1.50, "age": 33}, "y": 1}',
    '{"a": 1e+20, "u": {"code": 1E2, "age": 34}, "y": 0}',
    '{"a": -0.0, "u": {"code": "text", "age": 35}, "y": 1}',
    '{"a": "007", "u": {"code": null, "age": 36}, "y": 0}',
    '{"a": null, "u": null, "y": 1}',
]


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_a_key_mixing_objects_and_numbers_cleans_alike_on_both_engines(spark, tmp_path: Path, layout: str) -> None:
    """Spark held such a key's numbers as their text ("2.0", "1.50"), local as numbers (category "2", "1.5"):
    local is the reference (the server reads a record's 2.0 as a number too); Spark writes the category."""
    from mlengineer.data.load import load_table
    from mlengineer.spark.read import read_table

    rows = [json.loads(line) for line in MIXED_LINES] * 3
    path = tmp_path / f"mixed.{layout}"
    path.write_text("\n".join(MIXED_LINES * 3) + "\n" if layout == "jsonl" else
                    "[" + ",\n".join(MIXED_LINES * 3) + "]")
    assert len(rows) == 24
    local = load_table(path)
    got = read_table(spark, str(path)).frame.toPandas()[list(local.columns)]
    plan = fit_cleaning_plan(local, infer_schema(local, "y", {"a": "categorical", "u.code": "categorical"}))
    want, have = plan.apply(local, training=True), plan.apply(got, training=True)
    for c in ("a", "u.code"):
        assert have[c].tolist() == want[c].tolist(), c
    assert want["a"].iloc[:7].tolist() == ['{"b": 1}', "2", "2", "1.5", "100000000000000000000", "0", "007"]
    assert want["u.code"].iloc[:7].tolist() == ['{"z": 1}', "2", "2", "1.5", "100", "text", None]


@pytest.mark.slow
def test_predict_notes_for_nested_columns_agree_on_spark(spark, tmp_path: Path) -> None:
    """A model trained in memory on nested JSON (a key mixing objects and numbers within an object among its
    columns): Spark's predict notes for the flattened columns are local predict's, word for word, and a number
    written 1.50 is no category the model never saw (Spark said so of its text "1.50")."""
    import mlengineer
    from mlengineer.data.load import load_table
    from mlengineer.serving.batch import InputNotes
    from mlengineer.spark.notes import input_notes
    from mlengineer.spark.read import read_table

    rng = np.random.default_rng(3)
    train = [{"x": float(rng.normal()), "u": {"plan": str(rng.choice(["a", "b"])), "age": int(rng.integers(20, 60)),
                                            "code": {"k": 1} if i % 5 == 0 else float(rng.choice([0.5, 1.5]))},
              "y": int(rng.integers(0, 2))} for i in range(120)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    model = mlengineer.train(str(tmp_path / "train.jsonl"), target="y", time_budget=2, families=["linear"],
                             out=tmp_path / "m", track=False)
    assert {"u.plan", "u.age", "u.code"} <= set(model.feature_names)
    lines = ['{"x": 0.1, "u": {"plan": "gold", "age": 9000, "code": 1.50}}',
             '{"x": 0.2, "u": {"plan": "a", "age": 30, "code": {"k": 1}}}'] * 3
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    notes = InputNotes(model)
    notes.add(load_table(tmp_path / "rows.jsonl"))
    got = input_notes(read_table(spark, str(tmp_path / "rows.jsonl")).frame, mlengineer.load(tmp_path / "m"))
    assert got == notes.lines() and len(got) == 2
    assert got[0].startswith("Column 'u.plan': 3 rows hold categories") and got[1].startswith("Column 'u.age'")


def test_the_weight_column_is_checked_by_the_split_pass(spark, table) -> None:  # noqa: ANN001
    """check_weights was a pass of its own before the split's: now its counts ride on the aggregation that counts
    the copies (no more Spark jobs than the split alone), and a bad weight is refused there in the same line."""
    from mlengineer.spark.holdout import spark_split
    from mlengineer.spark.prepare import WeightCheck, check_weights

    df, frame, schema, plan = table
    config = TrainConfig(target="y", weight_column="w")
    sc = spark.sparkContext

    def jobs(group: str, **options: object) -> int:
        sc.setJobGroup(group, group)
        try:
            spark_split(frame, config, len(df), schema=schema, plan=plan, **options)  # type: ignore[arg-type]
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        return len(sc.statusTracker().getJobIdsForGroup(group))

    check = WeightCheck(frame, "w", plan, "y")
    assert jobs("mends5-split") == jobs("mends5-split-checked", tally=check) > 0
    frame = spark.createDataFrame(df.assign(w=df["w"].where(df.index != 7, -1.0)))
    with pytest.raises(DataError) as alone:
        check_weights(frame, "w", plan, "y")
    with pytest.raises(DataError) as folded:
        spark_split(frame, config, len(df), schema=schema, plan=plan, tally=WeightCheck(frame, "w", plan, "y"))
    assert str(folded.value) == str(alone.value) and "negative" in str(alone.value)
