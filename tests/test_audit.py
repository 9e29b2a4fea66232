"""The audit: each check fires on the table that shows it and stays quiet otherwise; target leakage is found
in the ways it appears in real data, a strong honest feature is not called leakage, and the cleaning plan
drops leaky columns unless the user keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.clean import fit_cleaning_plan
from mlengineer.data.leakage import LEAKAGE_CHECKS
from mlengineer.data.quality import Finding, audit
from mlengineer.data.schema import infer_schema

from .conftest import run_cli, run_clis

rng = np.random.default_rng(7)


def run(df: pd.DataFrame, target: str | None = None, kind: str | None = None) -> list[Finding]:
    return audit(df, infer_schema(df, target), task_kind=kind)


def checks(findings: list[Finding], column: str | None = "any") -> set[str]:
    return {f.check for f in findings if column == "any" or f.column == column}


def leaks(findings: list[Finding]) -> dict[str | None, str]:
    return {f.column: f.check for f in findings if f.check in LEAKAGE_CHECKS}


@pytest.fixture(scope="module")
def churn(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv)


@pytest.fixture(scope="module")
def salaries(salaries_csv: Path) -> pd.DataFrame:
    return pd.read_csv(salaries_csv)


# -- each check ------------------------------------------------------------------------------------------------
def base(n: int = 400) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcd"), n), "y": rng.choice(["p", "q"], n)})


def test_duplicate_rows_and_conflicting_labels() -> None:
    df = base()
    df = pd.concat([df, df.iloc[:40]], ignore_index=True)
    conflict = df.iloc[:10].copy()
    conflict["y"] = conflict["y"].map({"p": "q", "q": "p"})
    df = pd.concat([df, conflict], ignore_index=True)
    f = run(df, "y", "binary")
    dup = next(x for x in f if x.check == "duplicate_rows")
    assert dup.value == 40 and "40 rows" in dup.message
    assert "conflicting_labels" in checks(f)
    assert "conflicting_labels" not in checks(run(pd.concat([base(), base().iloc[:5]]), "y", "binary"))


def test_duplicate_columns_copy_and_relabel() -> None:
    df = base()
    df["x_copy"] = df["x"]
    df["g_code"] = df["g"].map({"a": 1, "b": 2, "c": 3, "d": 4})
    df["unrelated"] = rng.normal(size=len(df))  # all-distinct numbers must not match each other
    f = run(df, "y", "binary")
    dups = {x.column: x.message for x in f if x.check == "duplicate_columns"}
    assert set(dups) == {"x_copy", "g_code"}
    assert "value for value" in dups["x_copy"] and "one to one" in dups["g_code"]


def test_missing_constant_near_constant_identifier_and_cardinality() -> None:
    n = 500
    df = base(n)
    df["mostly_empty"] = np.where(rng.random(n) < 0.8, np.nan, rng.normal(size=n))
    df["one_value"] = "same"
    df["rare_flag"] = np.where(np.arange(n) < 2, "on", "off")
    df["order_id"] = [f"ORD{i:06d}" for i in range(n)]
    df["city"] = [f"city{i % 300}" for i in range(n)]
    f = run(df, "y", "binary")
    assert checks(f, "mostly_empty") == {"mostly_missing"}
    assert checks(f, "one_value") == {"constant"}
    assert checks(f, "rare_flag") == {"near_constant"}
    assert checks(f, "order_id") == {"identifier"}
    assert "high_cardinality" in checks(f, "city")
    assert not checks(f, "x") and not checks(f, "g")


def test_mixed_types_and_placeholders() -> None:
    n = 300
    df = base(n)
    nums = rng.normal(50, 10, n).round(1).astype(str)
    nums[:3] = ["twelve", "n.a.", "??x"]
    df["mostly_numbers"] = nums
    df["half_and_half"] = [str(i % 40) if i % 2 else f"item{i % 40}" for i in range(n)]
    df["with_na"] = np.where(np.arange(n) % 10 == 0, "NA", rng.normal(size=n).round(3).astype(str))
    f = run(df, "y", "binary")
    mixed = {x.column: x for x in f if x.check == "mixed_types"}
    assert "'twelve'" in mixed["mostly_numbers"].message and mixed["mostly_numbers"].value == 3
    assert mixed["half_and_half"].severity == "warning"
    placeholder = next(x for x in f if x.check == "missing_placeholders")
    assert placeholder.column == "with_na" and placeholder.value == 30


def test_outliers_and_a_placeholder_number() -> None:
    n = 1000
    df = base(n)
    df["income"] = rng.normal(50_000, 8_000, n)
    df.loc[:1, "income"] = [2_000_000, 3_500_000]
    df["age"] = rng.integers(18, 80, n).astype(float)
    df.loc[:14, "age"] = -999
    f = run(df, "y", "binary")
    out = next(x for x in f if x.check == "outliers")
    assert out.column == "income" and out.value == 2 and "3,500,000" in out.message
    ph = next(x for x in f if x.check == "placeholder_number")
    assert ph.column == "age" and "-999 in 15 rows" in ph.message


def test_target_checks() -> None:
    n = 600
    y = np.array(["common"] * 560 + ["uncommon"] * 36 + ["tiny"] * 4, dtype=object)
    df = pd.DataFrame({"x": rng.normal(size=n), "y": y})
    df.loc[rng.choice(n, 30, replace=False), "y"] = None
    f = run(df, "y", "multiclass")
    assert {"missing_target", "class_imbalance", "rare_classes", "sorted_by_target"} <= checks(f)
    missing = next(x for x in f if x.check == "missing_target")
    assert missing.value == 30 and missing.action == "drop_rows"
    shuffled = df.sample(frac=1, random_state=0)
    assert "sorted_by_target" not in checks(run(shuffled, "y", "multiclass"))


def test_few_rows_and_severity_order() -> None:
    df = base(40)
    df["c"] = "k"
    f = run(df, "y", "binary")
    assert "few_rows" in checks(f)
    order = {"error": 2, "warning": 1, "info": 0}
    assert [order[x.severity] for x in f] == sorted((order[x.severity] for x in f), reverse=True)


# -- leakage ---------------------------------------------------------------------------------------------------
def test_clean_tables_raise_no_leakage_alarm(churn: pd.DataFrame, salaries: pd.DataFrame) -> None:
    assert leaks(run(churn, "churn", "binary")) == {}
    assert leaks(run(salaries.drop(columns=["salary"]), "salary_in_usd", "regression")) == {}


def test_leaks_in_churn_are_found(churn: pd.DataFrame) -> None:
    df = churn.copy()
    left = df["churn"].eq("yes").to_numpy()
    df["cancel_reason"] = np.where(left & (rng.random(len(df)) < 0.6), "moved away", None)  # filled for 60% of leavers
    df["status_text"] = df["churn"].map({"yes": "left", "no": "stayed"})                    # the target spelled out
    df["churn_score"] = left + rng.normal(0, 0.1, len(df))                                 # the target plus noise
    found = leaks(run(df, "churn", "binary"))
    assert found == {"cancel_reason": "leakage_filled_for_outcome", "status_text": "leakage_predictor",
                     "churn_score": "leakage_predictor"}


def test_leaks_in_salaries_are_found(salaries: pd.DataFrame) -> None:
    df = salaries.drop(columns=["salary"]).copy()
    usd = df["salary_in_usd"].to_numpy(dtype=float)
    df["salary_eur"] = (usd * 0.92 * (1 + rng.normal(0, 0.01, len(df)))).round()
    df["salary_band"] = pd.cut(usd, [0, 80_000, 150_000, 1e9], labels=["low", "mid", "high"]).astype(str)
    df["salary_copy"] = np.where(rng.random(len(df)) < 0.7, usd, rng.normal(1e5, 1e4, len(df)))
    found = leaks(run(df, "salary_in_usd", "regression"))
    assert found == {"salary_eur": "leakage_predictor", "salary_band": "leakage_bands",
                     "salary_copy": "leakage_copy"}
    assert leaks(run(salaries, "salary_in_usd", "regression")) == {"salary": "leakage_copy"}


def test_a_column_recorded_with_the_outcome(churn: pd.DataFrame) -> None:
    df = churn.copy()
    unknown = rng.random(len(df)) < 0.1
    df.loc[unknown, "churn"] = None
    df["closed_on"] = np.where(unknown, None, "2024-06-30")
    f = run(df, "churn", "binary")
    assert leaks(f) == {"closed_on": "leakage_filled_when_known"}
    assert "missing_target" in checks(f)


def test_a_strong_honest_feature_is_not_leakage() -> None:
    """Like `odor` in the mushroom data: right 97% of the time on its own, but not always."""
    n = 4000
    y = rng.choice(["edible", "poisonous"], n)
    smell = np.where(y == "edible", rng.choice(["none", "almond", "anise"], n), rng.choice(["foul", "fishy"], n))
    wrong = rng.random(n) < 0.03
    smell[wrong] = "none"
    df = pd.DataFrame({"smell": smell, "cap": rng.choice(list("xyz"), n), "y": y})
    f = run(df, "y", "binary")
    assert leaks(f) == {}


def test_a_perfect_predictor_on_few_rows_is_a_warning_not_a_verdict() -> None:
    n = 60
    y = rng.choice(["a", "b"], n)
    df = pd.DataFrame({"x": rng.normal(size=n), "mirror": np.where(y == "a", "A", "B"), "y": y})
    f = [x for x in run(df, "y", "binary") if x.column == "mirror"]
    assert [(x.check, x.severity, x.action) for x in f] == [("leakage_predictor", "warning", "none")]


def test_the_plan_drops_leaks_unless_kept(churn: pd.DataFrame) -> None:
    df = churn.copy()
    df["status_text"] = df["churn"].map({"yes": "left", "no": "stayed"})
    schema = infer_schema(df, "churn")
    findings = audit(df, schema, task_kind="binary")
    plan = fit_cleaning_plan(df, schema, findings=findings)
    assert "status_text" not in plan.feature_columns
    assert plan.dropped_columns["status_text"].startswith("target leakage:")
    kept = fit_cleaning_plan(df, schema, findings=findings, keep=["status_text"])
    assert "status_text" in kept.feature_columns
    dropped = fit_cleaning_plan(df, schema, findings=findings, drop={"age": "dropped by the user (--drop)"})
    assert "age" not in dropped.feature_columns and "status_text" not in dropped.feature_columns


# -- from the command line -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def leaky_csv(tmp_path_factory: pytest.TempPathFactory, churn: pd.DataFrame) -> Path:
    df = churn.copy()
    df["status_text"] = df["churn"].map({"yes": "left", "no": "stayed"})
    p = tmp_path_factory.mktemp("leaky") / "leaky.csv"
    df.to_csv(p, index=False)
    return p


def test_audit_command(leaky_csv: Path) -> None:
    base = ["audit", str(leaky_csv), "--target", "churn"]
    r, as_json, fail_on, bad_fail_on = run_clis(  # side by side, each its own process
        base, [*base, "--json"], [*base, "--fail-on", "error"], [*base, "--fail-on", "fatal"])
    assert r.returncode == 0, r.stderr
    assert "status_text" in r.stdout and "error" in r.stdout and "Training would leave out" in r.stdout
    rows = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert {"check": "leakage_predictor", "column": "status_text"}.items() <= rows[0].items()
    assert fail_on.returncode == 1
    assert bad_fail_on.returncode == 2 and "--fail-on" in bad_fail_on.stderr


def test_train_says_what_it_found_and_dropped(leaky_csv: Path, tmp_path: Path) -> None:
    import mlengineer

    out = tmp_path / "m"
    r = run_cli("train", str(leaky_csv), "--target", "churn", "--time-budget", "4", "--no-track", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Data audit" in r.stdout and "status_text" in r.stdout and "column dropped" in r.stdout
    model = mlengineer.load(out)
    assert "status_text" not in model.feature_names
    assert any(f["column"] == "status_text" and f["check"] == "leakage_predictor" for f in model.metadata["findings"])
    # predicting without the leaky column works: the model never needed it
    rows = pd.read_csv(leaky_csv).drop(columns=["churn", "status_text"]).head(5)
    assert len(model.predict(rows)) == 5
