"""Nested values read on Spark as the local loader reads them: a struct flattened into dotted columns
(``user.age``, ``user.addr.city``), a list or a map (at the top or within a struct) as the JSON text
``plain_cell`` writes, character for character, from JSON Lines and from Parquet; and a model trained in
memory on such a file predicts the same through Spark as locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark, pytest.mark.long]  # make test-long: CI time

#: numbers whose text must come back as the local reader writes it (1.0 stays 1.0, 3 stays 3, 1e-05 stays so)
NUMBERS = [1.0, 1e-05, 3, 2.5, 0.1, 1.493, 0.30000000000000004, 123456789.123456789, -0.0012345678901234567, 1e22]
TAGS = [["a", "b"], [], ["é", "x y"], ["b"], ["naïve", "日本"], ["a"]]


def _records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows of JSON Lines: a list of tags (non-ASCII among them), an object holding numbers, text, a list of
    numbers and an object within it (absent in some rows), null in some rows; an object null in every row;
    a target moved by the tags and the object's fields."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        tags = TAGS[int(rng.integers(len(TAGS)))]
        age = int(rng.integers(18, 80))
        plan = str(rng.choice(["basic", "plus", None]))
        x = float(np.round(rng.normal(), 3))
        user: dict[str, Any] | None = {"age": age, "plan": None if plan == "None" else plan,
                                       "nums": [NUMBERS[(i + k) % len(NUMBERS)] for k in range(i % 3)] or None}
        if i % 4:
            user["addr"] = {"city": str(rng.choice(["Zürich", "Oslo"])), "zip": int(rng.integers(1000, 9999))}
        if i % 7 == 3:
            user = None
        y = 2.0 * x + 1.5 * ("a" in tags) - 0.8 * len(tags) + (0.05 * age if user else 0.0) + rng.normal(0, 0.1)
        rows.append({"x": x, "tags": tags, "user": user, "none": None, "y": round(y, 4)})
    return rows


def _jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _parquet(path: Path) -> Path:
    """Parquet written by pyarrow: a struct (a nested struct null in some filled rows, a list within it), a
    list, a list of lists, a list of structs, a map, float32 numbers, and a struct null in every row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    user = pa.struct([("age", pa.int64()), ("addr", pa.struct([("city", pa.string())])),
                      ("nums", pa.list_(pa.float64()))])
    table = pa.table({
        "id": [1, 2, 3, 4],
        "tags": pa.array([["a", "b"], [], None, ["é"]], pa.list_(pa.string())),
        "f32": pa.array([[0.1, 1.0], [1e-05], None, [2.5]], pa.list_(pa.float32())),
        "grid": pa.array([[[1, 2], [3]], None, [[]], [[4]]], pa.list_(pa.list_(pa.int64()))),
        "items": pa.array([[{"a": 1, "b": None}], None, [], [{"a": 2, "b": "x"}]],
                          pa.list_(pa.struct([("b", pa.string()), ("a", pa.int64())]))),
        "counts": pa.array([[("k", 1), ("a", 2)], None, [], [("z", 3)]], pa.map_(pa.string(), pa.int64())),
        "user": pa.array([{"age": 3, "addr": {"city": "Zürich"}, "nums": [1.0, 1e-05, 3.0]}, None,
                          {"age": 5, "addr": None, "nums": None}, {"age": None, "addr": {"city": None}, "nums": []}],
                         user),
        "dead": pa.array([None] * 4, pa.struct([("x", pa.int64())])),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _cells(s: pd.Series) -> list[Any]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in s]


def _same_frame(got: pd.DataFrame, want: pd.DataFrame, *, ordered: bool) -> None:
    """The same columns holding the same values, text and numbers exactly (the local JSON Lines reader parses
    1.493 as 1.493, as Spark does: pandas' default, without precise_float, read 1.4929999999999999)."""
    if ordered:
        assert list(got.columns) == list(want.columns)
    assert sorted(got.columns) == sorted(want.columns)
    for c in want.columns:
        if pd.api.types.is_numeric_dtype(want[c]) and pd.api.types.is_numeric_dtype(got[c]):
            np.testing.assert_array_equal(got[c].astype(float), want[c].astype(float), err_msg=c)
        else:
            assert _cells(got[c]) == _cells(want[c]), c


def test_json_lines_nested_values_read_on_spark_as_locally(spark, tmp_path: Path) -> None:
    from mlengineer.data.load import load_table
    from mlengineer.spark.read import read_table

    path = _jsonl(_records(60), tmp_path / "rows.jsonl")
    want = load_table(path)
    got = read_table(spark, str(path)).frame.toPandas()
    # Spark's schema inference orders a JSON file's keys by name: the same columns, in another order
    _same_frame(got, want, ordered=False)
    assert {"tags", "user.age", "user.plan", "user.nums", "user.addr.city", "user.addr.zip", "none"} <= set(got)
    assert '["\\u00e9", "x y"]' in set(got["tags"])  # json.dumps' text: a space after commas, non-ASCII escaped
    assert '[1.0, 1e-05]' in set(got["user.nums"]) and '[3, 2.5]' in set(got["user.nums"])
    # a query over DATA sees the columns the local loader hands DuckDB
    query = read_table(spark, str(path), sql="SELECT `user.age`, tags FROM data").frame.toPandas()
    assert _cells(query["tags"]) == _cells(want["tags"])


@pytest.mark.parametrize("arrow", [True, False], ids=["arrow-udf", "pandas-udf"])
def test_parquet_structs_lists_and_maps_read_on_spark_as_locally(spark, tmp_path: Path, arrow: bool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import functions as F

    from mlengineer.data.load import load_table
    from mlengineer.spark.read import read_table

    if not arrow:  # PySpark before 4.1, which has no Arrow UDF
        monkeypatch.delattr(F, "arrow_udf", raising=False)
    path = _parquet(tmp_path / "nested.parquet")
    want = load_table(path)
    got = read_table(spark, str(path)).frame.toPandas()
    _same_frame(got, want, ordered=True)
    # the struct null in every row stays one empty column; a nested struct null in some filled rows adds none
    assert {"dead", "user.addr.city"} <= set(got) and "dead.x" not in got and "user.addr" not in got
    assert got["counts"].iloc[0] == '[["k", 1], ["a", 2]]' and got["f32"].iloc[0] == "[0.10000000149011612, 1.0]"


@pytest.mark.slow
def test_a_model_trained_in_memory_on_nested_json_predicts_the_same_on_spark(spark, tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.data.load import load_table
    from mlengineer.spark.score import score_file

    train = _jsonl(_records(300), tmp_path / "train.jsonl")
    model = mlengineer.train(str(train), target="y", time_budget=2, families=["linear"], out=tmp_path / "m",
                             track=False)
    assert {"tags", "user.age", "user.nums"} <= set(model.feature_names)
    rows = _jsonl([{k: v for k, v in r.items() if k != "y"} for r in _records(200, seed=1)],
                  tmp_path / "rows" / "rows.jsonl")
    assert score_file(tmp_path / "m", str(rows), tmp_path / "scored.parquet", say=None) == 200
    got = pd.read_parquet(tmp_path / "scored.parquet")
    want = mlengineer.load(tmp_path / "m").predict_frame(load_table(rows))
    np.testing.assert_allclose(got["prediction"], want["prediction"], rtol=1e-6, atol=1e-6)
