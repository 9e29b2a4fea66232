"""Mends from a new user's hour on the Spark path: the audit agrees with the local one on labels written
several ways, a one-class target and an identifier target; folders whose parts disagree (CSV headers,
Parquet schemas) are read right or refused in one line; Spark's failures name their cause; and predict
--engine spark never writes over its own input or a folder of other files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema
from mlengineer.errors import DataError, SchemaError
from mlengineer.tasks import infer_task_kind

from .conftest import run_cli

pytest.importorskip("pyspark")

from .spark_support import customers, spark_fixture, write_parts  # noqa: E402, F401

pytestmark = [pytest.mark.spark]


def _local_findings(df: pd.DataFrame, target: str) -> dict[tuple[str, str | None], str]:
    kind = infer_task_kind(df[target].dropna())[0]
    return {(f.check, f.column): f.message for f in audit(df, infer_schema(df, target), task_kind=kind)}


def _spark_findings(path: Path, target: str, **kw: object) -> dict[tuple[str, str | None], str]:
    from mlengineer.spark.profile import examine

    found = examine(str(path), target=target, findings=True, **kw).findings  # type: ignore[arg-type]
    assert found is not None
    return {(f.check, f.column): f.message for f in found}


# -- the audit ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_label_variants_are_counted_on_every_row_and_worded_as_the_local_audit(spark, tmp_path: Path) -> None:
    df = customers(600)
    rng = np.random.default_rng(3)
    df["churn"] = np.where(df["churn"] == "yes", rng.choice(["yes", "Yes "], len(df)), "no")
    # 'Yes ' is so rare that a 50-row sample may miss it; the finding must still count every row
    df.loc[df.index[df["churn"] == "Yes "][3:], "churn"] = "yes"
    df["region"] = np.where(rng.random(len(df)) < 0.3, df["region"].str.upper(), df["region"])
    got = _spark_findings(write_parts(df, tmp_path / "v"), "churn", sample_rows=50)
    want = _local_findings(df, "churn")
    assert got[("label_variants", "churn")] == want[("label_variants", "churn")]
    assert "'Yes ' (3)" in got[("label_variants", "churn")]
    assert got[("case_variants", "region")] == want[("case_variants", "region")]


@pytest.mark.slow
def test_a_one_class_or_identifier_target_is_an_audit_error_not_a_crash(spark, tmp_path: Path) -> None:
    df = customers(1200)
    df["churn"] = "yes"
    got = _spark_findings(write_parts(df, tmp_path / "one"), "churn")
    assert got[("single_class", "churn")] == _local_findings(df, "churn")[("single_class", "churn")]
    df["code"] = [f"K{i}" for i in range(len(df))]  # text, more values than classes can be
    got = _spark_findings(write_parts(df.drop(columns=["churn"]), tmp_path / "ids"), "code")
    assert got[("target_identifier", "code")] == _local_findings(df, "code")[("target_identifier", "code")]


# -- folders whose parts disagree --------------------------------------------------------------------------
def test_csv_parts_with_another_header_are_refused_not_read_by_position(spark, tmp_path: Path) -> None:
    from mlengineer.spark.read import check_source, read_table

    df = customers(200)
    (tmp_path / "c").mkdir()
    df.iloc[:100].to_csv(tmp_path / "c" / "part-0.csv", index=False)
    df.iloc[100:][list(reversed(df.columns))].to_csv(tmp_path / "c" / "part-1.csv", index=False)
    for read in (lambda: check_source(str(tmp_path / "c")), lambda: read_table(spark, str(tmp_path / "c"))):
        with pytest.raises(DataError, match="part-1.csv' has the columns of .* in another order"):
            read()
    (tmp_path / "c" / "part-1.csv").write_text("")  # an empty part has no header to disagree with
    assert read_table(spark, str(tmp_path / "c")).frame.count() == 100


def test_parquet_parts_of_several_schemas_are_read_whole(spark, tmp_path: Path) -> None:
    from mlengineer.spark.read import read_table

    df = customers(300)
    folder = tmp_path / "p"
    folder.mkdir()
    df.iloc[:100].to_parquet(folder / "part-0.parquet", index=False)
    later = df.iloc[100:200].assign(age=df["age"].iloc[100:200] + 0.5, extra=1.0)  # decimals, a new column
    later.to_parquet(folder / "part-1.parquet", index=False)
    df.iloc[200:].assign(region=None).to_parquet(folder / "part-2.parquet", index=False)  # all-null: no type
    table = read_table(spark, str(folder))
    got = table.frame.toPandas()
    assert "3 schemas merged; not in every part: extra" in table.how
    assert len(got) == 300 and got["extra"].notna().sum() == 100
    assert got["age"].sum() == pytest.approx(df["age"].sum() + 50)
    assert got["region"].notna().sum() == 200


def test_parquet_parts_that_clash_name_the_column_and_the_parts(spark, tmp_path: Path) -> None:
    from mlengineer.spark.read import read_table

    (tmp_path / "p").mkdir()
    pd.DataFrame({"a": [1, 2], "y": ["x", "z"]}).to_parquet(tmp_path / "p" / "p0.parquet")
    pd.DataFrame({"a": ["u", "v"], "y": ["x", "z"]}).to_parquet(tmp_path / "p" / "p1.parquet")
    with pytest.raises(DataError, match=r"Column 'a' of the Parquet parts in .* is numbers in p0.parquet and text in "
                                        r"p1.parquet: write it as one type in every part\.$"):
        read_table(spark, str(tmp_path / "p"))


def test_a_failed_read_names_spark_s_error_not_its_wrapper(spark, tmp_path: Path) -> None:
    from mlengineer.spark.session import spark_errors

    df = customers(100)
    write_parts(df, tmp_path / "p", parts=2)
    df.assign(age=df["age"] + 0.5).to_parquet(tmp_path / "p" / "part-00001.parquet", index=False)
    with pytest.raises(DataError) as e, spark_errors():
        spark.read.parquet(str(tmp_path / "p")).toPandas()  # Spark's own reader, not ours: it fails mid-read
    assert "PARQUET_COLUMN_DATA_TYPE_MISMATCH" in str(e.value) and "awaitResult" not in str(e.value)


# -- predict --engine spark: where the predictions go ------------------------------------------------------
@pytest.mark.slow
def test_the_output_never_replaces_the_input_or_other_files(spark, tmp_path: Path, churn_model_dir: Path,
                                                           churn_csv: Path) -> None:
    from mlengineer.spark.score import check_out, score_file

    parts = write_parts(customers(100), tmp_path / "in")
    csv = tmp_path / "in.csv"
    csv.write_bytes(churn_csv.read_bytes())
    for data, out, says in [(csv, csv, "is the data"), (parts, parts, "is the data"),
                            (parts, parts / "scored", "lies inside the data"),
                            (parts / "part-00000.parquet", tmp_path, "holds the data")]:
        with pytest.raises(DataError, match=says):
            score_file(churn_model_dir, str(data), out)
    assert csv.read_bytes() == churn_csv.read_bytes() and len(list(parts.glob("*.parquet"))) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.csv").mkdir()
    for out, says in [("mine", "folder holding other files \\('notes.txt'\\)"), ("afile", "it is a file"),
                      ("adir.csv", "it is a folder"), ("afile/p.csv", "is a file, not a folder"),
                      ("nowhere/p.csv", "does not exist")]:
        with pytest.raises(DataError, match=says):
            check_out(tmp_path / out, str(csv))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    with pytest.raises(DataError, match="takes no new files"):
        check_out(Path("/proc/predictions.csv"), str(csv))  # not writable, even by root
    assert score_file(churn_model_dir, str(csv), tmp_path / "scored") == 800  # a new folder is fine


@pytest.mark.slow
def test_text_in_a_number_column_names_the_table(spark, tmp_path: Path, churn_model_dir: Path,
                                                 churn_csv: Path) -> None:
    from mlengineer.spark.score import score_file

    df = pd.read_csv(churn_csv).astype({"age": object})
    df.loc[7, "age"] = "seventy"
    df.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(SchemaError, match=r"rows.csv'?: Column 'age' must hold numbers; got 'seventy'"):
        score_file(churn_model_dir, str(tmp_path / "rows.csv"), tmp_path / "p.csv")
    with pytest.raises(SchemaError, match="Column 'plan' is missing from .*less.csv"):
        df.drop(columns=["plan"]).to_csv(tmp_path / "less.csv", index=False)
        score_file(churn_model_dir, str(tmp_path / "less.csv"), tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


# -- a session that does not start -----------------------------------------------------------------------
@pytest.mark.slow  # a JVM starts, and stops at once
def test_a_master_spark_refuses_is_named_by_spark_s_reason(tmp_path: Path) -> None:
    customers(50).to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("audit", str(tmp_path / "t.csv"), "--engine", "spark", "--spark-master", "foo://bar")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Master must either be yarn or start with spark, k8s, or local" in r.stderr, r.stderr


@pytest.mark.long
@pytest.mark.slow
def test_training_on_parquet_parts_of_several_schemas(spark, tmp_path: Path) -> None:
    """xgboost.spark's barrier stage refuses a union of reads as its input; training must still run."""
    from mlengineer.spark.train import train_spark

    df = customers(600, seed=2)
    (tmp_path / "p").mkdir()
    df.iloc[:300].to_parquet(tmp_path / "p" / "part-0.parquet", index=False)
    df.iloc[300:].astype({"age": float}).to_parquet(tmp_path / "p" / "part-1.parquet", index=False)
    model = train_spark(str(tmp_path / "p"), "churn", families=["xgboost"], time_budget=10, track=False,
                        out=tmp_path / "m")
    assert model.predict_frame(df.head(5))["prediction"].isin(["yes", "no"]).all()


