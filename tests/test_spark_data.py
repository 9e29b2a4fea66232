"""Reading, the schema, the audit and the profile on a real local Spark session agree with the local path
on the same rows: one pipeline, two engines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

from mlengineer.data.profile import profile_table  # noqa: E402
from mlengineer.data.quality import audit  # noqa: E402
from mlengineer.data.schema import infer_schema  # noqa: E402
from mlengineer.errors import DataError  # noqa: E402

from .spark_support import customers, spark_fixture, with_issues, write_parts  # noqa: E402, F401

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _read(spark_session, path: Path | str, **kw):
    from mlengineer.spark.read import read_table

    return read_table(spark_session, str(path), **kw).frame


def _rows(frame) -> pd.DataFrame:
    return frame.toPandas()


# -- readers ---------------------------------------------------------------------------------------------
def test_reads_parquet_csv_and_partitioned_folders(spark, tmp_path: Path) -> None:
    df = customers(300)
    parquet = _rows(_read(spark, write_parts(df, tmp_path / "pq")))
    csv = _rows(_read(spark, write_parts(df, tmp_path / "csv", fmt="csv")))
    assert len(parquet) == len(csv) == 300
    assert sorted(parquet["customer_id"]) == sorted(csv["customer_id"]) == sorted(df["customer_id"])
    assert np.isclose(parquet["monthly_fee"].sum(), df["monthly_fee"].sum())
    # a Hive-style partitioned folder: the partition value becomes a column
    for year, chunk in ((2023, df.iloc[:100]), (2024, df.iloc[100:])):
        write_parts(chunk, tmp_path / "byyear" / f"year={year}", parts=2)
    parts = _rows(_read(spark, tmp_path / "byyear"))
    assert len(parts) == 300 and parts.groupby("year").size().to_dict() == {2023: 100, 2024: 200}


def test_reads_only_the_files_a_delta_log_holds_live(spark, tmp_path: Path) -> None:
    df = customers(90)
    root = tmp_path / "delta"
    log = root / "_delta_log"
    log.mkdir(parents=True)
    names = []
    for i in range(3):
        names.append(f"part-{i}.parquet")
        df.iloc[30 * i: 30 * (i + 1)].to_parquet(root / names[-1], index=False)
    commits = [[{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}, {"add": {"path": names[0]}},
                {"add": {"path": names[1]}}],
               [{"add": {"path": names[2]}}, {"remove": {"path": names[0]}}]]  # the first file was deleted
    for v, actions in enumerate(commits):
        (log / f"{v:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    rows = _rows(_read(spark, root))
    assert sorted(rows["customer_id"]) == sorted(df["customer_id"].iloc[30:])


def test_sql_reads_a_table_from_the_catalog(spark) -> None:
    from mlengineer.spark.read import read_table

    spark.createDataFrame(customers(200)).write.mode("overwrite").saveAsTable("customers_t")
    table = read_table(spark, None, sql="SELECT * FROM customers_t WHERE plan = 'premium'")
    got = table.frame.toPandas()
    assert len(got) == (customers(200)["plan"] == "premium").sum() and table.how == ["SQL"]


def test_bad_sources_get_one_clear_line(spark, tmp_path: Path) -> None:
    from mlengineer.spark.session import spark_errors

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    with pytest.raises(DataError, match="holds no data files"):
        _read(spark, tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        _read(spark, tmp_path / "nowhere")
    pq.write_table(pa.table({"a": [1, 2], "t": pa.array([1, 2], type=pa.time64("us"))}), tmp_path / "t.parquet")
    with pytest.raises(DataError, match="Spark cannot read a column") as e, spark_errors():
        _read(spark, tmp_path / "t.parquet").count()
    assert "\n" not in str(e.value)


# -- schema, audit, profile ------------------------------------------------------------------------------
def _spark_schema(spark_session, df: pd.DataFrame, tmp: Path, target: str, sample_rows: int = 100_000):
    from mlengineer.spark.read import driver_sample
    from mlengineer.spark.stats import spark_schema

    frame = _read(spark_session, write_parts(df, tmp))
    sample = driver_sample(frame, frame.count(), sample_rows)
    schema, stats = spark_schema(frame, sample, target)
    return frame, sample, schema, stats


def test_schema_statistics_come_from_every_row_and_match_the_local_path(spark, tmp_path: Path) -> None:
    df = customers(4000)
    # the sample holds 1,000 rows; counts, ranges and frequencies must still describe all 4,000
    _, sample, schema, stats = _spark_schema(spark, df, tmp_path / "c", "churn", sample_rows=1000)
    assert len(sample) < 2000 and stats.n_rows == schema.n_rows == 4000
    local = infer_schema(df, "churn")
    for got, want in zip(schema.columns, local.columns, strict=True):
        assert (got.name, got.role) == (want.name, want.role)
        assert got.missing_fraction == pytest.approx(want.missing_fraction, abs=1e-12), got.name
        assert got.n_unique == pytest.approx(want.n_unique, rel=0.06), got.name  # approximate distinct counts
        if want.mean is not None:
            assert (got.min, got.max) == (want.min, want.max)
            assert got.mean == pytest.approx(want.mean, rel=1e-9)
        if want.categories:
            assert dict(zip(got.categories, got.frequencies, strict=True)) == pytest.approx(
                dict(zip(want.categories, want.frequencies, strict=True)))


def test_audit_finds_what_the_local_audit_finds(spark, tmp_path: Path) -> None:
    from mlengineer.spark.audit import audit_spark

    df = with_issues()
    frame, sample, schema, stats = _spark_schema(spark, df, tmp_path / "a", "y")
    found = audit_spark(frame, schema, stats, sample, task_kind="binary")
    local = audit(df, infer_schema(df, "y"), task_kind="binary")
    assert {(f.check, f.column) for f in found} == {(f.check, f.column) for f in local}
    by = {(f.check, f.column): f for f in found}
    assert by[("missing_target", "y")].value == df["y"].isna().sum() == 71
    assert by[("duplicate_rows", None)].value == 30
    assert by[("placeholder_number", "income")].value == (df["income"] == -999).sum()
    assert "Confirmed on all 3,030 rows" in by[("leakage_predictor", "leak")].message


def test_a_leak_seen_only_in_the_sample_is_not_confirmed(spark, tmp_path: Path) -> None:
    """A column that matches the target in the sampled rows but not in the others stays a warning."""
    from mlengineer.spark.audit import audit_spark

    rng = np.random.default_rng(1)
    df = with_issues(4000).drop(columns=["leak"])
    df["hint"] = np.where(rng.random(len(df)) < 0.5, df["y"], np.where(df["y"] == "yes", "no", "yes"))
    frame, _, schema, stats = _spark_schema(spark, df, tmp_path / "s", "y")
    biased = df[(df["hint"] == df["y"]) | df["y"].isna()].head(2500)  # a sample where the column never errs
    found = audit_spark(frame, schema, stats, biased, task_kind="binary")
    hint = [f for f in found if f.column == "hint" and f.check.startswith("leakage")]
    assert hint and hint[0].severity == "warning" and "does not hold" in hint[0].message


def test_profile_counts_every_row_and_matches_the_local_profile(spark, tmp_path: Path,
                                                                salaries_csv: Path) -> None:
    from mlengineer.spark.profile import profile_spark

    df = pd.read_csv(salaries_csv)
    frame, sample, schema, stats = _spark_schema(spark, df, tmp_path / "p", "salary_in_usd", sample_rows=600)
    got = profile_spark(frame, schema, stats, sample, target="salary_in_usd", task_kind="regression")
    want = profile_table(df, target="salary_in_usd", task_kind="regression")
    assert (got.n_rows, got.n_duplicate_rows) == (want.n_rows, want.n_duplicate_rows)
    for g, w in zip(got.columns, want.columns, strict=True):
        assert (g.name, g.role, g.n_missing) == (w.name, w.role, w.n_missing)
        if w.mean is not None:
            assert g.mean == pytest.approx(w.mean) and g.max == w.max
            assert g.median == pytest.approx(w.median, rel=0.02)  # approximate quantiles
            assert sum(g.histogram.counts) == sum(w.histogram.counts)
        if w.top_values and g.role == "categorical":
            assert dict(g.top_values[:3]) == dict(w.top_values[:3])
    assert got.target_profile.mean == pytest.approx(want.target_profile.mean)
