"""The Python face and predict, mended from a reviewer's findings: predict takes a file, an array and an Arrow
table; a column spelt in another case is named; MLflow's pyfunc takes the training file's columns without a
warning; a large file's bad value is named by its row; one prediction is one; a date given as Unix seconds is
read as 20240131 is; dates far outside the training range are noted as numbers are; and a file's thousands dots
and decimal commas are read at predict as training read them."""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import InputWarning, SchemaError

RECORD = {"customer_id": "C1", "age": 40, "plan": "basic", "monthly_fee": 50.0, "tenure_months": 3,
          "signup_date": "2024-01-01"}


@pytest.fixture(scope="module")
def churn(churn_model_dir: Path) -> mlengineer.Model:
    return mlengineer.load(churn_model_dir)


def test_predict_takes_a_file_an_array_and_an_arrow_table(churn: mlengineer.Model, churn_csv: Path) -> None:
    import pyarrow as pa

    frame = pd.read_csv(churn_csv).head(40)
    path = churn_csv.parent / "churn_800.csv"
    want = churn.predict(frame)
    assert list(churn.predict(str(path))[:40]) == list(want)
    assert list(churn.predict(path)[:40]) == list(want)
    assert list(churn.predict_proba(path).columns) == churn.classes
    assert list(churn.predict(frame[churn.feature_names].to_numpy(dtype=object))) == list(want)
    assert list(churn.predict(pa.Table.from_pandas(frame))) == list(want)
    one = frame[churn.feature_names].to_numpy(dtype=object)[0]  # a 1-D array: one row
    assert list(churn.predict(one)) == [want[0]]
    with pytest.raises(SchemaError, match=r"The array is 40 x 3; the model reads 5 columns a row, in this order: age"):
        churn.predict(frame[churn.feature_names[:3]].to_numpy())


def test_a_column_spelt_in_another_case_is_named_not_read(churn: mlengineer.Model, churn_csv: Path) -> None:
    frame = pd.read_csv(churn_csv).head(3).rename(columns={"age": "AGE", "plan": " plan"})
    with pytest.raises(SchemaError, match=r"Column 'age' is missing from the input \(and 1 more\) \(the rows have "
                                          r"'AGE': did you mean 'age'\? rename it and 1 more alike"):
        churn.predict(frame)
    record = {(" age" if k == "age" else k): v for k, v in RECORD.items()}
    with pytest.raises(SchemaError, match=r"the rows have ' age': did you mean 'age'\?"):
        churn.predict(record)
    with pytest.raises(SchemaError, match=r"the rows have 'AGE'"):  # a frame of more than a few rows too
        churn.predict(pd.concat([frame] * 30, ignore_index=True))


def test_predict_record_answers_the_classes_in_their_order(churn: mlengineer.Model) -> None:
    raw = churn.predict_record(RECORD)
    named = churn.predict_proba(RECORD).iloc[0].to_dict()
    assert raw.shape == (1, len(churn.classes))
    assert named == pytest.approx(dict(zip(churn.classes, raw[0], strict=True)))


def test_pyfunc_takes_the_training_files_columns_without_a_warning(churn_model_dir: Path, churn_csv: Path) -> None:
    import mlflow.pyfunc

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("mlflow").addHandler(handler)
    try:
        answer = mlflow.pyfunc.load_model(str(churn_model_dir)).predict(pd.read_csv(churn_csv).head(5))
    finally:
        logging.getLogger("mlflow").removeHandler(handler)
    assert len(answer) == 5
    assert "extra inputs" not in log.getvalue(), log.getvalue()


def test_a_large_files_bad_value_is_named_by_its_row(churn: mlengineer.Model, churn_csv: Path,
                                                     tmp_path: Path) -> None:
    from mlengineer.serving.batch import predict_to_file

    frame = pd.read_csv(churn_csv)
    frame.loc[456, "monthly_fee"] = np.inf
    frame.to_csv(tmp_path / "big.csv", index=False)
    with pytest.raises(SchemaError, match=r"^big\.csv, row 457: Column 'monthly_fee' holds infinity"):
        predict_to_file(churn, tmp_path / "big.csv", tmp_path / "out.csv", chunk_rows=100)
    frame.loc[456, "monthly_fee"] = 50.0
    frame.loc[612, "signup_date"] = "not a date"
    frame.to_csv(tmp_path / "big.csv", index=False)
    with pytest.raises(SchemaError, match=r"^big\.csv, row 613: Column 'signup_date' must hold dates"):
        predict_to_file(churn, tmp_path / "big.csv", tmp_path / "out.csv", chunk_rows=100)


def test_one_prediction_is_one_and_no_blank_line_comes_first(churn: mlengineer.Model, churn_csv: Path,
                                                              tmp_path: Path) -> None:
    from rich.console import Console

    from mlengineer.serving.batch import predict_data

    pd.read_csv(churn_csv).head(1).to_csv(tmp_path / "one.csv", index=False)
    said = io.StringIO()
    predict_data(churn, str(tmp_path / "one.csv"), str(tmp_path / "out.csv"), console=Console(file=said, width=200))
    assert said.getvalue() == "Wrote 1 prediction to " + str(tmp_path / "out.csv") + ".\n"