@pytest.mark.slow
def test_training_on_a_query_that_unions_two_tables(spark, tmp_path: Path) -> None:
    """A query's union (or coalesce) reached xgboost's barrier stage as its input: 'Barrier execution mode
    does not allow the following pattern of RDD chain'."""
    from mlengineer.spark.train import train_spark

    df = customers(600, seed=4)
    df.iloc[:300].to_parquet(tmp_path / "a.parquet", index=False)
    df.iloc[300:].to_parquet(tmp_path / "b.parquet", index=False)
    sql = (f"SELECT * FROM parquet.`{tmp_path / 'a.parquet'}` UNION ALL "
           f"SELECT * FROM parquet.`{tmp_path / 'b.parquet'}`")
    model = train_spark(None, "churn", sql=sql, families=["xgboost"], time_budget=10, track=False,
                        out=tmp_path / "m")
    assert model.predict_frame(df.head(5))["prediction"].isin(["yes", "no"]).all()


def test_a_pattern_names_the_files_it_matches_on_spark_as_in_memory(spark, tmp_path: Path) -> None:
    from mlengineer.data.load import load_table
    from mlengineer.spark.read import check_source, read_table

    (tmp_path / "rows" / "2024").mkdir(parents=True)
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(tmp_path / "rows" / "p0.csv", index=False)
    pd.DataFrame({"a": [3], "b": ["z"]}).to_csv(tmp_path / "rows" / "2024" / "p1.csv", index=False)
    pd.DataFrame({"a": [9], "b": ["w"]}).to_csv(tmp_path / "other.csv", index=False)
    pattern = str(tmp_path / "rows" / "**" / "*.csv")
    check_source(pattern)
    table = read_table(spark, pattern)
    got = table.frame.toPandas().sort_values("a").reset_index(drop=True)
    want = load_table(pattern).sort_values("a").reset_index(drop=True)
    assert got["a"].tolist() == want["a"].tolist() == [1, 2, 3] and "2 parts" in table.how
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "rows" / "q0.parquet")
    pd.DataFrame({"a": [2.5], "c": ["u"]}).to_parquet(tmp_path / "rows" / "q1.parquet")
    got = read_table(spark, str(tmp_path / "rows" / "q*.parquet")).frame.toPandas().sort_values("a")
    assert got["a"].tolist() == [1.0, 2.5] and got["c"].isna().sum() == 1
    with pytest.raises(DataError, match="No file matches"):
        check_source(str(tmp_path / "rows" / "none*.csv"))


