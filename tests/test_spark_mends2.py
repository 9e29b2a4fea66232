"""Mends from a user's hour on the Spark path: Spark reads a CSV as the local reader reads it (quoted line
breaks, quotes written twice, a header naming a column twice, no header); a column named ``a.b`` trains and
scores; ``--time-column`` reads dates written in another format than ISO, and a row without one trains; the
CSV of predictions reads back with pandas; a bad query says one line; options Spark training does not honour
are refused; and predict names the columns the model does not know."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.errors import ConfigError, DataError

pytest.importorskip("pyspark")

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark]

#: cells with a line break, a quote written twice by pandas ("") and a backslash before the closing quote
NOTES = ["line one\nline two", 'she said "hi"', "C:\\dir\\", "plain"]


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """A 3-class target moved by ``x`` and the category ``a.b``; a note column of awkward cells; dates written
    month first, one of them ``unknown`` and one missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    ab = rng.choice(["u", "v"], n)
    score = x + np.where(ab == "u", 0.8, -0.8) + rng.normal(scale=0.3, size=n)
    days = (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).strftime("%m/%d/%Y")
    df = pd.DataFrame({"x": x, "a.b": ab, "x2": rng.normal(size=n), "note": rng.choice(NOTES, n),
                       "day": np.asarray(days, dtype=object), "y": np.select([score < -0.5, score < 0.5],
                                                                             ["lo", "mid"], "hi")})
    df.loc[3, "day"], df.loc[5, "day"] = "unknown", None
    return df


def _csv(df: pd.DataFrame, path: Path, header: list[str] | bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, header=header)
    return path


# -- reading CSV as pandas reads it ------------------------------------------------------------------------
def test_quoted_line_breaks_and_doubled_quotes_are_read_as_pandas_reads_them(spark, tmp_path: Path) -> None:
    from mlengineer.spark.read import read_table

    df = _table(300)
    path = _csv(df, tmp_path / "t" / "p.csv")
    assert '"she said ""hi"""' in path.read_text()  # pandas writes a quote inside a cell twice
    table = read_table(spark, str(tmp_path / "t"))
    got = table.frame.toPandas()
    assert len(got) == 300  # a cell's line break is no new row
    want = pd.read_csv(path)
    assert list(got.columns) == list(want.columns)
    assert got["note"].tolist() == want["note"].tolist() == df["note"].tolist()


