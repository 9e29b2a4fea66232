"""Number marks read from files, from a reviewer's run: a prediction file's own decimal points win over the
training file's decimal comma, and IPv4 addresses, dotted codes and columns given a role of text are never read
as numbers written with thousands dots."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

import mlengineer
from mlengineer.bundle.rows import read_marks
from mlengineer.data.chunks import open_chunks
from mlengineer.data.load import load_table

from .conftest import run_clis


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- A: the file's own marks win over the training file's ------------------------------------------------------
def test_a_files_decimal_points_win_over_the_training_decimal_comma(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.csv", "rate;x\n1.125;6.97\n1.500;7.64\n2.250;9.83\n")
    read = load_table(rows, marks={"decimal": ","})
    assert read["rate"].tolist() == [1.125, 1.5, 2.25]  # not 1125, 1500, 2250: 6.97 says decimal points
    assert read["x"].tolist() == [6.97, 7.64, 9.83]
    with ExitStack() as stack:
        chunk = next(open_chunks(rows, chunk_rows=2, stack=stack, marks={"decimal": ","}).frames)
    assert chunk["rate"].tolist() == [1.125, 1.5]
    thousands = _write(tmp_path / "commas.csv", "amount;n\n1.500;\"1,234.5\"\n2.250;7\n")  # 1,234.5: points
    assert load_table(thousands, marks={"decimal": ","})["amount"].tolist() == [1.5, 2.25]


def test_a_training_decimal_comma_still_settles_an_ambiguous_file(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.csv", "amount;n\n1.234;3\n2.500;4\n")  # only 1.234: either mark
    assert load_table(rows, marks={"decimal": ","})["amount"].tolist() == [1234, 2500]
    assert load_table(rows)["amount"].tolist() == [1.234, 2.5]
    commas = _write(tmp_path / "commas.csv", "amount;n\n1.234;3,5\n2.500;4\n")  # its own decimal comma
    assert load_table(commas)["amount"].tolist() == [1234, 2500]


def test_a_training_column_of_thousands_dots_written_with_a_decimal_point_is_read_so(tmp_path: Path) -> None:
    marks = {"thousands_dots": ["amount"]}
    rows = _write(tmp_path / "rows.csv", "amount,n\n176019.30,1\n269143.50,2\n")
    assert load_table(rows, marks=marks)["amount"].tolist() == [176019.3, 269143.5]
    ambiguous = _write(tmp_path / "dots.csv", "amount,x\n12.345,0.5\n15.678,0.25\n")  # x's points say nothing
    assert load_table(ambiguous, marks=marks)["amount"].tolist() == [12345, 15678]


def test_a_comma_files_money_of_thousands_dots_is_still_read_as_numbers(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.csv", "amount,x\n1.234.567,0.5\n12.345,0.25\n999,1.5\n")
    read = load_table(rows)
    assert read["amount"].tolist() == [1234567, 12345, 999]
    assert read.attrs["source"]["thousands_dots"] == ["amount"]


# -- B: addresses, codes and roles of text keep their text -----------------------------------------------------
def test_ip_addresses_and_dotted_codes_are_not_numbers(tmp_path: Path) -> None:
    ips = [f"192.168.{100 + i}.{150 + i}" for i in range(50)] + ["10.3.7.5"]
    text = "addr,ref,batch,x\n" + "".join(f"{ip},{118 + i}.951.736,0{i % 9 + 1}.345.678,{i / 10}\n"
                                            for i, ip in enumerate(ips))
    read = load_table(_write(tmp_path / "rows.csv", text))
    assert read["addr"].tolist() == ips  # 192.168.100.150 is no 192168100150, nor 10.3.7.5 text among floats
    assert read["batch"].tolist()[:2] == ["01.345.678", "02.345.678"]  # a leading zero: a code
    assert read["ref"].tolist()[:2] == [118951736, 119951736]  # no sign it is not money: numbers
    semi = _write(tmp_path / "semi.csv", "host;n\n192.168.173.179;3\n192.168.217.248;4\n")
    assert load_table(semi)["host"].tolist() == ["192.168.173.179", "192.168.217.248"]
    assert load_table(semi, marks={"decimal": ","})["host"].tolist() == ["192.168.173.179", "192.168.217.248"]


def test_a_column_named_like_a_code_or_address_is_not_read_with_thousands_dots(tmp_path: Path) -> None:
    rows = "".join(f"{118 + i}.951.736,{i}.5,10.{i}.7.5,{i}\n" for i in range(20)) + "12.345,0.5,10.3.7.5,1\n"
    read = load_table(_write(tmp_path / "rows.csv", "part,x,ip,customer_id\n" + rows))
    assert read["part"].tolist()[:2] == ["118.951.736", "119.951.736"]
    assert read["part"].tolist()[-1] == "12.345"  # text every row, not a number among codes
    assert "thousands_dots" not in read.attrs["source"]
    with ExitStack() as stack:  # a later chunk without a two-dot cell is read as text too
        frames = list(open_chunks(tmp_path / "rows.csv", chunk_rows=20, stack=stack).frames)
    assert frames[-1]["part"].tolist() == ["12.345"]
    semi = _write(tmp_path / "semi.csv", "zip_code;n\n118.951.736;3\n964.848.680;4\n")
    assert load_table(semi)["zip_code"].tolist() == ["118.951.736", "964.848.680"]


def test_a_role_given_as_text_keeps_the_column_as_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    refs = [f"{a}.{b:03d}.{c:03d}" for a, b, c in zip(rng.integers(100, 999, 120), rng.integers(0, 999, 120),
                                                         rng.integers(0, 999, 120), strict=True)]
    y = rng.integers(0, 2, 120)
    lines = "".join(f"{r},{v},{'yes' if v else 'no'}\n" for r, v in zip(refs, y, strict=True))
    data = _write(tmp_path / "train.csv", "ref,signal,label\n" + lines)
    assert load_table(data)["ref"].dtype == float  # no name nor shape says it is a code: numbers
    assert load_table(data, marks={"as_written": ["ref"]})["ref"].tolist() == refs
    model = mlengineer.train(data, "label", time_budget=3, families=["lightgbm"], track=False,
                             column_roles={"ref": "categorical"})
    assert "thousands_dots" not in (model.metadata["read_marks"] or {})
    column = next(c for c in model.schema.columns if c.name == "ref")
    assert column.role == "categorical"
    assert read_marks(model.metadata) == {"as_written": ["ref"]}  # predict reads ref as training read it
    assert len(model.predict(data)) == 120


def test_the_audit_reads_a_column_given_a_role_of_text_as_written(tmp_path: Path) -> None:
    data = _write(tmp_path / "rows.csv", "ref,x\n" + "".join(f"{118 + i}.951.736,{i}\n" for i in range(30)))
    given, plain = run_clis(["audit", str(data), "--column-role", "ref=categorical"], ["audit", str(data)])
    assert given.returncode == 0, given.stderr
    assert "thousands marks" not in " ".join((given.stdout + given.stderr).split())  # the read line, wrapped
    assert "dots as thousands marks in 'ref'" in " ".join((plain.stdout + plain.stderr).split())


@pytest.mark.parametrize("cell", ["192.168.173.179", "0.123.456", "012.345.678"])
def test_an_address_or_a_leading_zero_is_never_thousands_dots(tmp_path: Path, cell: str) -> None:
    rows = _write(tmp_path / "rows.csv", f"amount,x\n1.234.567,0.5\n{cell},0.25\n")
    assert load_table(rows)["amount"].tolist()[1] == cell  # the column is not one of numbers
    assert load_table(rows, marks={"thousands_dots": ["amount"]})["amount"].tolist()[1] == cell
