"""Spark as local: ``predict --engine spark`` says the notes local ``predict`` says of its input (categories the
model never saw, numbers far outside the training range: the same rule, the same words, the same example),
counted by a Spark aggregation; a JSON key holding an object in some rows and a number or text in others is one
column of JSON text on both engines, at any depth and in either JSON layout; and an object null in some rows
adds no empty column of its own on either engine, from JSON or Parquet, while one null in every row stays one
empty column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from mlengineer.data.load import load_table  # noqa: E402

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark]


def _cell(v: Any, text: bool = False) -> Any:
    """A value as both engines must agree on it: missing as None, numbers as floats, the rest as text; ``text``:
    every value as text (a column mixing objects and numbers is text on Spark, Python objects locally)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_) and not text:
        return float(v)
    return str(v)


def _same_columns(spark: Any, path: Path) -> pd.DataFrame:
    from mlengineer.spark.read import read_table

    want = load_table(path)
    got = read_table(spark, str(path)).frame.toPandas()
    assert sorted(got.columns) == sorted(want.columns), path.name
    for c in want.columns:
        text = not pd.api.types.is_numeric_dtype(got[c])
        assert [_cell(v, text) for v in got[c]] == [_cell(v, text) for v in want[c]], (path.name, c)
    return want


# -- 1. predict's notes ---------------------------------------------------------------------------------------
def test_spark_predict_says_the_notes_local_predict_says(spark, churn_model_dir: Path, churn_csv: Path,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mlengineer
    from mlengineer.serving.batch import InputNotes, predict_to_file
    from mlengineer.spark.score import score_file

    model = mlengineer.load(churn_model_dir)
    notes = InputNotes(model)
    assert "plan" in notes.categories and "monthly_fee" in notes.ranges
    df = pd.read_csv(churn_csv).head(60).drop(columns=["churn"])
    df["plan"] = df["plan"].astype(object)
    df.loc[[7, 9, 40], "plan"] = ["gold", "tin", "gold"]
    df.loc[[5, 50], "monthly_fee"] = [99999.0, -88888.0]
    rows = tmp_path / "rows"
    rows.mkdir()  # two parts: the example said is the first in the local reader's order, whichever Spark reads first
    df.iloc[:20].to_csv(rows / "part-a.csv", index=False)
    df.iloc[20:].to_csv(rows / "part-b.csv", index=False)

    predict_to_file(model, rows, tmp_path / "local.csv", notes=notes)
    want = notes.lines()
    assert len(want) == 2 and "; e.g. 99,999)" in want[1], want
    assert want[0] == f"Column 'plan': 3 rows hold categories the model never saw (e.g. 'gold'): read as " \
        f"{notes.read_as['plan']}."
    capsys.readouterr()
    assert score_file(churn_model_dir, str(rows), tmp_path / "spark.csv") == len(df)
    said = capsys.readouterr()
    assert [ln for ln in said.err.splitlines() if ln.startswith("Column ")] == want
    assert "never saw" not in said.out
    # rows the model knows: nothing said
    from mlengineer.spark.notes import input_notes
    from mlengineer.spark.read import read_table

    df.iloc[10:20].to_csv(tmp_path / "plain.csv", index=False)
    assert input_notes(read_table(spark, str(tmp_path / "plain.csv")).frame, model) == []


# -- 2. a key holding objects and other values ------------------------------------------------------------------
MIXED = [
    {"x": 1, "a": {"c": "u", "b": 1.0}, "m": {"k": {"z": [1, 2.50]}, "q": 1}},
    {"x": 2, "a": 5, "m": {"k": 7, "q": 2}},
    {"x": 3, "a": "t", "m": {"k": None, "q": 3}},
    {"x": 4, "a": [1, 2.50], "m": {"k": "text {not json", "q": 4}},
    {"x": 5, "a": None, "m": None},
]


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_a_key_holding_objects_and_other_values_is_one_column_of_json_text(spark, tmp_path: Path,
                                                                           layout: str) -> None:
    path = tmp_path / f"mixed.{layout}"
    if layout == "jsonl":
        path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in MIXED))
    else:
        path.write_text("[" + ",\n".join(json.dumps(r) for r in MIXED) + "]")
    want = _same_columns(spark, path)
    assert sorted(want.columns) == ["a", "m.k", "m.q", "x"]  # no a.b, a.c, m.k.z beside a and m.k
    # the object's text as the local reader writes it: keys sorted, a space after each comma and colon
    assert [_cell(v, True) for v in want["a"]] == ['{"b": 1.0, "c": "u"}', "5", "t", "[1, 2.5]", None]
    assert [_cell(v, True) for v in want["m.k"]] == ['{"z": [1, 2.5]}', "7", None, "text {not json", None]


# -- 3. objects null in some rows, or in all ------------------------------------------------------------------
NULLS = [
    {"x": 1, "gone": None, "some": None, "o": {"inner": None, "d": 1}, "dead": {"n": None}},
    {"x": 2, "gone": None, "some": {"b": None}, "o": {"inner": {"c": 1}, "d": 2}, "dead": {"n": None}},
    {"x": 3, "gone": None, "some": {"b": 3}, "o": {"d": 3}, "dead": {"n": None}},
]


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_an_object_null_in_some_rows_adds_no_empty_column_and_one_null_in_all_stays_one(spark, tmp_path: Path,
                                                                                       layout: str) -> None:
    path = tmp_path / f"nulls.{layout}"
    if layout == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in NULLS))
    else:
        path.write_text(json.dumps(NULLS))
    want = _same_columns(spark, path)
    assert sorted(want.columns) == ["dead.n", "gone", "o.d", "o.inner.c", "some.b", "x"]
    assert want["gone"].isna().all() and want["dead.n"].isna().all()


def test_a_parquet_struct_null_in_some_filled_rows_adds_no_empty_column(spark, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    user = pa.struct([("age", pa.int64()), ("addr", pa.struct([("city", pa.string())]))])
    table = pa.table({
        "id": [1, 2, 3],
        "user": pa.array([{"age": 3, "addr": {"city": "Oslo"}}, {"age": 5, "addr": None}, None], user),
        "dead": pa.array([None] * 3, pa.struct([("x", pa.int64())])),
        "hollow": pa.array([{"v": None}, {"v": None}, None], pa.struct([("v", pa.struct([("w", pa.int64())]))])),
    })
    pq.write_table(table, tmp_path / "rows.parquet")
    want = _same_columns(spark, tmp_path / "rows.parquet")
    assert sorted(want.columns) == ["dead", "hollow.v", "id", "user.addr.city", "user.age"]