def test_a_large_csv_is_read_whole_only_when_a_quoted_cell_holds_a_line_break(spark, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.spark import csv_files
    from mlengineer.spark.read import read_table

    monkeypatch.setattr(csv_files, "SPLIT_BYTES", 100)  # every file here larger than a split
    df = _table(200)
    broken = _csv(df, tmp_path / "b" / "p.csv")
    whole = _csv(df.assign(note=df["note"].str.replace("\n", " ")), tmp_path / "w" / "p.csv")
    assert csv_files.multi_line(spark, [str(broken)], [broken.stat().st_size])
    assert not csv_files.multi_line(spark, [str(whole)], [whole.stat().st_size])  # split among tasks as usual
    for path in (broken, whole):
        got = read_table(spark, str(path)).frame.toPandas()
        assert got["note"].tolist() == pd.read_csv(path)["note"].tolist()


def test_a_header_naming_a_column_twice_is_named_and_audited_as_the_local_reader_does(spark, tmp_path: Path
                                                                                        ) -> None:
    from mlengineer.data.load import load_table
    from mlengineer.data.quality import audit
    from mlengineer.data.schema import infer_schema
    from mlengineer.spark.profile import examine
    from mlengineer.spark.read import read_table

    df = _table(60)[["x", "x2", "a.b", "y"]]
    path = _csv(df, tmp_path / "d" / "p.csv", header=["x", "x", "x.1", "y"])
    local = load_table(path)
    assert list(local.columns) == ["x", "x.2", "x.1", "y"]  # pandas skips a suffix the header already has
    table = read_table(spark, str(path))
    assert table.frame.columns == list(local.columns)  # Spark said x0, x1, x.1
    assert table.renamed == local.attrs["source"]["renamed_columns"] == {"x.2": "x"}
    want = {(f.column, f.message) for f in audit(local, infer_schema(local, "y"), task_kind="multiclass")
            if f.check == "duplicate_column_names"}
    found = examine(str(path), target="y", findings=True).findings
    assert found is not None and want
    assert {(f.column, f.message) for f in found if f.check == "duplicate_column_names"} == want
    # a file without a header: column_1, column_2, ... as in memory (Spark said _c0, _c1, ...)
    numbers = _csv(pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": [4, 5, 6]}), tmp_path / "n" / "p.csv", header=False)
    assert read_table(spark, str(numbers)).frame.columns == list(load_table(numbers).columns)


# -- names with a dot --------------------------------------------------------------------------------------
def test_map_batches_takes_and_gives_columns_of_any_name(spark) -> None:
    from mlengineer.spark.batches import map_batches

    frame = spark.createDataFrame(pd.DataFrame({"a.b": [1.0, 2.0], "odd `name` x": ["p", "q"]}))

    def twice(batches):  # noqa: ANN001, ANN202
        for b in batches:
            yield pd.DataFrame({"out.x": b["a.b"] * 2, "t.`s`": b["odd `name` x"]})

    got = map_batches(frame, twice, [("out.x", "double"), ("t.`s`", "string")])
    assert got.columns == ["out.x", "t.`s`"]
    assert got.toPandas().to_dict("list") == {"out.x": [2.0, 4.0], "t.`s`": ["p", "q"]}


# -- the time column ---------------------------------------------------------------------------------------
def test_time_column_reads_dates_in_the_schema_format_and_rows_without_one_train(spark, tmp_path: Path) -> None:
    from mlengineer.data.load import load_table
    from mlengineer.data.schema import infer_schema
    from mlengineer.spark.prepare import split_column
    from mlengineer.spark.read import read_table
    from mlengineer.training.config import TrainConfig

    path = _csv(_table(200), tmp_path / "t" / "p.csv")
    local = load_table(path)
    schema = infer_schema(local, "y")
    assert schema["day"].datetime_format == "%m/%d/%Y"
    frame = read_table(spark, str(path)).frame
    valid, words = split_column(frame, TrainConfig(target="y", time_column="day"), 200, schema=schema)
    got = frame.select("day", valid.alias("v")).toPandas()
    days = pd.to_datetime(got["day"], format="%m/%d/%Y", errors="coerce")
    assert "time-ordered" in words and 0.1 < got["v"].mean() < 0.3
    assert days[got["v"]].min() > days[~got["v"]].max()  # the latest rows held out
    assert not got["v"][days.isna()].any()  # 'unknown' and the empty cell train, as in memory
    frame = frame.withColumn("day", frame["note"])  # no cell a date
    with pytest.raises(DataError, match="holds no dates or times .e.g. '.*'. to order the rows by"):
        split_column(frame, TrainConfig(target="y", time_column="day"), 200, schema=schema)


# -- one training on Spark: a dotted name, a repeated header, month-first dates, line breaks ------------
@pytest.fixture(scope="module")
def spark_model(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlengineer.spark.train import train_spark

    folder = tmp_path_factory.mktemp("mends2")
    df = _table(600)
    _csv(df[["x", "a.b", "x2", "note", "day", "y"]], folder / "data" / "p.csv",
         header=["x", "a.b", "x", "note", "day", "y"])
    out = folder / "model"
    train_spark(str(folder / "data"), "y", time_budget=8, families=["linear"], time_column="day", out=out,
                track=False)
    return out


@pytest.mark.slow
def test_spark_trains_on_a_dotted_name_a_repeated_header_and_month_first_dates(spark_model: Path) -> None:
    import mlengineer

    model = mlengineer.load(spark_model)
    meta = model.metadata
    assert meta["spark"]["rows"] == 600  # no line break made a row
    assert {"a.b", "x.1", "note"} <= {c.name for c in model.schema.columns}
    assert "time-ordered holdout" in meta["split"]
    assert any(f["check"] == "duplicate_column_names" and f["column"] == "x.1" for f in meta["findings"])
    assert set(model.schema["note"].categories or []) == set(NOTES)


# -- scoring on Spark --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def memory_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small bundles trained in memory: on the column ``a.b``, and on the same column named ``ab``."""
    import mlengineer

    folder = tmp_path_factory.mktemp("mends2-memory")
    df = _table(400, seed=1).drop(columns=["day"])
    for name in ("a.b", "ab"):
        mlengineer.train(df.rename(columns={"a.b": name}), target="y", time_budget=5, families=["linear"],
                         out=folder / name, track=False)
    return {name: folder / name for name in ("a.b", "ab")}


def _rows(tmp_path: Path, name: str = "a.b", **extra: object) -> Path:
    """Rows to predict as a CSV (its notes hold line breaks and quotes), their column ``a.b`` named ``name``."""
    rows = _table(400, seed=1).drop(columns=["day", "y"]).rename(columns={"a.b": name}).assign(**extra)
    return _csv(rows, tmp_path / "rows" / "p.csv")


@pytest.mark.slow
def test_a_bundle_trained_in_memory_on_a_dotted_name_scores_on_spark(spark, memory_models: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.spark.score import score_file

    data = _rows(tmp_path)
    assert score_file(memory_models["a.b"], str(data), tmp_path / "scored.parquet", say=None) == 400
    got = pd.read_parquet(tmp_path / "scored.parquet")
    want = mlengineer.load(memory_models["a.b"]).predict_frame(pd.read_csv(data))
    assert got["prediction"].tolist() == want["prediction"].tolist()
    np.testing.assert_allclose(got["proba_hi"], want["proba_hi"], rtol=1e-6)


@pytest.mark.slow
def test_the_csv_spark_writes_reads_back_with_pandas(spark, memory_models: dict[str, Path], tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.spark.score import score_file

    data = _rows(tmp_path, "ab")
    score_file(memory_models["ab"], str(data), tmp_path / "scored.csv", interval=0.9, say=None)
    text = (tmp_path / "scored.csv").read_text()
    assert '""' in text and '\\"' not in text  # a quote in a cell written twice, as pandas writes it, not \"
    got = pd.read_csv(tmp_path / "scored.csv")
    want = mlengineer.load(memory_models["ab"]).predict_frame(pd.read_csv(data), interval=0.9)
    assert len(got) == 400 and got["prediction"].tolist() == want["prediction"].tolist()
    assert [json.loads(s) for s in got["prediction_set"]] == list(want["prediction_set"])


@pytest.mark.slow
def test_predict_on_spark_names_the_columns_the_model_does_not_know(spark, memory_models: dict[str, Path],
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from mlengineer.spark.score import score_file

    data = _rows(tmp_path, "ab", **{"extra col": 1})
    capsys.readouterr()
    score_file(memory_models["ab"], str(data), tmp_path / "scored.parquet")
    assert capsys.readouterr().out.strip() == (
        "Column 'extra col' is not one the model knows: predict leaves it out (the server refuses such a request).")


# -- one line for a bad query ------------------------------------------------------------------------------
def test_a_bad_query_says_one_line_and_logs_no_json_trace(spark, capfd: pytest.CaptureFixture[str]) -> None:
    from mlengineer.spark.read import read_table
    from mlengineer.spark.session import get_spark, spark_errors

    get_spark()  # the active session: its loggers quieted however it was started
    assert logging.getLogger("SQLQueryContextLogger").level >= logging.CRITICAL
    capfd.readouterr()
    with pytest.raises(DataError, match="Spark failed: .*nope"), spark_errors():
        read_table(spark, None, sql="SELECT nope FROM range(3)").frame.count()
    err = capfd.readouterr().err
    assert "SQLQueryContextLogger" not in err and '"errorClass"' not in err and len(err) < 500


# -- options Spark training does not honour ----------------------------------------------------------------
@pytest.mark.parametrize(("option", "words"), [
    ({"max_predict_ms_per_row": 0.001}, "--max-predict-ms .max_predict_ms_per_row. is for in-memory training"),
    ({"validation": "kfold"}, "validation 'kfold' is for in-memory training"),
    ({"max_search_rows": 1000}, "max_search_rows is for in-memory training"),
    ({"n_jobs": 2}, "n_jobs is for in-memory training"),
])
def test_options_spark_training_ignores_are_refused_in_one_line(tmp_path: Path, option: dict[str, object],
                                                                words: str) -> None:
    from mlengineer.spark.train import train_spark

    with pytest.raises(ConfigError, match=words) as e:
        train_spark(str(tmp_path / "nowhere.csv"), "y", out=tmp_path / "m", track=False, **option)
    assert "\n" not in str(e.value)