def test_unix_seconds_are_read_as_the_date_they_stand_for(churn: mlengineer.Model) -> None:
    from mlengineer.serving.validation import RequestValidator

    want = churn.predict_proba(RECORD)
    for seconds in (1704067200, 1704067200.0):
        assert churn.predict_proba({**RECORD, "signup_date": seconds}).to_numpy() == pytest.approx(want.to_numpy())
    assert churn.predict_proba({**RECORD, "signup_date": 20240101}).to_numpy() == pytest.approx(want.to_numpy())
    checked = RequestValidator(churn).validate({"signup_date": [1704067200, 20240101], "age": [40, 40],
                                                "plan": ["basic"] * 2, "monthly_fee": [50.0] * 2,
                                                "tenure_months": [3, 3]}, 2)
    assert checked.columns["signup_date"] == ["2024-01-01T00:00:00", "20240101"]
    assert not checked.warnings
    with pytest.raises(SchemaError, match=r"Column 'signup_date' must hold dates .*; got 1704067200000"):
        churn.predict({**RECORD, "signup_date": 1704067200000})  # milliseconds: no date


def test_a_date_far_outside_the_training_range_is_noted(churn: mlengineer.Model, churn_csv: Path,
                                                         tmp_path: Path) -> None:
    from mlengineer.serving.batch import InputNotes
    from mlengineer.serving.validation import RequestValidator

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        churn.predict({**RECORD, "signup_date": "1850-01-01"})
        churn.predict({**RECORD, "signup_date": "2023-05-01"})
    lines = [str(w.message) for w in said if issubclass(w.category, InputWarning)]
    assert len(lines) == 1
    assert lines[0].startswith("Column 'signup_date': 1 row holds a date far outside the training range (2022-")
    assert "e.g. 1850-01-01" in lines[0]
    frame = pd.read_csv(churn_csv).head(50)
    frame.loc[[3, 7], "signup_date"] = ["1850-01-01", "1900-06-30"]
    notes = InputNotes(churn)
    notes.add(frame)
    assert any(line.startswith("Column 'signup_date': 2 rows hold dates far outside") for line in notes.lines())
    checked = RequestValidator(churn).validate({c: frame[c].tolist() for c in frame.columns}, len(frame),
                                               nan_is_missing=True)
    assert any("'signup_date'" in w and "far outside" in w and "in row 3" in w for w in checked.warnings)


def test_thousands_dots_are_read_at_predict_as_training_read_them(tmp_path: Path) -> None:
    from mlengineer.data.chunks import open_chunks
    from mlengineer.data.load import load_table

    rng = np.random.default_rng(0)
    amounts = np.concatenate([rng.integers(1000, 20000, 280), rng.integers(1_000_000, 3_000_000, 20)])
    rng.shuffle(amounts)
    dots = [f"{v:,}".replace(",", ".") for v in amounts]
    labels = np.where(amounts > 10_000, "yes", "no")
    (tmp_path / "train.csv").write_text("amount,label\n" + "".join(f"{d},{y}\n" for d, y in zip(dots, labels,
                                                                                              strict=True)))
    model = mlengineer.train(tmp_path / "train.csv", "label", time_budget=3, families=["lightgbm"], track=False)
    assert model.metadata["read_marks"] == {"thousands_dots": ["amount"]}
    # a file whose first rows hold one dot a number: alone it reads as decimals, a thousand times too small
    (tmp_path / "rows.csv").write_text("amount,label\n" + "12.345,yes\n15.678,yes\n4.321,no\n" * 4)
    assert load_table(tmp_path / "rows.csv")["amount"].tolist()[:3] == [12.345, 15.678, 4.321]
    marks = model.metadata["read_marks"]
    assert load_table(tmp_path / "rows.csv", marks=marks)["amount"].tolist()[:3] == [12345, 15678, 4321]
    with ExitStack() as stack:
        chunk = next(open_chunks(tmp_path / "rows.csv", chunk_rows=2, stack=stack, marks=marks).frames)
    assert chunk["amount"].tolist() == [12345, 15678]
    assert list(model.predict(tmp_path / "rows.csv")[:3]) == ["yes", "yes", "no"]
    assert mlengineer.evaluate(model, tmp_path / "rows.csv", n_boot=20, slices=False)["metrics"]["accuracy"] == 1.0
    saved = model.save(tmp_path / "model")
    assert mlengineer.load(saved).metadata["read_marks"] == marks


def test_a_decimal_comma_is_read_at_predict_as_training_read_it(tmp_path: Path) -> None:
    from mlengineer.data.load import load_table

    (tmp_path / "rows.csv").write_text("amount;n\n1.234;3\n2.500;4\n")  # alone: decimal points
    assert load_table(tmp_path / "rows.csv")["amount"].tolist() == [1.234, 2.5]
    read = load_table(tmp_path / "rows.csv", marks={"decimal": ","})
    assert read["amount"].tolist() == [1234, 2500]
    assert read["n"].tolist() == [3, 4]
    (tmp_path / "train.csv").write_text("amount;n\n1.234,5;3\n2,25;4\n")
    from mlengineer.pipeline.build import read_marks_of

    assert read_marks_of(load_table(tmp_path / "train.csv")) == {"decimal": ","}
