"""Mends from a new user's first hour with messy files: dates written another way than in training, ..."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.clean import conform_values
from mlengineer.errors import SchemaError


def test_a_date_column_reads_iso_8601_and_timestamps_whatever_format_it_was_trained_on() -> None:
    written = np.array(["2020-01-31", pd.Timestamp("2020-01-31"), "2020-01-31 00:00:00", "2020-01-31T00:00:00",
                        "2020-01-31T02:00:00+02:00", "20200131", dt.date(2020, 1, 31), dt.datetime(2020, 1, 31)],
                       dtype=object)
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", None):
        got = conform_values(written, "datetime", fmt, name="signup", strict=True)
        assert (got == np.datetime64("2020-01-31")).all(), (fmt, got)
    # the training's own format still decides where ISO 8601 would read it otherwise
    assert conform_values(np.array(["01/02/2020"], dtype=object), "datetime", "%d/%m/%Y")[0] == \
        np.datetime64("2020-02-01")
    with pytest.raises(SchemaError, match=r"Column 'signup' must hold dates written as in training \(31/01/2024\) "
                                          r"or in ISO 8601.*got 'garbage'"):
        conform_values(np.array(["garbage"], dtype=object), "datetime", "%d/%m/%Y", name="signup", strict=True)


@pytest.mark.slow
def test_a_model_trained_on_date_text_predicts_timestamps_and_iso_text_alike(churn_model_dir: Path,
                                                                            churn_csv: Path, tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.serving.validation import RequestValidator

    model = mlengineer.load(churn_model_dir)
    rows = pd.read_csv(churn_csv).drop(columns=["churn"]).head(20)
    want = model.predict_raw(rows)
    stamps = rows.assign(signup_date=pd.to_datetime(rows["signup_date"]))
    stamps.to_parquet(tmp_path / "rows.parquet")
    for other in (stamps, pd.read_parquet(tmp_path / "rows.parquet"),
                  rows.assign(signup_date=rows["signup_date"] + "T00:00:00"),
                  rows.assign(signup_date=rows["signup_date"].str.replace("-", ""))):
        np.testing.assert_allclose(model.predict_raw(other), want, rtol=0, atol=1e-12)
    first = rows.head(1).assign(signup_date=rows["signup_date"].head(1) + "T00:00:00")
    checked = RequestValidator(model).validate({c: first[c].tolist() for c in first.columns}, 1)
    assert checked.columns["signup_date"] == [first["signup_date"].iloc[0]]  # the server takes what the plan reads
    basic = {c: first[c].tolist() for c in first.columns} | {"signup_date": [20240119]}  # a CSV body's 20240119
    assert RequestValidator(model).validate(basic, 1).columns["signup_date"] == ["20240119"]


def test_an_infinite_target_is_refused_at_once_naming_its_first_row(tmp_path: Path) -> None:
    from mlengineer.errors import DataError
    from mlengineer.tasks import make_task

    from .conftest import run_cli

    with pytest.raises(DataError, match=r"infinity in 2 rows \(the first: row 2\)"):
        make_task(pd.Series([1.0, np.inf, 3.0, -np.inf]))
    with pytest.raises(DataError, match="Use --task regression"):  # many numbers are not a binary task
        make_task(pd.Series(np.arange(50) / 3), "binary")
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": rng.normal(size=200), "price": rng.normal(size=200)})
    table.loc[[5, 9], "price"] = np.inf
    table.to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("train", str(tmp_path / "t.csv"), "--target", "price", "--time-budget", "5", "--no-track",
                "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "infinity in 2 rows (the first: row 6)" in r.stderr, r.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_class_with_one_row_does_not_break_catboost() -> None:
    import mlengineer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] > 0, "yes", "no").astype(object)
    y[0] = "rare"  # one row: a validation fold holds it where the fold's training rows do not
    model = mlengineer.train(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), "y",
                             families=["catboost"], time_budget=4, seed=0, track=False)  # each fit meets the rare class
    rows = [r for r in model.metadata["leaderboard"] if r["model"] != "ensemble"]
    assert rows and all(r["status"] == "ok" for r in rows), [(r["model"], r["status"]) for r in rows]
    assert model.predict_proba(pd.DataFrame({"a": [1.0], "b": [0.0], "c": [0.0]})).shape == (1, 3)


@pytest.mark.slow
def test_codes_with_leading_zeros_are_the_categories_a_csv_read_as_numbers(tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.serving.validation import RequestValidator

    rng = np.random.default_rng(0)
    zips = np.array(["01001", "02139", "10001", "94105"])
    z = rng.choice(zips, 800)
    effect = {"01001": 5.0, "02139": -5.0, "10001": 0.0, "94105": 10.0}
    table = pd.DataFrame({"zip": z, "x": rng.normal(size=800)})
    table["y"] = [effect[v] for v in z] + 2 * rng.normal(size=800)  # not so exact that it reads as leakage
    table.to_csv(tmp_path / "t.csv", index=False)  # read back, the codes are numbers: 1001, 2139, ...
    model = mlengineer.train(tmp_path / "t.csv", "y", families=["lightgbm"], time_budget=3,
                             seed=0, track=False)
    rows = pd.DataFrame({"zip": ["01001", "02139", "94105"], "x": [0.0, 0.0, 0.0]})
    as_numbers = model.predict_raw(rows.assign(zip=[1001, 2139, 94105]))
    np.testing.assert_allclose(model.predict_raw(rows), as_numbers)  # text with its zeros: the same codes
    one = model.predict_raw({"zip": "01001", "x": 0.0})  # one record: the row path's own writers
    np.testing.assert_allclose(np.ravel(one), as_numbers[:1])
    np.testing.assert_allclose(as_numbers, [5.0, -5.0, 10.0], atol=1.5)
    checked = RequestValidator(model).validate({"zip": ["01001", 2139], "x": [0.0, 0.0]}, 2)
    assert not checked.warnings and checked.columns["zip"] == ["1001", "2139"]


@pytest.mark.slow
def test_explain_and_evaluate_name_the_file_and_their_options(churn_model_dir: Path, salary_model_dir: Path,
                                                              churn_csv: Path, tmp_path: Path) -> None:
    from .conftest import run_clis

    rows = pd.read_csv(churn_csv).head(30)
    rows.drop(columns=["plan"]).to_csv(tmp_path / "lacking.csv", index=False)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    # the commands side by side (each its own process): most of their seconds are their start
    *lacking, top, klass = run_clis(
        *([command, str(churn_model_dir), str(tmp_path / "lacking.csv")] for command in ("evaluate", "explain")),
        ["explain", str(churn_model_dir), str(tmp_path / "rows.csv"), "--top", "0"],
        ["explain", str(salary_model_dir), str(tmp_path / "rows.csv"), "--class", "yes"])
    for r in lacking:
        assert r.returncode == 2 and "lacking.csv: " in r.stderr and "'plan'" in r.stderr, r.stderr
    assert top.returncode == 2 and "--top must be at least 1" in top.stderr, top.stderr
    assert klass.returncode == 2 and "--class is for classifiers" in klass.stderr, klass.stderr


@pytest.mark.slow
def test_text_that_training_read_as_missing_in_a_number_column_is_read_so_when_predicting(tmp_path: Path) -> None:
    import mlengineer

    from .conftest import run_cli

    rng = np.random.default_rng(0)
    income = rng.normal(50, 10, 400).round(1).astype(object)
    income[[3, 50, 100, 200]] = ["unknown", "12k", "unknown", " - n/a - "]
    table = pd.DataFrame({"income": income, "age": rng.integers(20, 60, 400)})
    table["price"] = pd.to_numeric(table["income"], errors="coerce").fillna(50) * 3 + table["age"]
    table.to_csv(tmp_path / "t.csv", index=False)
    model = mlengineer.train(tmp_path / "t.csv", "price", families=["lightgbm"], time_budget=3, seed=0, track=False)
    conform = next(s for s in model.plan.steps if type(s).__name__ == "Conform")
    assert conform.placeholders == {"income": ["- n/a -", "12k", "unknown"]}
    rows = pd.DataFrame({"income": ["unknown", None, "12k"], "age": [30, 30, 30]})
    got = model.predict_raw(rows)
    assert got[0] == got[1] == got[2]  # read as missing, as training read them
    assert model.predict_raw({"income": "unknown", "age": 30})[0] == got[1]  # one record: the row path
    saved = model.save(tmp_path / "m")  # the very file it trained on, predicted by the command line
    r = run_cli("predict", str(saved), str(tmp_path / "t.csv"), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0 and len(pd.read_csv(tmp_path / "p.csv")) == 400, r.stderr
    from mlengineer.errors import SchemaError

    with pytest.raises(SchemaError, match="Column 'income' must hold numbers; got 'banana'"):
        model.predict_raw(pd.DataFrame({"income": ["banana"], "age": [30]}))
