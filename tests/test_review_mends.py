"""Work done twice, done once: a Spark source walked once for its check and its read; one check of where
predictions go for both engines; one line for a Parquet column whose type clashes between parts, on both
engines; a CSV body parsed once; the note on a workbook's other sheets said by the reader."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlengineer.data.load import load_table
from mlengineer.errors import DataError, SchemaError

from .conftest import run_clis
from .spark_support import customers, spark_fixture, write_parts  # noqa: F401


def _error_line(r: Any) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


# -- 1. a Spark source is walked once ----------------------------------------------------------------------
@pytest.mark.long
@pytest.mark.spark
def test_a_folder_is_walked_and_its_footers_read_once_for_check_and_read(spark, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from mlengineer.spark import read

    df = customers(300)
    (tmp_path / "p").mkdir()
    for i in range(3):  # two schemas: ages whole in the first part, decimals in the others
        part = df.iloc[i * 100:(i + 1) * 100]
        part.assign(age=part["age"] + (0.5 if i else 0)).to_parquet(tmp_path / "p" / f"part-{i}.parquet", index=False)
    write_parts(df, tmp_path / "c", fmt="csv")
    walks: list[Path] = []
    footers: list[Path] = []
    headers: list[int] = []
    rglob, read_schema, check_headers = Path.rglob, pq.read_schema, read.check_csv_headers
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: (walks.append(self), rglob(self, pattern))[1])
    monkeypatch.setattr(pq, "read_schema", lambda path, *a, **k: (footers.append(Path(path)), read_schema(path, *a, **k))[1])
    monkeypatch.setattr(read, "check_csv_headers", lambda files, opts: (headers.append(1), check_headers(files, opts))[1])

    found = read.check_source(str(tmp_path / "p"))
    table = read.read_table(spark, str(tmp_path / "p"), found=found)
    assert "2 schemas merged" in table.how and table.frame.count() == 300
    assert walks == [tmp_path / "p"] and sorted(footers) == sorted((tmp_path / "p").glob("*.parquet"))
    walks.clear()
    found = read.check_source(str(tmp_path / "c"))
    assert read.read_table(spark, str(tmp_path / "c"), found=found).frame.count() == 300
    assert walks == [tmp_path / "c"] and headers == [1]


# -- 2. where predictions go: one check, one wording, both engines -----------------------------------------
@pytest.mark.slow
def test_both_engines_refuse_an_out_that_is_the_input_or_under_a_file_in_one_line(churn_model_dir: Path,
                                                                                  churn_csv: Path,
                                                                                  tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    rows = tmp_path / "rows.csv"
    rows.write_bytes(churn_csv.read_bytes())
    (tmp_path / "plain").write_text("x")
    places = ((rows, f"--out {str(rows)!r} is the data file itself: predictions would replace the rows "
                     "they come from; write them to another file."),
              (tmp_path / "plain" / "p.csv", f"Cannot write {str(tmp_path / 'plain' / 'p.csv')!r}: "
                                             f"{str(tmp_path / 'plain')!r} is a file, not a folder."))
    engines = ((), ("--engine", "spark"))
    done = iter(run_clis(*(["predict", str(churn_model_dir), str(rows), "--out", str(out), *engine]
                           for out, _ in places for engine in engines)))  # side by side, each its own process
    for _, said in places:
        lines = [_error_line(next(done)) for _ in engines]
        assert lines == [f"error: {said}"] * 2, lines
    assert rows.read_bytes() == churn_csv.read_bytes()


def test_one_check_refuses_an_out_that_replaces_holds_or_lies_inside_the_data(tmp_path: Path) -> None:
    from mlengineer.data.files import check_place, refuse_input

    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "p0.csv").write_text("a\n1\n")
    for out, data, said in ((parts / "p0.csv", parts / "p0.csv", "is the data file itself"),
                            (parts, parts, "is the data folder itself"), (parts / "pred.csv", parts, "lies inside"),
                            (tmp_path, parts / "p0.csv", "holds the data")):
        with pytest.raises(DataError, match=said):
            refuse_input(out, str(data))
    refuse_input(tmp_path / "pred.csv", str(parts))  # beside it is fine, and so is a URI
    refuse_input(parts / "p0.csv", "s3://bucket/parts/p0.csv")
    with pytest.raises(DataError, match="it is a folder; name a file in it, or a path"):
        check_place(parts, instead=", or a path without a suffix for a folder of Parquet parts")
    assert check_place(parts, folder=True) == tmp_path  # a folder of parts goes where a folder is


# -- 3. one line for a Parquet column whose type clashes between parts -------------------------------------
@pytest.mark.spark
def test_both_engines_name_a_type_clash_between_parts_in_one_line(spark, tmp_path: Path) -> None:
    from mlengineer.spark.read import check_source, read_table

    folder = tmp_path / "clash"
    (folder / "year=2023").mkdir(parents=True)
    (folder / "year=2024").mkdir()
    pd.DataFrame({"a": [1, 2], "y": ["x", "z"]}).to_parquet(folder / "year=2023" / "p0.parquet")
    pd.DataFrame({"a": ["u", "v"], "y": ["x", "z"]}).to_parquet(folder / "year=2024" / "p0.parquet")
    with pytest.raises(DataError) as local:
        load_table(folder)
    with pytest.raises(DataError) as on_spark:
        read_table(spark, str(folder), found=check_source(str(folder)))
    said = (f"Column 'a' of the Parquet parts in {str(folder)!r} is numbers in year=2023/p0.parquet and text in "
            "year=2024/p0.parquet: write it as one type in every part.")
    assert str(local.value) == str(on_spark.value) == said


# -- 4. a CSV body is parsed once --------------------------------------------------------------------------
def test_a_csv_body_is_parsed_once_and_ragged_rows_are_still_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.serving import csvbody
    from mlengineer.serving.protocols import columns_from_csv

    reads: list[int] = []
    check = csvbody._check_fields  # the csv module's second pass over the whole body
    monkeypatch.setattr(csvbody, "_check_fields", lambda *a, **k: (reads.append(1), check(*a, **k))[1])
    assert columns_from_csv(b"a,b,c\n1,x,true\n2,y,false\n") == ({"a": [1, 2], "b": ["x", "y"], "c": [True, False]}, 2)
    assert reads == []  # pandas' one pass (after the sniffer's look at the first lines): no second pass
    assert columns_from_csv(b"a,b\n1,\n2,3\n") == ({"a": [1, 2], "b": [None, 3.0]}, 2)
    for body, said in ((b"a,b\n1\n", "CSV row 1 (line 2) has 1 field where the header names 2 columns"),
                       (b"a,b\n1,2,3\n", "CSV row 1 (line 2) has 3 fields"),
                       (b"a,b\n1,2\n\n3,4,5\n", "CSV row 2 (line 4) has 3 fields")):
        with pytest.raises(SchemaError, match=said.replace("(", r"\(").replace(")", r"\)")):
            columns_from_csv(body)


# -- 5. the workbook note is said by the reader, right after what was read --------------------------------
@pytest.fixture
def book(tmp_path: Path) -> Path:
    p = tmp_path / "book.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"x": range(30), "y": ["a", "b"] * 15}).to_excel(w, sheet_name="March", index=False)
        pd.DataFrame({"x": range(5), "y": ["a"] * 5}).to_excel(w, sheet_name="April", index=False)
    return p


def test_read_data_says_its_line_then_the_workbook_note(book: Path) -> None:
    from rich.console import Console

    from mlengineer.cli._common import read_data

    out = io.StringIO()
    df = read_data(str(book), said=lambda df: f"Read {len(df)} rows.", out=Console(file=out, width=300))
    assert len(df) == 30
    assert out.getvalue().splitlines() == ["Read 30 rows.", "book.xlsx: read its first sheet, 'March'; the sheet "
                                           "'April' holds rows too (name one as book.xlsx#April to read it)."]
    out = io.StringIO()
    read_data(f"{book}#April", out=Console(file=out, width=300))
    assert out.getvalue() == ""


def test_audit_says_the_note_once_right_after_the_read_line(book: Path) -> None:
    r, as_json = run_clis(["audit", str(book)], ["audit", str(book), "--json"])  # side by side
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = [i for i, line in enumerate(lines) if "first sheet" in line]
    assert len(at) == 1 and lines[at[0] - 1].startswith("Read 30 rows x 2 columns from"), r.stdout
    r = as_json
    assert r.stderr.count("first sheet") == 1 and "first sheet" not in r.stdout, r.stdout + r.stderr