def test_parquet_durations_and_sql_intervals_are_seconds_as_in_memory(spark, tmp_path: Path) -> None:
    """A Parquet duration (which Spark refused, then read as whole microseconds) and Spark SQL's intervals are read
    as seconds, as the local loader reads them."""
    from mlengineer.data.load import load_table
    from mlengineer.spark.read import check_source, read_table

    waits = pd.DataFrame({"wait": pd.to_timedelta([60, 90.5, None, 3600], unit="s"), "x": [1, 2, 3, 4]})
    waits.to_parquet(tmp_path / "waits.parquet")
    source = str(tmp_path / "waits.parquet")
    table = read_table(spark, source, found=check_source(source))
    assert "durations as seconds: wait" in table.how
    pd.testing.assert_frame_equal(table.frame.toPandas(), load_table(source), check_dtype=False)
    query = ("SELECT INTERVAL '1 02:00:03.5' DAY TO SECOND AS a, INTERVAL '3' HOUR AS h, "
             "INTERVAL '1-2' YEAR TO MONTH AS ym")
    row = read_table(spark, None, sql=query).frame.toPandas().iloc[0]
    assert row.tolist() == [93603.5, 10800.0, (365.25 + 2 * 30) * 86400.0]  # a year and 2 months, as DuckDB counts
    duck = load_table("", sql="SELECT INTERVAL '1 year 2 months' AS ym, INTERVAL '5' MONTH AS m")
    assert duck.iloc[0].tolist() == [(365.25 + 2 * 30) * 86400.0, 5 * 30 * 86400.0]


def test_rows_without_a_group_key_are_groups_of_their_own_on_spark(spark) -> None:
    """As in memory: 1,800 rows without a key are not one group, all held out or all trained on."""
    from pyspark.sql import functions as F

    from mlengineer.spark.prepare import split_column
    from mlengineer.training.config import TrainConfig

    rows = pd.DataFrame({"g": [None] * 1800 + [f"k{i % 20}" for i in range(200)], "x": np.arange(2000.0),
                         "y": np.arange(2000) % 2})
    frame = spark.createDataFrame(rows)
    valid, words = split_column(frame, TrainConfig(target="y", group_column="g"), len(rows))
    marks = frame.select(F.col("g").isNull().alias("keyless"), F.col("g"), valid.alias("held")).toPandas()
    assert 0.12 < marks.loc[marks["keyless"], "held"].mean() < 0.28 and "grouped holdout" in words
    keyed = marks.loc[~marks["keyless"]]
    assert (keyed.groupby("g")["held"].nunique() == 1).all()  # a keyed group stays whole
