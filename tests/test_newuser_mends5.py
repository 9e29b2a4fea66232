"""A new user's half hour with SQL sources and batch scoring: what broke, mended.

The PostgreSQL tests build their rows in the query itself (generate_series), so they need no table; they skip
where no server answers (see tests/test_sources_postgres.py for the URL)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.load import load_table
from mlengineer.errors import DataError

from .conftest import run_cli

URL = os.environ.get("MLENGINEER_TEST_POSTGRES", "postgresql://mlengineer:mlengineer@127.0.0.1:5432/mlengineer_test")
ROWS = ("FROM generate_series(1, 200) AS i")


@pytest.fixture(scope="module")
def pg() -> str:
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(URL.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        engine.connect().close()
    except sa.exc.OperationalError as e:
        pytest.skip(f"PostgreSQL is not reachable at {URL} (run scripts/setup-system.sh): {e.orig}")
    finally:
        engine.dispose()
    return URL


def _zoned_rows(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"seen": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Berlin"),
                       "x": rng.normal(size=n)})
    df["y"] = np.where(df["x"] + rng.normal(size=n) > 0, "yes", "no")
    return df


@pytest.mark.postgres
def test_a_timestamptz_column_is_read_as_utc_and_audited(pg: str) -> None:
    query = ("SELECT TIMESTAMPTZ '2024-01-01 00:00+02' + (i || ' hours')::interval AS \"Created At\", "
             "CASE WHEN mod(i, 7) = 0 THEN NULL ELSE mod(i, 50) * 1.5 END AS \"Monthly Fee\", "
             f"CASE WHEN mod(i, 3) = 0 THEN 'yes' ELSE 'no' END AS churn {ROWS}")
    df = load_table("", sql=query, db=pg)
    assert str(df["Created At"].dtype).startswith("datetime64") and df["Created At"].dt.tz is None
    assert df["Created At"].iloc[0] == pd.Timestamp("2023-12-31 23:00")  # the same instant, in UTC
    r = run_cli("audit", "--sql", query, "--db", pg, "--target", "churn")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_a_zoned_parquet_timestamp_is_audited_without_a_traceback(tmp_path: Path) -> None:
    _zoned_rows().to_parquet(tmp_path / "rows.parquet")
    df = load_table(tmp_path / "rows.parquet")
    assert df["seen"].dt.tz is None and df["seen"].iloc[0] == pd.Timestamp("2023-12-31 23:00")
    r = run_cli("audit", str(tmp_path / "rows.parquet"), "--target", "y")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


@pytest.mark.postgres
def test_json_and_array_columns_from_postgres_are_flattened(pg: str) -> None:
    query = (f"SELECT jsonb_build_object('k', mod(i, 3)) AS js, ARRAY[i, i + 1] AS arr, i AS n {ROWS}")
    df = load_table("", sql=query, db=pg)
    assert "js.k" in df.columns and "js" not in df.columns  # as a JSON file's objects are read
    assert df["arr"].iloc[0] == "[1, 2]"
    assert df.nunique().to_dict()["js.k"] == 3  # every cell hashable: audit and training count them


@pytest.mark.postgres
def test_postgres_errors_say_what_to_do(pg: str) -> None:
    with pytest.raises(DataError, match=r"syntax error.*; fix the query in --sql\.$"):
        load_table("", sql="SELEC 1", db=pg)
    with pytest.raises(DataError, match=r"does not exist; check the user, password, host, port and database"):
        load_table("", sql="SELECT 1", db=pg.rsplit("/", 1)[0] + "/no_such_database")
    with pytest.raises(DataError, match="no rows: check its WHERE clause"):
        load_table("", sql=f"SELECT i {ROWS} WHERE false", db=pg)
    r = run_cli("train", "--sql", "SELEC 1", "--db", pg, "--target", "y", "--no-track")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "fix the query" in r.stderr, r.stderr


def test_sqlite_query_errors_say_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "rows.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (a integer)")
        con.execute("INSERT INTO t VALUES (1)")
    con.close()
    with pytest.raises(DataError, match=r"no such table: nope; fix the query in --sql\.$"):
        load_table("", sql="SELECT * FROM nope", db=str(db))
    with pytest.raises(DataError, match="no rows: check its WHERE clause"):
        load_table("", sql="SELECT * FROM t WHERE a > 5", db=str(db))
