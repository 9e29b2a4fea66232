"""A few rows take a faster path through the cleaning plan and the encoder (column arrays instead of
DataFrames). It must give exactly what the DataFrame path gives, for every kind of value a client sends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlengineer
from mlengineer.data.clean import conform_values


@pytest.fixture(scope="module")
def model(churn_model_dir: Path) -> mlengineer.Model:
    return mlengineer.load(churn_model_dir)


def dataframe_path(model: mlengineer.Model, df: pd.DataFrame) -> np.ndarray:
    return model.encoder.transform(model.plan.apply(df, training=False))


def test_small_and_large_batches_agree_on_real_rows(model: mlengineer.Model, churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv).drop(columns=["churn"])
    big = dataframe_path(model, df)
    for i in (0, 1, 7, 40):  # one row at a time: the array path
        np.testing.assert_array_equal(model.encode(df.iloc[[i]]), big[[i]])
    np.testing.assert_array_equal(model.encode(df.iloc[:30]), big[:30])
    records = df.iloc[:5].to_dict(orient="records")
    np.testing.assert_array_equal(model.encode(records), big[:5])
    np.testing.assert_array_equal(model.encode(records[0]), big[:1])


values = st.one_of(
    st.none(), st.just(float("nan")), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", " ", "NA", "n/a", "null", "?", "basic", " plus ", "premium", "3", "3.0", "1,234",
                     "2023-05-01", "yes", "no", "x y z"]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(role=st.sampled_from(["numeric", "categorical", "boolean", "text"]), column=st.lists(values, min_size=1, max_size=80))
def test_conform_is_the_same_for_any_batch_size(role: str, column: list) -> None:
    arr = np.empty(len(column), dtype=object)
    arr[:] = column
    try:
        whole = conform_values(arr, role, strict=False)
    except Exception as e:  # noqa: BLE001 - the assertion below names what happened
        pytest.fail(f"conform_values raised {type(e).__name__}: {e}")
    for i in range(len(column)):
        one = conform_values(arr[i : i + 1], role, strict=False)
        a, b = whole[i], one[0]
        assert (a == b) or (a is None and b is None) or (isinstance(a, float) and np.isnan(a) and np.isnan(b))


def test_strict_errors_name_the_column_on_both_paths(model: mlengineer.Model, churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv).drop(columns=["churn"]).head(100).astype({"age": object})
    df.loc[3, "age"] = "forty"
    with pytest.raises(mlengineer.SchemaError, match="'age'.*'forty'"):
        model.encode(df)  # 100 rows: the DataFrame path
    with pytest.raises(mlengineer.SchemaError, match="'age'.*'forty'"):
        model.encode(df.iloc[[3]])  # one row: the array path


def test_missing_tokens_in_number_columns_read_as_missing(model: mlengineer.Model, churn_csv: Path) -> None:
    row = pd.read_csv(churn_csv).drop(columns=["churn"]).head(1).astype({"monthly_fee": object})
    for token in ("NA", "", "null", "?"):
        row.loc[row.index[0], "monthly_fee"] = token
        X = model.encode(row)
        j = model.encoder.feature_names_.index("monthly_fee")
        assert np.isnan(X[0, j])


date_text = st.one_of(
    st.dates(min_value=__import__("datetime").date(1500, 1, 1), max_value=__import__("datetime").date(2400, 12, 31)).map(str),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.datetimes().map(lambda d: d.strftime("%m/%d/%Y")),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["", "NA", "junk", "2020-13-01", "2020-02-30", "2011-1-5", " 2020-01-02 ", "20200102"]),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(fmt=st.sampled_from(["%Y-%m-%d", "%m/%d/%Y", "%Y-%m-%d %H:%M:%S", "ISO8601"]),
       column=st.lists(date_text, min_size=1, max_size=70))
def test_dates_parse_the_same_for_any_batch_size(fmt: str, column: list) -> None:
    arr = np.empty(len(column), dtype=object)
    arr[:] = column
    whole = conform_values(arr, "datetime", fmt)           # up to 64 values: one by one; more: pandas
    reps = 65 // len(arr) + 1
    large = conform_values(np.concatenate([arr] * reps), "datetime", fmt)[: len(arr)]  # over 64: pandas
    np.testing.assert_array_equal(whole.astype("int64"), large.astype("int64"))
