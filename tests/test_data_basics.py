"""Reading every supported format, inferring roles and tasks, and the cleaning plan's round trip."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.clean import CleaningPlan, fit_cleaning_plan
from mlengineer.data.load import load_table
from mlengineer.data.schema import ColumnRole, infer_schema
from mlengineer.errors import DataError, SchemaError
from mlengineer.tasks import infer_task_kind, make_task


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "x", None], "c": [0.5, 1.5, np.nan, 2.5]})


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.csv.gz", "t.parquet", "t.json", "t.jsonl", "t.jsonl.gz",
                                  "t.xlsx", "t.csv.zst"])
def test_every_format_reads_the_same_table(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    p = tmp_path / name
    if name.endswith(".tsv"):
        frame.to_csv(p, sep="\t", index=False)
    elif ".csv" in name:
        frame.to_csv(p, index=False, compression="infer")
    elif name.endswith(".parquet"):
        frame.to_parquet(p, index=False)
    elif name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        frame.to_json(p, orient="records", lines=True, compression="infer")
    elif name.endswith(".json"):
        frame.to_json(p, orient="records")
    elif name.endswith(".xlsx"):
        frame.to_excel(p, index=False)
    got = load_table(p)
    assert list(got.columns) == ["a", "b", "c"]
    assert got["a"].tolist() == [1, 2, 3, 4]
    assert got["b"].iloc[0] == "x" and pd.isna(got["b"].iloc[3])
    assert np.isnan(got["c"].iloc[2])


def test_semicolon_csv_is_sniffed(tmp_path: Path) -> None:
    p = tmp_path / "semi.csv"
    p.write_text("a;b\n1;x\n2;y\n")
    assert list(load_table(p).columns) == ["a", "b"]


def test_latin1_csv_reads(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("name,city\nJosé,Málaga\nZoë,Köln\n".encode("latin-1"))
    assert load_table(p)["city"].tolist() == ["Málaga", "Köln"]


def test_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    p = tmp_path / "cut.csv.gz"
    rows = "".join(f"{i},{i * 7919 % 10007}\n" for i in range(5000)).encode()
    whole = gzip.compress(b"a,b\n" + rows)
    p.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut.csv.gz"):
        load_table(p)


@pytest.mark.parametrize("name", ["junk", "junk.dat"])
def test_a_file_whose_first_bytes_say_gzip_and_then_break_off_is_a_data_error(tmp_path: Path, name: str) -> None:
    # the name tells no format, so the first bytes inside the compression are read to tell it (the fuzz
    # test found this one: an EOFError escaped there as a traceback)
    p = tmp_path / name
    p.write_bytes(gzip.compress(b"a,b\n1,2\n")[:12])
    with pytest.raises(DataError, match=name):
        load_table(p)


def test_roles_are_inferred_with_reasons(churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv)
    schema = infer_schema(df, "churn")
    roles = {c.name: c.role for c in schema.columns}
    assert roles["customer_id"] == ColumnRole.identifier
    assert roles["plan"] == ColumnRole.categorical
    assert roles["signup_date"] == ColumnRole.datetime
    assert roles["monthly_fee"] == ColumnRole.numeric
    assert all(c.reason for c in schema.columns)
    assert schema["monthly_fee"].missing_fraction == pytest.approx(0.05)
    assert schema.target == "churn" and "churn" not in schema.feature_names


def test_role_override_wins(churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv)
    schema = infer_schema(df, "churn", {"age": "categorical"})
    assert schema["age"].role == ColumnRole.categorical and schema["age"].reason == "set by the user"


def test_running_counter_is_an_identifier() -> None:
    df = pd.DataFrame({"instant": np.arange(1, 201), "x": np.random.default_rng(0).normal(size=200)})
    assert infer_schema(df)["instant"].role == ColumnRole.identifier


@pytest.mark.parametrize(("values", "kind"), [
    (["a", "b"] * 20, "binary"), ([1.5, 2.25, 3.1, 4.7] * 10, "regression"), (["x", "y", "z"] * 10, "multiclass"),
    (list(range(100)), "regression"), ([0, 1, 2] * 20, "multiclass"),
])
def test_task_inference(values: list, kind: str) -> None:
    assert infer_task_kind(pd.Series(values))[0] == kind


def test_single_value_target_is_refused() -> None:
    with pytest.raises(DataError, match="single value"):
        make_task(pd.Series(["a"] * 10))


def test_cleaning_plan_round_trips_and_applies_identically(churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv)
    schema = infer_schema(df, "churn")
    plan = fit_cleaning_plan(df, schema)
    again = CleaningPlan.from_json(plan.to_json())
    a = plan.apply(df.drop(columns=["churn"]))
    b = again.apply(df.drop(columns=["churn"]))
    pd.testing.assert_frame_equal(a, b)
    assert "customer_id" not in a.columns
    assert str(a["signup_date"].dtype).startswith("datetime64")
    assert a["plan"].map(type).eq(str).all()


def test_cleaning_plan_names_a_value_of_the_wrong_type(churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv)
    plan = fit_cleaning_plan(df, infer_schema(df, "churn"))
    bad = df.drop(columns=["churn"]).head(3).astype({"tenure_months": object})
    bad.loc[1, "tenure_months"] = "ten"
    with pytest.raises(SchemaError, match="'tenure_months'.*'ten'"):
        plan.apply(bad)


def test_integer_categories_match_whatever_their_type(churn_csv: Path) -> None:
    """A code seen as 3 at training is the same category when a request sends 3.0 or "3"."""
    from mlengineer.data.clean import conform_column

    s = conform_column(pd.Series([3, 3.0, "3", " 3 ", None], dtype=object), "categorical")
    assert s.tolist()[:4] == ["3", "3", "3", "3"] and s.iloc[4] is None


def test_a_plan_saved_before_new_fields_still_loads_and_applies(churn_csv: Path) -> None:
    """Bundles written by earlier versions hold plans without ``details`` or ``tokens``: they keep working."""
    old = {"steps": [
        {"kind": "drop_missing_target", "summary": "", "rows_changed": 0, "training_only": True, "target": "churn"},
        {"kind": "select_columns", "summary": "", "rows_changed": 0, "training_only": False,
         "keep": ["age", "plan"], "dropped": {"customer_id": "identifier"}, "target": "churn"},
        {"kind": "conform", "summary": "", "rows_changed": 0, "training_only": False,
         "roles": {"age": "numeric", "plan": "categorical"}, "datetime_formats": {}},
    ]}
    import json

    plan = CleaningPlan.from_json(json.dumps(old))
    out = plan.apply(pd.read_csv(churn_csv).head(4).drop(columns=["churn"]))
    assert list(out.columns) == ["age", "plan"] and out["age"].dtype == np.float64


def test_each_step_says_what_it_changed(tmp_path: Path) -> None:
    x = [str(10 * i) for i in range(300)]  # numbers, not a running counter (that would be an identifier)
    x[::30] = ["oops"] * 10
    x[1::30] = ["NA"] * 10
    df = pd.DataFrame({"x": x, "g": list("abc") * 100, "y": ["p", "q", "?", "p", None, "q"] * 50})
    schema = infer_schema(df, "y")
    plan = fit_cleaning_plan(df, schema)
    steps = {s["step"]: s for s in plan.describe()}
    assert steps["drop_missing_target"]["rows_changed"] == 100  # "?" and empty: no target
    assert steps["conform"]["details"] == {"x": 20}  # "oops" unreadable, "NA" a placeholder: both missing
    assert schema["x"].missing_tokens == ["NA"]
    clean = plan.apply(df, training=True)
    assert len(clean) == 200 and set(clean["y"]) == {"p", "q"} and clean["x"].isna().sum() == 20
