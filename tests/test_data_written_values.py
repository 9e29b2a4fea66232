"""How values are written in files, read and written back:

1. A true/false target read from a file ('true'/'false', 'TRUE'/'FALSE') is predicted as booleans by the Python
   API and written to a CSV of predictions as the training file wrote it; a model saved without that keeps
   writing True/False.
2. The profile's relation to the target names a boolean column's groups true and false, not 1 and 0, locally
   and on Spark.
3. Thousands dots with no decimal comma beside them (1.234.567) say the file writes decimal commas; 1.234 alone
   is read as the other columns say.
4. Decimal-comma columns are read a column at a time (no Python call a cell), to the same values.
5. In a sheet, a column named as a date whose cells are mostly formatted as dates reads its few unformatted
   day numbers as dates; numbers alone stay numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.chunks import open_chunks
from mlengineer.data.formats import sniff_csv, text_comma_columns
from mlengineer.data.load import load_table
from mlengineer.data.profile import profile_table
from mlengineer.data.values import comma_decimal_cell, comma_decimal_cells
from mlengineer.tasks import Task, make_task

from .spark_support import spark_fixture  # noqa: F401

rng = np.random.default_rng(7)


def _chunked(path: Path, rows: int) -> pd.DataFrame:
    with ExitStack() as stack:
        return pd.concat(list(open_chunks(path, chunk_rows=rows, stack=stack).frames), ignore_index=True)


# -- 1. a true/false target written back as the file wrote it -------------------------------------------------
def test_a_file_s_true_false_spelling_is_kept_by_the_task(tmp_path: Path) -> None:
    words = ["TRUE"] * 30 + ["FALSE"] * 25 + ["True"] * 2 + ["false"] + [""] * 3
    p = tmp_path / "t.csv"
    p.write_text("x,flag\n" + "".join(f"{i},{w}\n" for i, w in enumerate(words)))
    df = load_table(p)
    assert df.attrs["source"]["booleans"] == {"flag": ["FALSE", "TRUE"]}  # the majority spelling of each
    task = make_task(df["flag"])
    assert task.classes == [False, True] and task.written == ["FALSE", "TRUE"]
    back = Task.from_dict(task.to_dict())
    assert back.written == ["FALSE", "TRUE"]
    assert back.as_written(pd.Series([True, False])).tolist() == ["TRUE", "FALSE"]
    assert back.decode(np.array([[0.1, 0.9]])).dtype == bool  # the Python API answers booleans still
    # a model saved before the spelling was kept, a target of typed booleans, other labels: as they are
    old = Task.from_dict({"kind": "binary", "classes": [False, True]})
    assert old.written is None and old.as_written(pd.Series([True])).tolist() == [True]
    assert make_task(pd.Series([True, False])).written is None
    assert "booleans" not in load_table(_write_yes_no(tmp_path)).attrs["source"]  # yes/no stay text labels
    one_way = tmp_path / "one.csv"
    one_way.write_text("x,flag\n" + "".join(f"{i},true\n" for i in range(5)))
    assert load_table(one_way).attrs["source"]["booleans"] == {"flag": ["false", "true"]}  # the other alike


def _write_yes_no(tmp_path: Path) -> Path:
    p = tmp_path / "yn.csv"
    p.write_text("x,flag\n" + "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(20)))
    return p


@pytest.mark.slow
def test_predictions_of_a_true_false_target_are_written_as_the_training_file_wrote_them(tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.bundle.model import load
    from mlengineer.serving.batch import predict_to_file, write_predictions

    x = rng.normal(size=160)
    flag = np.where(x + rng.normal(scale=0.3, size=160) > 0, "TRUE", "FALSE")
    pd.DataFrame({"x": x, "flag": flag}).to_csv(tmp_path / "train.csv", index=False)
    mlengineer.train(tmp_path / "train.csv", "flag", time_budget=2, families=["linear"], tune=False,
                     out=tmp_path / "m", track=False)
    model = load(tmp_path / "m")
    rows = pd.DataFrame({"x": [-2.0, 2.0, -1.5]})
    rows.to_csv(tmp_path / "new.csv", index=False)
    assert model.predict(rows).tolist() == [False, True, False]  # the Python API: booleans
    predict_to_file(model, tmp_path / "new.csv", tmp_path / "p.csv")
    written = pd.read_csv(tmp_path / "p.csv", dtype=str)
    assert written["prediction"].tolist() == ["FALSE", "TRUE", "FALSE"]
    assert [c for c in written.columns if c.startswith("proba_")] == ["proba_FALSE", "proba_TRUE"]  # named alike
    write_predictions(model.predict_frame(rows), tmp_path / "w.csv", model)  # the --sql way
    assert pd.read_csv(tmp_path / "w.csv", dtype=str)["prediction"].tolist() == ["FALSE", "TRUE", "FALSE"]
    predict_to_file(model, tmp_path / "new.csv", tmp_path / "p.jsonl")  # JSON keeps its own booleans
    assert pd.read_json(tmp_path / "p.jsonl", lines=True)["prediction"].tolist() == [False, True, False]
    model.task = Task.from_dict({"kind": "binary", "classes": [False, True]})  # as a bundle saved before
    predict_to_file(model, tmp_path / "new.csv", tmp_path / "old.csv")
    old = pd.read_csv(tmp_path / "old.csv", dtype=str)
    assert old["prediction"].tolist() == ["False", "True", "False"] and "proba_True" in old.columns


# -- 2. a boolean column's groups in the profile --------------------------------------------------------------
def _flags(n: int = 400) -> pd.DataFrame:
    flag = rng.integers(0, 2, n).astype(bool)
    return pd.DataFrame({"flag": flag, "x": rng.normal(size=n),
                         "y": np.where(flag ^ (rng.random(n) < 0.2), "a", "b")})


def test_a_boolean_column_s_groups_are_true_and_false_in_the_profile() -> None:
    from mlengineer.data.profile_html import render_profile_html

    profile = profile_table(_flags(), target="y")
    groups = {c.name: c.target_by_group for c in profile.columns}
    assert groups["flag"] is not None and sorted(groups["flag"].groups) == ["false", "true"]
    page = render_profile_html(profile)
    assert ">true<" in page and ">false<" in page, page


def test_a_boolean_column_s_groups_are_true_and_false_on_spark(spark) -> None:  # noqa: F811
    """The Spark profile takes the relation to the target from ``profile_table`` on the driver's sample
    (``spark.profile.profile_spark``): a Spark boolean column arrives there as booleans, named true and false."""
    from mlengineer.spark.read import driver_sample

    df = _flags()
    frame = spark.createDataFrame(df)
    sample = driver_sample(frame, len(df), 100_000)
    assert sample["flag"].dtype == bool
    flag = next(c for c in profile_table(sample, target="y").columns if c.name == "flag")
    assert flag.target_by_group is not None and sorted(flag.target_by_group.groups) == ["false", "true"]


# -- 3. thousands dots as the evidence of decimal commas -------------------------------------------------------
def _dots(v: float) -> str:
    return f"{int(v):,}".replace(",", ".")


def test_thousands_dots_alone_say_decimal_commas(tmp_path: Path) -> None:
    big = rng.integers(1000, 9_000_000, 120)
    p = tmp_path / "dots.csv"
    p.write_text("amount;k\n" + "".join(f"{_dots(v)};a\n" for v in big))  # 4.253.270 and 12.345: thousands
    df = load_table(p)
    assert df.attrs["source"]["decimal"] == "," and df["amount"].dtype == np.float64
    np.testing.assert_array_equal(df["amount"], big.astype(float))
    np.testing.assert_array_equal(_chunked(p, 50)["amount"], big.astype(float))
    # 1.234 alone is ambiguous: the other columns tell; points elsewhere (7.12) say decimal points
    small = rng.integers(1000, 999_999, 120)
    pointed = "amount;w\n" + "".join(f"{_dots(v)};{rng.uniform(0, 10):.2f}\n" for v in small)
    assert "decimal" not in sniff_csv(pointed.encode())
    commas = "amount;w\n" + "".join(f"{_dots(v)};{rng.uniform(0, 10):.2f}\n".replace(".", ",").replace(",", ".", 1)
                                     for v in small)  # 123.456;7,12: decimal commas, so thousands dots
    assert sniff_csv(commas.encode())["decimal"] == ","
    # thousands dots beside decimal points are two ways of writing at once: read as before, not guessed
    both = "amount;w\n" + "".join(f"{_dots(v)};{rng.uniform(0, 10):.2f}\n" for v in big)
    assert "decimal" not in sniff_csv(both.encode())
    dates = "day;k\n" + "".join(f"{1 + i % 28:02d}.{1 + i % 12:02d}.2020;a\n" for i in range(60))
    assert "decimal" not in sniff_csv(dates.encode())  # 12.03.2020 is a date, not thousands


# -- 4. decimal commas a column at a time ---------------------------------------------------------------------
def test_decimal_comma_columns_are_read_at_once_to_the_values_cell_by_cell(tmp_path: Path) -> None:
    cells = ["1,5", " 2,5 ", "1.234,5", "12.345.678,9", "3,50 €", "(1.234,50 €)", "abc", "-,5", "1,5e3", "12%",
             "1.234", "1,2,3", "1.23,4", "0,336", ",5", "+1,", "1e5", "1_000", "1.5", "7,1E-3"]
    cells += ["".join(rng.choice(list("0123456789,.-+ €%()e?"), rng.integers(1, 8))) for _ in range(3000)]
    cells = [c for c in cells if c.strip()]
    index = pd.RangeIndex(1000, 1000 + len(cells))  # a chunk's rows: positions, not labels
    got = comma_decimal_cells(pd.Series(cells, index=index, dtype=object))
    want = [comma_decimal_cell(c) for c in cells]
    for c, g, w in zip(cells, got, want, strict=True):
        assert type(g) is type(w) and (g == w or (isinstance(w, float) and math.isnan(w) and math.isnan(g))), c
    numbers = pd.Series(["1,5", None, "2.345,25"], dtype=object)
    assert comma_decimal_cells(numbers).dtype == np.float64
    # the reader leaves pandas' parser no Python call a cell, and reads the same numbers whole and in chunks
    values = rng.uniform(0, 20000, 3000)
    written = [f"{v:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".") for v in values]
    written[::97] = ["?"] * len(written[::97])
    p = tmp_path / "c.csv"
    p.write_text("x;k\n" + "".join(f"{w};a\n" for w in written))
    opts = sniff_csv(p.read_bytes())
    assert opts["converters"] and text_comma_columns(opts)[0]["converters"] is None
    want_x = [math.nan if w == "?" else round(v, 2) for w, v in zip(written, values, strict=True)]
    for df in (load_table(p), _chunked(p, 1000)):
        got_x = pd.to_numeric(df["x"].where(df["x"] != "?"))
        np.testing.assert_allclose(got_x, want_x)
        assert (df["x"] == "?").sum() == len(written[::97])


# -- 5. Excel day numbers beside dates ------------------------------------------------------------------------
def _sheet(path: Path, *, epoch: dt.datetime | None = None) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    if epoch is not None:
        wb.epoch = epoch
    ws = wb.active
    ws.append(["Bestelldatum", "amount_day", "count", "y"])  # a date by its cells, in any language
    for r in range(2, 32):
        when = dt.datetime(2023, 3, 1) + dt.timedelta(days=r)
        a = ws.cell(row=r, column=1, value=when)
        a.number_format = "dd/mm/yyyy"
        if r % 5 == 0:  # a cell that lost its date format: its day number, as Excel holds it
            a.value = (when - (epoch or dt.datetime(1899, 12, 30))).days
            a.number_format = "General"
        ws.cell(row=r, column=2, value=45000 + r)  # day numbers alone (named as a date or not): numbers
        ws.cell(row=r, column=3, value=45000 + r)
        ws.cell(row=r, column=4, value=r % 2)
    wb.save(path)
    return path


@pytest.mark.parametrize("epoch", [None, dt.datetime(1904, 1, 1)])
def test_a_sheet_s_day_numbers_beside_dates_are_dates_and_plain_numbers_stay_numbers(
        tmp_path: Path, epoch: dt.datetime | None) -> None:
    df = load_table(_sheet(tmp_path / "book.xlsx", epoch=epoch))
    assert pd.api.types.is_datetime64_any_dtype(df["Bestelldatum"])
    want = [dt.datetime(2023, 3, 1) + dt.timedelta(days=r) for r in range(2, 32)]
    assert df["Bestelldatum"].tolist() == [pd.Timestamp(w) for w in want]
    assert df["amount_day"].dtype == np.int64 and df["count"].dtype == np.int64
