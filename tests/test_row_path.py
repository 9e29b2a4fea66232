"""One record goes through the compiled row path (bundle/rowpath.py): it must answer exactly what the
DataFrame path answers, errors included, for every kind of value a client sends."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.bundle.rowpath import RowPath
from mlengineer.features.encoder import FeatureEncoder
from mlengineer.features.row import compile_row_encoder
from mlengineer.serving.runtime import serve_model
from mlengineer.serving.settings import ServeSettings


def frame_answer(model: mlengineer.Model, record: dict[str, Any]) -> Any:
    """The DataFrame path's probabilities or values for ``record``, or its error as (type, message)."""
    try:
        return model.predict_raw(pd.DataFrame([record]))
    except Exception as e:  # noqa: BLE001 - compared with the row path's own
        return (type(e).__name__, str(e))


def row_answer(model: mlengineer.Model, record: dict[str, Any]) -> Any:
    try:
        return model.predict_record(record)
    except Exception as e:  # noqa: BLE001
        return (type(e).__name__, str(e))


def batch_answer(model: mlengineer.Model, record: dict[str, Any]) -> Any:
    """The record as a batch of column arrays (the small-batch path, without the row path)."""
    other = copy.copy(model)
    other.use_row_path = False
    return row_answer(other, record)


def assert_same(model: mlengineer.Model, record: dict[str, Any]) -> None:
    """The same answer as the DataFrame path (the error's type; a one-row DataFrame writes True as np.True_
    in the message) and as the column-array path (the error's message, word for word)."""
    a, b, c = row_answer(model, record), frame_answer(model, record), batch_answer(model, record)
    if isinstance(a, tuple) or isinstance(b, tuple) or isinstance(c, tuple):
        assert a == c, f"{record}: row path {a!r}, column-array path {c!r}"
        assert isinstance(b, tuple) and a[0] == b[0], f"{record}: row path {a!r}, DataFrame path {b!r}"
        return
    assert a.shape == b.shape, record
    # members' row functions agree with their batch answers within 1e-6 of the output's scale (the MLP's
    # numpy forward pass sums in another order than torch's, in float32: 2e-9 relative on salaries)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=str(record))
    np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-9, err_msg=str(record))


def variants(record: dict[str, Any], model: mlengineer.Model) -> list[dict[str, Any]]:
    """``record`` spoiled one column at a time with what clients send: nothing, None, NaN, numbers as text,
    text in a number column, unseen categories, other date spellings, bad dates, a missing field."""
    roles = model.plan.steps[-1].roles
    out = []
    for col, role in roles.items():
        values: list[Any] = [None, float("nan"), np.nan, "", "NA", "?", " ", True, 0, -1, np.float32(2.5),
                             np.int64(3), "1,234", "abc", "unseen-category-x", 1e30, "2021-02-03",
                             "03/02/2021", "1950-06-30 12:34:56", "2024-13-45", "yes", "no"]
        if role == "datetime":
            values += [pd.Timestamp("2022-05-06 07:08"), "2022-05-06T07:08:09Z", "1969-12-31"]
        for v in values:
            r = dict(record)
            r[col] = v
            out.append(r)
        r = dict(record)
        del r[col]
        out.append(r)
    return out


@pytest.fixture(scope="module", params=["churn", "salary"])
def case(request: pytest.FixtureRequest, churn_model_dir: Path, salary_model_dir: Path, churn_csv: Path,
         salaries_csv: Path) -> tuple[mlengineer.Model, pd.DataFrame]:
    path, csv = (churn_model_dir, churn_csv) if request.param == "churn" else (salary_model_dir, salaries_csv)
    model = mlengineer.load(path)
    return model, pd.read_csv(csv).drop(columns=[model.target])


@pytest.mark.slow
def test_row_path_is_compiled_for_tables_of_numbers_categories_and_dates(case: Any) -> None:
    model, _ = case
    assert model.row_path() is not None


@pytest.mark.slow
def test_row_path_equals_dataframe_path_on_real_rows(case: Any) -> None:
    model, df = case
    path = model.row_path()
    assert path is not None
    for record in df.head(150).to_dict(orient="records"):
        np.testing.assert_array_equal(path.features(record), model.encode(pd.DataFrame([record])))
        assert_same(model, record)


@pytest.mark.slow
def test_row_path_equals_dataframe_path_on_bad_and_odd_values(case: Any) -> None:
    model, df = case
    records = df.head(3).to_dict(orient="records")
    n_errors = 0
    for record in records:
        for r in variants(record, model):
            assert_same(model, r)
            n_errors += isinstance(row_answer(model, r), tuple)
    assert n_errors > 0  # some variants are refused, and refused the same way


@pytest.mark.slow
def test_batch_path_unchanged_and_one_record_list_takes_row_path(case: Any) -> None:
    model, df = case
    records = df.head(5).to_dict(orient="records")
    whole = model.predict_raw(records)  # five records: the column-array path
    for i, r in enumerate(records):
        # float32 products of a (5, d) and a (1, d) matrix round differently (BLAS), batch path or not
        np.testing.assert_allclose(model.predict_raw([r]), whole[i : i + 1], rtol=1e-6, atol=1e-6)
    other = copy.copy(model)
    other.use_row_path = False
    np.testing.assert_allclose(other.predict_raw(records[0]), model.predict_raw(records[0]), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_served_single_row_matches_batch(case: Any) -> None:
    """The server's one-row request (validated columns, then ``predict_many``) answers as a batch does."""
    model, df = case
    served = serve_model(ServeSettings(model="x"), model, ref="x", version="1")
    records = df.head(20).to_dict(orient="records")
    path = model.row_path()
    assert path is not None
    compiled, calls = path.predict, []
    path.predict = lambda X: calls.append(1) or compiled(X)  # counts the requests the row path answers
    try:
        for r in records:
            item = served.validator.validate({k: [r[k]] for k in served.validator.features}, 1)
            (pred,) = served.predict_many([item])
            np.testing.assert_allclose(pred.raw, model.predict_raw(pd.DataFrame([r])), rtol=1e-6, atol=1e-9)
    finally:
        path.predict = compiled
    assert len(calls) == len(records)


def test_text_columns_fall_back_to_the_batch_path() -> None:
    df = pd.DataFrame({"t": ["red apple", "green pear", "red pear", "blue apple"] * 5, "n": range(20)})
    encoder = FeatureEncoder({"t": "text", "n": "numeric"}, text_components=2).fit(df)
    assert compile_row_encoder(encoder) is None
    numbers = FeatureEncoder({"n": "numeric"}).fit(df[["n"]])
    assert compile_row_encoder(numbers) is not None


def test_row_path_refuses_a_plan_it_cannot_follow(churn_csv: Path) -> None:
    class Odd:  # a model whose plan has no conform step: nothing to compile
        plan = mlengineer.data.clean.CleaningPlan(steps=[])
        encoder = None
        predictor = None

    assert RowPath.compile(Odd()) is None
