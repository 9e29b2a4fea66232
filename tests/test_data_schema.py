"""Column roles: what each kind of column is inferred as and why, placeholders, overrides from the command
line and from a YAML config, and the benchmark columns the issue names (Id, instant, dteday)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.clean import fit_cleaning_plan
from mlengineer.data.load import load_table
from mlengineer.data.schema import ColumnRole, Schema, infer_schema
from mlengineer.errors import DataError
from mlengineer.features.encoder import FeatureEncoder

from .conftest import FIXTURES, run_cli

N = 200
rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return pd.DataFrame({
        "price": rng.normal(100, 20, N).round(2),
        "code": rng.integers(0, 6, N),                      # a low-cardinality whole-number code
        "flag01": rng.integers(0, 2, N),
        "answer": rng.choice(["Yes", "No"], N),
        "truth": rng.choice([True, False], N),
        "iso_day": pd.date_range("2021-01-01", periods=N, freq="D").strftime("%Y-%m-%d"),
        "us_stamp": pd.date_range("2021-01-01", periods=N, freq="7h").strftime("%m/%d/%Y %H:%M"),
        "named_month": pd.date_range("2021-01-01", periods=N, freq="D").strftime("%d-%b-%Y"),
        "iso_t": pd.date_range("2021-01-01", periods=N, freq="min").strftime("%Y-%m-%dT%H:%M:%S"),
        "note": [f"customer {i} wrote that the service was {'slow' if i % 3 else 'fine'} on the day" for i in range(N)],
        "sku": [f"SKU-{i:05d}-{rng.integers(1000)}" for i in range(N)],
        "row_number": np.arange(N) + 1,
        "same": ["x"] * N,
        "empty": [np.nan] * N,
        "flag_or_empty": np.where(np.arange(N) % 4 == 0, "refund", None),
        "thousands": [f"{v:,}" for v in rng.integers(1000, 900000, N)],
        "city": rng.choice(["Paris", "Lyon", "Nice", "Lille"], N),
        "target": rng.choice(["a", "b"], N),
    })


@pytest.mark.parametrize(("column", "role", "reason"), [
    ("price", "numeric", "numbers"),
    ("code", "categorical", "a code"),
    ("flag01", "boolean", "0 and 1"),
    ("answer", "boolean", "yes/no"),
    ("truth", "boolean", "true/false"),
    ("iso_day", "datetime", "%Y-%m-%d"),
    ("us_stamp", "datetime", "%m/%d/%Y %H:%M"),
    ("named_month", "datetime", "%d-%b-%Y"),
    ("iso_t", "datetime", "%Y-%m-%dT%H:%M:%S"),
    ("note", "text", "free text"),
    ("sku", "identifier", "unique per row"),
    ("row_number", "identifier", "running counter"),
    ("same", "constant", "a single value ('x')"),
    ("empty", "constant", "every value is missing"),
    ("flag_or_empty", "categorical", "a flag"),
    ("thousands", "numeric", "numbers written as text"),
    ("city", "categorical", "4 distinct values"),
])
def test_roles_with_their_reasons(mixed: pd.DataFrame, column: str, role: str, reason: str) -> None:
    col = infer_schema(mixed, "target")[column]
    assert col.role == ColumnRole(role), col
    assert reason in col.reason


def test_numeric_domain_and_category_domain(mixed: pd.DataFrame) -> None:
    schema = infer_schema(mixed, "target")
    assert schema["thousands"].min is not None and schema["thousands"].min >= 1000
    assert sorted(schema["city"].categories or []) == ["Lille", "Lyon", "Nice", "Paris"]
    assert sum(schema["city"].frequencies or []) == pytest.approx(1.0)
    assert schema.target == "target" and "target" not in schema.feature_names


def test_placeholders_in_a_column_of_numbers_are_missing_and_in_categories_a_category() -> None:
    df = load_table(FIXTURES / "house_prices_300.csv.gz", keep_default_na=False, na_values=[""])
    schema = infer_schema(df, "SalePrice")
    lot = schema["LotFrontage"]
    assert lot.role == ColumnRole.numeric and lot.missing_tokens == ["NA"] and lot.n_missing_tokens > 30
    assert lot.missing_fraction == pytest.approx(lot.n_missing_tokens / len(df))
    pool = schema["Alley"]  # "NA" means "no alley access" here
    assert pool.role == ColumnRole.categorical and "NA" in (pool.categories or [])
    plan = fit_cleaning_plan(df, schema)
    clean = plan.apply(df.drop(columns=["SalePrice"]))
    assert clean["LotFrontage"].isna().sum() == lot.n_missing_tokens and clean["Alley"].eq("NA").any()


def test_issue_columns_id_instant_and_dteday() -> None:
    house = load_table(FIXTURES / "house_prices_300.csv.gz", keep_default_na=False, na_values=[""])
    assert infer_schema(house, "SalePrice")["Id"].role == ColumnRole.identifier
    bike = load_table(FIXTURES / "bike_sharing_400.csv.gz")
    schema = infer_schema(bike, "cnt")
    assert schema["instant"].role == ColumnRole.identifier
    assert schema["dteday"].role == ColumnRole.datetime and schema["dteday"].datetime_format == "%m/%d/%Y"
    plan = fit_cleaning_plan(bike, schema)
    assert "instant" in plan.dropped_columns and "dteday" in plan.feature_columns
    clean = plan.apply(bike, training=True).drop(columns=["cnt"])
    encoder = FeatureEncoder({c: schema[c].role.value for c in clean.columns}).fit(clean)
    derived = [f for f in encoder.feature_names_ if f.startswith("dteday__")]
    assert {"dteday__month", "dteday__dayofweek", "dteday__days"} <= set(derived)
    X = encoder.transform(clean)
    month = X[:, encoder.feature_names_.index("dteday__month")]
    assert np.array_equal(month, pd.to_datetime(bike["dteday"], format="%m/%d/%Y").dt.month.to_numpy(dtype=np.float32))


def test_override_wins_and_unknown_names_are_refused(mixed: pd.DataFrame) -> None:
    schema = infer_schema(mixed, "target", {"code": "numeric", "row_number": "categorical", "iso_day": "text"})
    assert schema["code"].role == ColumnRole.numeric and schema["code"].reason == "set by the user"
    assert schema["row_number"].role == ColumnRole.categorical and schema["iso_day"].role == ColumnRole.text
    with pytest.raises(DataError, match="'nope'"):
        infer_schema(mixed, "target", {"nope": "numeric"})
    with pytest.raises(DataError, match="role 'number'"):
        infer_schema(mixed, "target", {"price": "number"})


def test_schema_round_trips_through_json(mixed: pd.DataFrame) -> None:
    schema = infer_schema(mixed, "target")
    again = Schema.from_json(schema.to_json())
    assert again == schema


def test_one_row_and_all_missing_tables() -> None:
    one = infer_schema(pd.DataFrame({"a": [1.5], "b": ["x"], "y": [1]}), "y")
    assert [c.role for c in one.columns] == [ColumnRole.constant, ColumnRole.constant]
    nulls = infer_schema(pd.DataFrame({"a": [None] * 5, "b": [np.nan] * 5}))
    assert all(c.role == ColumnRole.constant and c.missing_fraction == 1.0 for c in nulls.columns)


def test_nested_values_in_a_frame_are_categories_by_their_text() -> None:
    df = pd.DataFrame({"tags": [["a"], ["b"], ["a"]] * 10, "y": [1, 2, 3] * 10})
    schema = infer_schema(df, "y")
    assert schema["tags"].role == ColumnRole.categorical and schema["tags"].categories == ["['a']", "['b']"]


def test_yaml_config_sets_roles_drops_and_target(tmp_path: Path, churn_csv: Path) -> None:
    """`train --config` reads TrainConfig's fields from YAML: the override and the drop reach the bundle."""
    import mlengineer

    cfg = tmp_path / "train.yaml"
    cfg.write_text("target: churn\ntime_budget: 4\ncolumn_roles:\n  age: categorical\n  tenure_months: numeric\n"
                   "drop:\n  - monthly_fee\nseed: 3\n")
    out = tmp_path / "model"
    r = run_cli("train", str(churn_csv), "--config", str(cfg), "--no-track", "--out", str(out))
    assert r.returncode == 0, r.stderr
    model = mlengineer.load(out)
    assert model.schema["age"].role == ColumnRole.categorical and model.schema["age"].reason == "set by the user"
    assert model.plan.dropped_columns["monthly_fee"] == "dropped by the user (--drop)"
    assert "monthly_fee" not in model.feature_names and model.metadata["config"]["seed"] == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("target: churn\ncolumn_roles:\n  age: number\n")
    r = run_cli("train", str(churn_csv), "--config", str(bad), "--no-track", "--out", str(tmp_path / "m2"))
    assert r.returncode == 2 and "'number'" in r.stderr and "Traceback" not in r.stderr
