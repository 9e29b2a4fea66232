"""Every common source in: sniffed delimited text, compressed files, JSON shapes, Excel, folders of parts,
and SQL against SQLite and DuckDB files (PostgreSQL lives in test_sources_postgres.py)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.load import load_table, read_bytes_table
from mlengineer.data.sql import read_sql
from mlengineer.errors import DataError

from .conftest import run_cli

ROWS = "a,b,c\n1,2.5,x\n3,4.5,y\n5,6.5,z\n"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


# -- delimited text ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sep", "name"), [(",", "t.csv"), (";", "t.csv"), ("\t", "t.tsv"), ("\t", "t.txt"),
                                           ("|", "t.txt")])
def test_delimiter_is_sniffed(tmp_path: Path, sep: str, name: str) -> None:
    df = load_table(write(tmp_path, name, ROWS.replace(",", sep)))
    assert list(df.columns) == ["a", "b", "c"]
    assert df["b"].tolist() == [2.5, 4.5, 6.5]
    assert df.attrs["source"]["delimiter"] == sep


def test_decimal_comma_with_semicolons(tmp_path: Path) -> None:
    df = load_table(write(tmp_path, "euro.csv", "name;price;qty\nKäse;1,5;3\nBrot;2,25;1\nMilch;0,99;2\n"))
    assert df["price"].tolist() == [1.5, 2.25, 0.99]
    assert df.attrs["source"]["decimal"] == ","


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
def test_encodings(tmp_path: Path, encoding: str) -> None:
    text = "name,city\nJosé,Málaga\nZoë,Köln\nFrançois,Besançon\n"
    df = load_table(write(tmp_path, "enc.csv", text.encode(encoding)))
    assert list(df.columns) == ["name", "city"]
    assert df["city"].tolist() == ["Málaga", "Köln", "Besançon"]


def test_a_late_byte_outside_utf8_falls_back(tmp_path: Path) -> None:
    body = "".join(f"{i},plain\n" for i in range(20000))
    data = ("id,word\n" + body).encode() + "20000,café\n".encode("cp1252")
    df = load_table(write(tmp_path, "late.csv", data))
    assert df["word"].iloc[-1] == "café" and len(df) == 20001


def test_file_without_a_header_gets_column_names(tmp_path: Path) -> None:
    df = load_table(write(tmp_path, "nohead.csv", "1,2.5,x\n3,4.5,y\n5,6.5,z\n"))
    assert list(df.columns) == ["column_1", "column_2", "column_3"]
    assert len(df) == 3 and df.attrs["source"]["header"] is False


def test_header_of_years_is_still_a_header(tmp_path: Path) -> None:
    df = load_table(write(tmp_path, "years.csv", "2019,2020,2021\n1,2,3\n4,5,6\n"))
    assert list(df.columns) == ["2019", "2020", "2021"] and len(df) == 2


def test_spaces_after_delimiters_and_a_trailing_delimiter(tmp_path: Path) -> None:
    df = load_table(write(tmp_path, "sp.csv", "a, b, c,\n1, 2, x,\n3, 4, y,\n"))
    assert list(df.columns) == ["a", "b", "c"]
    assert df["c"].tolist() == ["x", "y"]


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    p = write(tmp_path, "ragged.csv", "a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n")
    with pytest.raises(DataError, match=r"ragged.csv.*line 3 holds 4 fields where the header names 3"):
        load_table(p)


def test_rows_wider_than_the_header_are_refused_not_shifted(tmp_path: Path) -> None:
    p = write(tmp_path, "wide.csv", "a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="header names 2 columns but the rows hold 3"):
        load_table(p)


def test_short_rows_are_padded_with_missing_values(tmp_path: Path) -> None:
    df = load_table(write(tmp_path, "short.csv", "a,b,c\n1,2\n4,5,6\n"))
    assert np.isnan(df["c"].iloc[0]) and df["c"].iloc[1] == 6


@pytest.mark.parametrize("compression", ["gz", "zst", "bz2", "xz"])
def test_compressed_text(tmp_path: Path, compression: str) -> None:
    raw = ROWS.encode()
    if compression == "gz":
        data = gzip.compress(raw)
    elif compression == "bz2":
        data = bz2.compress(raw)
    elif compression == "xz":
        data = lzma.compress(raw)
    else:
        import zstandard

        data = zstandard.ZstdCompressor().compress(raw)
    df = load_table(write(tmp_path, f"t.csv.{compression}", data))
    assert df["c"].tolist() == ["x", "y", "z"]


def test_compression_is_recognised_by_its_bytes(tmp_path: Path) -> None:
    for name in ("download.csv", "noext"):
        df = load_table(write(tmp_path, name, gzip.compress(ROWS.encode())))
        assert df.shape == (3, 3) and df.attrs["source"]["compression"] == "gzip"


def test_format_of_a_file_without_suffix_is_sniffed(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "part0", index=False)
    assert load_table(tmp_path / "part0")["a"].tolist() == [1, 2]
    assert load_table(write(tmp_path, "records", '[{"a": 1}, {"a": 2}]'))["a"].tolist() == [1, 2]
    assert load_table(write(tmp_path, "plain", ROWS)).shape == (3, 3)


# -- JSON ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "text"), [
    ("records.json", '[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]'),
    ("columns.json", '{"a": [1, 2], "b": ["x", "y"]}'),
    ("wrapped.json", '{"data": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "count": 2}'),
    ("pandas.json", '{"a": {"0": 1, "1": 2}, "b": {"0": "x", "1": "y"}}'),
    ("lines.jsonl", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'),
    ("lines.json", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'),
])
def test_json_shapes(tmp_path: Path, name: str, text: str) -> None:
    df = load_table(write(tmp_path, name, text))
    assert df["a"].tolist() == [1, 2] and df["b"].tolist() == ["x", "y"]


def test_nested_json_is_flattened(tmp_path: Path) -> None:
    rows = [{"id": 1, "user": {"age": 30, "tags": ["a", "b"]}}, {"id": 2, "user": {"age": 41, "tags": []}}]
    df = load_table(write(tmp_path, "nested.json", json.dumps(rows)))
    assert list(df.columns) == ["id", "user.age", "user.tags"]
    assert df["user.age"].tolist() == [30, 41] and df["user.tags"].tolist() == ['["a", "b"]', "[]"]
    lines = "\n".join(json.dumps(r) for r in rows)
    assert list(load_table(write(tmp_path, "nested.jsonl", lines)).columns) == ["id", "user.age", "user.tags"]


@pytest.mark.parametrize("text", ["[1, 2, 3]", '{"a": 1}', "[", "[]", '"text"'])
def test_json_that_is_no_table(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError, match="bad.json"):
        load_table(write(tmp_path, "bad.json", text))


# -- Excel, Parquet and folders ------------------------------------------------------------------------------
def test_excel_first_sheet(tmp_path: Path) -> None:
    p = tmp_path / "book.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"a": [1, 2], "when": pd.to_datetime(["2024-01-02", "2024-03-04"])}).to_excel(w, index=False)
        pd.DataFrame({"z": [9]}).to_excel(w, sheet_name="other", index=False)
    df = load_table(p)
    assert list(df.columns) == ["a", "when"] and str(df["when"].dtype).startswith("datetime64")


def test_old_excel_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"\.xls workbooks"):
        load_table(write(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100))


def test_parquet_nested_columns_become_text(tmp_path: Path) -> None:
    p = tmp_path / "n.parquet"
    pd.DataFrame({"a": [1, 2], "tags": [["x", "y"], []]}).to_parquet(p)
    assert load_table(p)["tags"].tolist() == ['["x", "y"]', "[]"]


def test_folder_of_csv_parts_in_any_column_order(tmp_path: Path) -> None:
    d = tmp_path / "parts"
    d.mkdir()
    (d / "part-0.csv").write_text("a,b\n1,x\n2,y\n")
    (d / "part-1.csv").write_text("b,a\nz,3\n")
    (d / "_SUCCESS").write_text("")
    (d / ".part-0.csv.crc").write_text("junk")
    df = load_table(d)
    assert df.to_dict("list") == {"a": [1, 2, 3], "b": ["x", "y", "z"]}


def test_folder_of_partitioned_parquet(tmp_path: Path) -> None:
    d = tmp_path / "table"
    for year, rows in ((2023, [1, 2]), (2024, [3])):
        (d / f"year={year}").mkdir(parents=True)
        pd.DataFrame({"x": rows}).to_parquet(d / f"year={year}" / "part-0.parquet", index=False)
    df = load_table(d).sort_values("x")
    assert df["x"].tolist() == [1, 2, 3] and df["year"].astype(int).tolist() == [2023, 2023, 2024]


def test_parts_that_disagree_are_named(tmp_path: Path) -> None:
    d = tmp_path / "parts"
    d.mkdir()
    (d / "a.csv").write_text("a,b\n1,2\n")
    (d / "b.csv").write_text("a,c\n1,2\n")
    with pytest.raises(DataError, match=r"b\.csv.*other columns"):
        load_table(d)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no CSV, Parquet or JSON parts"):
        load_table(tmp_path / "empty")


@pytest.mark.parametrize(("name", "data", "words"), [
    ("empty.csv", b"", "empty"),
    ("header.csv", b"a,b\n", "no rows"),
    ("junk.csv", bytes(range(256)) * 20, "binary"),
    ("junk.parquet", b"PAR1 not really", "PARQUET"),
    ("junk.xlsx", b"PK\x03\x04 not a workbook", "EXCEL"),
    ("table.xyz", b"a,b\n1,2\n", "format"),
])
def test_bad_files_are_one_clear_data_error(tmp_path: Path, name: str, data: bytes, words: str) -> None:
    with pytest.raises(DataError, match=words) as e:
        load_table(write(tmp_path, name, data))
    assert name in str(e.value) and "\n" not in str(e.value)


def test_uploaded_bytes() -> None:
    assert read_bytes_table(b"a;b\n1;2\n", "csv").to_dict("list") == {"a": [1], "b": [2]}
    assert read_bytes_table(gzip.compress(b"a,b\n1,2\n"), "csv").shape == (1, 2)
    with pytest.raises(DataError, match="upload"):
        read_bytes_table(b"", "csv")
    with pytest.raises(DataError, match="upload"):
        read_bytes_table(b"\x00\x01junk", "parquet")


# -- SQL against files ---------------------------------------------------------------------------------------
@pytest.fixture
def frame() -> pd.DataFrame:
    n = 2500
    return pd.DataFrame({"id": np.arange(n), "plan": np.array(["basic", "plus", "premium"])[np.arange(n) % 3],
                         # the first rows hold no value, so a first chunk alone could not tell the type
                         "fee": np.where(np.arange(n) < 1200, np.nan, np.arange(n) * 0.5)})


@pytest.fixture
def sqlite_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    p = tmp_path / "shop.sqlite"
    with sqlite3.connect(p) as con:
        frame.to_sql("customers", con, index=False)
    return p


@pytest.fixture
def duckdb_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    import duckdb

    p = tmp_path / "shop.duckdb"
    with duckdb.connect(str(p)) as con:
        con.register("frame", frame)
        con.execute("CREATE TABLE customers AS SELECT * FROM frame")
    return p


@pytest.mark.parametrize("as_url", [False, True])
def test_sqlite_in_chunks(sqlite_file: Path, as_url: bool) -> None:
    db = f"sqlite:///{sqlite_file}" if as_url else str(sqlite_file)
    df = read_sql("SELECT * FROM customers WHERE id >= 100", db, chunksize=500)
    assert len(df) == 2400 and df["fee"].dtype == np.float64 and df["fee"].notna().sum() == 1300
    assert df["plan"].iloc[0] == "plus"


@pytest.mark.parametrize("as_url", [False, True])
def test_duckdb_file(duckdb_file: Path, as_url: bool) -> None:
    db = f"duckdb:///{duckdb_file}" if as_url else str(duckdb_file)
    df = load_table("", sql="SELECT plan, count(*) AS n FROM customers GROUP BY plan ORDER BY plan", db=db)
    assert df.to_dict("list") == {"plan": ["basic", "plus", "premium"], "n": [834, 833, 833]}


def test_sql_over_the_data_file_and_over_named_files(tmp_path: Path, frame: pd.DataFrame) -> None:
    p = tmp_path / "customers.parquet"
    frame.to_parquet(p, index=False)
    assert len(load_table(p, sql="SELECT * FROM data WHERE plan = 'plus'")) == 833
    assert load_table("", sql=f"SELECT count(*) AS n FROM '{p}'")["n"].tolist() == [2500]


def test_reading_never_writes(sqlite_file: Path, duckdb_file: Path) -> None:
    for db in (str(sqlite_file), str(duckdb_file)):
        with pytest.raises(DataError):
            read_sql("DELETE FROM customers", db)
        assert len(read_sql("SELECT * FROM customers", db)) == 2500


@pytest.mark.parametrize(("sql", "db", "words"), [
    ("SELECT * FROM nope", "SQLITE", "no such table"),
    ("SELECT * FROM customers WHERE id < 0", "SQLITE", "no rows"),
    ("SELECT 1 AS a, 2 AS a", "SQLITE", "two columns named 'a'"),
    ("SELECT 1", "missing.sqlite", "does not exist"),
    ("SELECT 1", "nosuchdialect://x", "Cannot use the database URL"),
    ("   ", "SQLITE", "empty"),
])
def test_sql_errors(sqlite_file: Path, sql: str, db: str, words: str) -> None:
    with pytest.raises(DataError, match=words):
        load_table("", sql=sql, db=str(sqlite_file) if db == "SQLITE" else db)


def test_db_without_a_query() -> None:
    with pytest.raises(DataError, match="--db needs a query"):
        load_table("", db="x.sqlite")


def test_cli_profiles_a_query(sqlite_file: Path) -> None:
    r = run_cli("profile", "--sql", "SELECT plan, fee FROM customers", "--db", str(sqlite_file))
    assert r.returncode == 0, r.stderr
    assert "Read 2,500 rows x 2 columns from the query" in r.stdout and "plan" in r.stdout
