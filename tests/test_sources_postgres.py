"""SQL sources against the real PostgreSQL server that scripts/setup-system.sh installs and starts (role and
password mlengineer, database mlengineer_test; MLENGINEER_TEST_POSTGRES overrides the URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlengineer.data.load import load_table
from mlengineer.data.schema import ColumnRole, infer_schema
from mlengineer.data.sql import read_sql
from mlengineer.errors import DataError

from .conftest import run_cli

pytestmark = pytest.mark.postgres

URL = os.environ.get("MLENGINEER_TEST_POSTGRES", "postgresql://mlengineer:mlengineer@127.0.0.1:5432/mlengineer_test")
N = 5000


def connect() -> tuple[Any, Any]:
    """(engine, an open connection) to the test database; the test is skipped where it cannot be reached."""
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg2")
    engine = sa.create_engine(URL.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        return engine, engine.connect()
    except sa.exc.OperationalError as e:
        pytest.skip(f"PostgreSQL is not reachable at {URL} (run scripts/setup-system.sh): {e.orig}")


@pytest.fixture(scope="module")
def table() -> Iterator[str]:
    """A table of N customers with the types a real schema has: integers, NUMERIC, text, booleans, dates,
    timestamps and NULLs. Named uniquely, and dropped afterwards."""
    engine, con = connect()
    name = f"customers_{uuid.uuid4().hex[:8]}"
    with con:
        con.exec_driver_sql(f"CREATE SEQUENCE {name}_seq")
        con.exec_driver_sql(
            f"CREATE TABLE {name} (id integer PRIMARY KEY, plan text, fee numeric(8,2), active boolean, "
            "signup date, last_seen timestamp, churn text)"
        )
        con.exec_driver_sql(
            f"INSERT INTO {name} SELECT i, (ARRAY['basic','plus','premium'])[mod(i, 3) + 1], "
            "CASE WHEN mod(i, 10) = 0 THEN NULL ELSE mod(i, 97) * 1.25 END, mod(i, 4) = 0, "
            "DATE '2023-01-01' + mod(i, 365), TIMESTAMP '2024-01-01 08:00' + (i || ' minutes')::interval, "
            f"CASE WHEN mod(i, 5) = 0 THEN 'yes' ELSE 'no' END FROM generate_series(1, {N}) AS i"
        )
        con.commit()
    yield name
    with engine.connect() as con:
        con.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        con.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {name}_seq")
        con.commit()
    engine.dispose()


def test_reads_every_type_in_chunks(table: str) -> None:
    df = read_sql(f"SELECT * FROM {table} ORDER BY id", URL, chunksize=700)
    assert len(df) == N and list(df.columns) == ["id", "plan", "fee", "active", "signup", "last_seen", "churn"]
    assert df["fee"].dtype == np.float64 and df["fee"].isna().sum() == N // 10  # NUMERIC as floats
    assert not any(isinstance(v, Decimal) for v in df["fee"].dropna())
    assert df["active"].dtype == bool and str(df["last_seen"].dtype).startswith("datetime64")
    schema = infer_schema(df, "churn")
    assert schema["id"].role == ColumnRole.identifier
    assert schema["signup"].role == ColumnRole.datetime and schema["last_seen"].role == ColumnRole.datetime
    assert schema["active"].role == ColumnRole.boolean and schema["plan"].role == ColumnRole.categorical


def test_reading_is_read_only(table: str) -> None:
    with pytest.raises(DataError, match="failed"):
        read_sql(f"DELETE FROM {table}", URL)
    with pytest.raises(DataError, match="read-only transaction"):  # a SELECT that would write
        read_sql(f"SELECT nextval('{table}_seq') AS n", URL)
    assert read_sql(f"SELECT count(*) AS n FROM {table}", URL)["n"].tolist() == [N]


def test_a_literal_percent_sign_is_no_parameter(table: str) -> None:
    df = read_sql(f"SELECT id % 7 AS r FROM {table} WHERE plan LIKE 'pre%' ORDER BY id", URL)
    assert len(df) == sum(1 for i in range(1, N + 1) if i % 3 == 2) and df["r"].max() == 6


def test_query_errors_are_one_clear_line(table: str) -> None:
    with pytest.raises(DataError, match="does not exist") as e:
        load_table("", sql="SELECT * FROM no_such_table", db=URL)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="no rows"):
        load_table("", sql=f"SELECT * FROM {table} WHERE id < 0", db=URL)


def test_wrong_password_is_named_without_showing_it() -> None:
    bad = URL.replace("mlengineer:mlengineer@", "mlengineer:not-the-password@")
    with pytest.raises(DataError, match="Cannot connect") as e:
        read_sql("SELECT 1", bad)
    assert "not-the-password" not in str(e.value) and "***" in str(e.value)


def test_cli_audits_and_trains_from_postgres(table: str, tmp_path: Path) -> None:
    r = run_cli("audit", "--sql", f"SELECT * FROM {table}", "--db", URL, "--target", "churn")
    assert r.returncode == 0, r.stderr
    assert f"Read {N:,} rows x 7 columns from the query" in r.stdout
    assert "identifier" in r.stdout  # id is left out, and said so
    out = tmp_path / "model"
    r = run_cli("train", "--sql", f"SELECT * FROM {table}", "--db", URL, "--target", "churn", "--time-budget", "4",
                "--no-track", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "MLmodel").exists()
