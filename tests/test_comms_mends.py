"""Mends from a new user's pass over how mlengineer speaks to a stakeholder: evaluate, compare and the report
count the labels a model answers at its decision threshold; compare names a winner only where its test agrees;
the baseline is a constant a model could know; too few rows are refused; the positive class is named; a report
without data says what its rows are; a calibrated copy has its own name and stays off the run of another model;
the fairness caveat reads values as well as names; the slices' bias says its direction; errors name the file;
the importance figure says what share of the model it speaks for; and the unit may follow the number."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

import mlengineer
from mlengineer.evaluation.compare import compare_models, compare_predictions
from mlengineer.evaluation.evaluate import evaluate, evaluate_predictions
from mlengineer.report.summary import share
from mlengineer.tasks import RegressionTask

from .conftest import run_cli

pytestmark = pytest.mark.long  # make test-long: CI time


def _words(text: str) -> str:
    return " ".join(text.split())


def _unseen(churn_csv: Path, n: int = 300, seed: int = 11) -> pd.DataFrame:
    """Labelled churn rows the model never trained on: training rows whose monthly fee is nudged by a cent."""
    rows = pd.read_csv(churn_csv).dropna(subset=["monthly_fee"]).sample(n, random_state=seed)
    return rows.assign(monthly_fee=rows["monthly_fee"] + 0.01).reset_index(drop=True)


@pytest.fixture(scope="module")
def thresholded(churn_model_dir: Path, churn_csv: Path) -> dict[str, Any]:
    """The churn model twice: as trained, and with a decision threshold below 50% that turns 20 answers to yes."""
    rows = _unseen(churn_csv)
    plain = mlengineer.load(churn_model_dir)
    p = plain.predict_proba(rows.drop(columns=["churn"]))["yes"].to_numpy()
    below = np.sort(p[p < 0.5])
    assert len(below) >= 20
    t = float(below[-20])
    model = mlengineer.load(churn_model_dir)
    model.extras["threshold"] = {"value": t, "rule": "set by the test", "args": {}}
    return {"plain": plain, "model": model, "rows": rows, "t": t}


# -- 1. the labels a model answers ---------------------------------------------------------------------------

def test_evaluate_and_compare_count_the_labels_answered_at_the_threshold(thresholded: dict[str, Any]) -> None:
    model, plain, rows, t = thresholded["model"], thresholded["plain"], thresholded["rows"], thresholded["t"]
    truth = rows["churn"].to_numpy()
    answered = model.predict(rows.drop(columns=["churn"]))
    assert (answered != plain.predict(rows.drop(columns=["churn"]))).sum() == 20
    ev = evaluate(model, rows, n_boot=30)
    before = evaluate(plain, rows, n_boot=30)
    assert ev["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, answered))
    assert ev["metrics"]["accuracy"] != pytest.approx(before["metrics"]["accuracy"])
    assert ev["confusion"]["matrix"] == confusion_matrix(truth, answered, labels=["no", "yes"]).tolist()
    assert ev["decision"] == {"threshold": t} and before["decision"] is None
    for name in ("roc_auc", "log_loss", "brier"):  # probability metrics are the same either way
        assert ev["metrics"][name] == pytest.approx(before["metrics"][name])
    for s in ev["slices"]:
        m = rows["plan"].astype(str).to_numpy() == s["value"]
        assert s["accuracy"] == pytest.approx(np.mean(answered[m] == truth[m])), s["value"]
    # McNemar counts the rows each model answers differently
    r = compare_models(model, plain, rows, metric="accuracy")
    right_a, right_b = answered == truth, plain.predict(rows.drop(columns=["churn"])) == truth
    assert r["detail"].startswith(f"{int((right_a & ~right_b).sum())} rows only")
    assert r["scores"][0] == pytest.approx(accuracy_score(truth, answered)) and r["thresholds"] == [t, None]


def test_the_report_speaks_of_the_labels_answered_and_names_the_positive_class(thresholded: dict[str, Any]) -> None:
    from mlengineer.report.html import render_report

    model, rows = thresholded["model"], thresholded["rows"]
    accuracy = accuracy_score(rows["churn"], model.predict(rows.drop(columns=["churn"])))
    page = render_report(model, rows, n_boot=20)
    assert f"It is right <b>{share(accuracy)}</b> of the time, answering yes from a probability of" in page
    assert "count the labels the model answers at its decision threshold" in page
    assert "threshold on P(yes)" in page and "Catching yes cases against false alarms" in page
    assert "precision of yes" in page and "probability of yes:" in page  # the PR axis, the threshold line


# -- 2. compare's test agrees with its metric ----------------------------------------------------------------

def test_compare_on_mae_names_no_winner_a_test_of_the_median_would() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.normal(10, 3, n)
    sign = rng.choice([-1, 1], n)
    error_a = np.where(np.arange(n) < 380, 0.9, 0.9 + (1.01 * n - 0.9 * n) / 20)  # better on 95% of rows
    r = compare_predictions(RegressionTask(), y, y + sign * error_a, y + sign * 1.0, names=("A", "B"), metric="mae")
    assert r["scores"][0] > r["scores"][1] and r["test"] == "paired t-test"
    assert not r["significant"] and r["verdict"].startswith("No significant difference")
    # a real gap in the mean is still found, in its direction
    r = compare_predictions(RegressionTask(), y, y + rng.normal(0, 0.5, n), y + rng.normal(0, 1.0, n),
                            names=("sharp", "blurry"), metric="mae")
    assert r["significant"] and r["verdict"].startswith("sharp is significantly better")


def test_a_verdict_names_no_winner_against_the_tests_own_direction() -> None:
    from mlengineer.evaluation.compare import _verdict

    result = {"scores": [1.2, 1.0], "greater_is_better": False, "metric": "mae", "rows": 400, "p_value": 1e-9,
              "significant": True, "test": "some test", "favours": 1}  # the test favours A, the MAE favours B
    assert _verdict(result, ("A", "B"), 0.05).startswith("No significant difference in mae")
    assert _verdict({**result, "favours": -1}, ("A", "B"), 0.05).startswith("B is significantly better")


# -- 3. the constant baseline --------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::UserWarning:sklearn")  # balanced accuracy of rows of one class
def test_the_baseline_is_a_constant_learned_from_training_rows(churn_model_dir: Path, churn_csv: Path,
                                                                salary_model_dir: Path, salaries_csv: Path) -> None:
    model = mlengineer.load(churn_model_dir)
    rows = _unseen(churn_csv)
    only_no = rows.loc[rows["churn"] == "no"].head(12)
    ev = evaluate(model, only_no, n_boot=10)
    share_no = float(np.mean(model.validation["y"] == 0))
    assert ev["baseline"]["log_loss"] == pytest.approx(-np.log(share_no))  # not 0: it did not know these rows
    assert ev["baseline"]["log_loss"] == pytest.approx(
        compare_models(model, "baseline", only_no, metric="log_loss", n_boot=20)["scores"][1])
    assert "validated on at training" in ev["baseline_from"]
    salary = mlengineer.load(salary_model_dir)
    sample = pd.read_csv(salaries_csv).sample(200, random_state=2)
    ev = evaluate(salary, sample, n_boot=10, slices=False)
    y, fit = sample["salary_in_usd"].to_numpy(float), salary.validation["y"]
    assert ev["baseline"]["mae"] == pytest.approx(np.mean(np.abs(y - np.median(fit))))
    assert ev["baseline"]["rmse"] == pytest.approx(np.sqrt(np.mean((y - np.mean(fit)) ** 2)))
    assert ev["baseline"]["mae"] == pytest.approx(
        compare_models(salary, "baseline", sample, metric="mae", n_boot=20)["scores"][1])
    # without training rows, the old constant of the rows themselves, said so
    bare = evaluate_predictions(RegressionTask(), y, y + 1.0, n_boot=10)
    assert bare["baseline"]["rmse"] == pytest.approx(np.std(y)) and "these rows themselves" in bare["baseline_from"]


# -- 4. too few rows -----------------------------------------------------------------------------------------

def test_evaluate_and_report_refuse_fewer_than_ten_labelled_rows(salary_model_dir: Path, salaries_csv: Path,
                                                                 tmp_path: Path) -> None:
    nine, one = tmp_path / "nine.csv", tmp_path / "one.csv"
    rows = pd.read_csv(salaries_csv)
    rows.head(9).to_csv(nine, index=False)
    rows.head(1).to_csv(one, index=False)
    r = run_cli("evaluate", str(salary_model_dir), str(nine))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{nine}: Only 9 labelled rows" in _words(r.stderr) and "at least 10" in r.stderr
    r = run_cli("report", str(salary_model_dir), "--data", str(one), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 2 and f"{one}: Only 1 labelled row " in _words(r.stderr), r.stderr
    assert "1 rows" not in r.stderr and not (tmp_path / "r.html").exists()


def test_no_interval_is_said_as_dash_to_dash() -> None:
    from mlengineer.report.summary import summary_sentences

    model = SimpleNamespace(target="price", metadata={}, classes=[], task=SimpleNamespace(kind="regression"))
    ev = {"task": "regression", "n_rows": 12, "metrics": {"mae": 3.0, "r2": 0.4},
          "intervals": {"r2": [float("nan"), float("nan")]}, "baseline": {"mae": 5.0}, "errors": {"median_absolute": 2}}
    text = " ".join(summary_sentences(model, ev, rows_on="rows"))
    assert "R&sup2; 0.40)" in text and "- to -" not in text


# -- 5 and 7. calibrate names the positive class, and its copy ----------------------------------------------

def test_calibrate_names_the_positive_class_and_its_copy_after_its_folder(churn_model_dir: Path, churn_csv: Path,
                                                                         tracking_uri: str, tmp_path: Path) -> None:
    held = tmp_path / "held.csv"
    _unseen(churn_csv, seed=12).to_csv(held, index=False)
    copy = tmp_path / "churn-costly"
    r = run_cli("calibrate", str(churn_model_dir), "--data", str(held), "--cost-fp", "5", "--cost-fn", "1",
                "--out", str(copy))
    assert r.returncode == 0, r.stderr
    said = _words(r.stdout)
    assert "on the probability of yes (the positive class)" in said and "of yes on those rows" in said
    assert "a false positive is yes answered for a no row" in said
    assert "positive class" in _words(run_cli("calibrate", "--help").stdout)
    calibrated = mlengineer.load(copy)
    assert calibrated.name == "churn-costly" and mlengineer.load(churn_model_dir).name == "churn-model"
    r = run_cli("report", str(copy), "--out", str(tmp_path / "costly.html"), "--tracking-uri", tracking_uri)
    assert r.returncode == 0, r.stderr
    assert "not attached to run" in _words(r.stdout) and "'mlengineer calibrate' changed this model" in _words(r.stdout)
    assert "<h1>churn-costly: model report</h1>" in (tmp_path / "costly.html").read_text()
    from mlengineer.report.html import attach_to_run, unattached_why

    assert attach_to_run(calibrated, tmp_path / "costly.html", tracking_uri=tracking_uri) is None
    assert unattached_why(mlengineer.load(churn_model_dir)) is None


# -- 6. a report without data --------------------------------------------------------------------------------

def test_a_report_without_data_says_what_its_rows_are(churn_model_dir: Path) -> None:
    from mlengineer.report.html import build_context

    model = mlengineer.load(churn_model_dir)
    context = build_context(model, n_boot=20)
    n = len(model.validation["y"])
    summary = " ".join(context["summary"])
    assert "kept apart from training" not in summary
    if "cross-validation" in model.metadata["split"]:
        assert f"On {n:,} training rows (out-of-fold predictions" in summary
    assert "held the true answer for" not in summary  # the sets were fitted on these rows
    assert "should hold the true answer for 9 rows in 10" in summary


# -- 8. personal characteristics -----------------------------------------------------------------------------

def test_the_fairness_caveat_reads_names_and_values() -> None:
    from mlengineer.report.summary import sensitive_columns

    def col(name: str, dtype: str, categories: list[str] | None = None) -> SimpleNamespace:
        return SimpleNamespace(name=name, dtype=dtype, categories=categories)

    columns = [col("residence_since", "float64", ["4", "2"]), col("status", "str", ["male single", "female div"]),
               col("foreign_worker", "str", ["yes", "no"]), col("employee_residence", "str", ["US", "GB"]),
               col("age", "float64"), col("purpose", "str", ["radio/tv", "new car"]),
               col("personal_status", "str", ["a", "b"])]
    found = sensitive_columns(columns, [c.name for c in columns])
    assert found == ["status (values such as 'male single')", "foreign_worker", "employee_residence", "age",
                     "personal_status"]


# -- 9 and 12. the slices' bias in words, the unit after the number ------------------------------------------

def test_slices_say_which_way_the_estimates_miss_and_the_unit_may_follow_the_number(
        salary_model_dir: Path, salaries_csv: Path) -> None:
    from mlengineer.evaluation.slices import slice_metrics
    from mlengineer.report.html import render_report
    from mlengineer.report.plots import compact, residuals_svg
    from mlengineer.report.summary import number_formatter

    y = np.arange(60, dtype=float)
    group = np.repeat(["high", "low"], 30)
    out = {s["value"]: s["bias"] for s in slice_metrics(pd.DataFrame({"g": group}), ["g"], "regression", y,
                                                        y + np.where(group == "high", 2.0, -3.0)
                                                        + np.tile([0.5, -0.5], 30))}
    assert out == {"high": pytest.approx(2.0), "low": pytest.approx(-3.0)}  # estimate - actual
    assert "predicted - actual (above 0: too high)" in residuals_svg([1.0, 2.0], [1.5, 2.5], fmt=str)
    rings, dollars = number_formatter(" rings"), number_formatter("$")
    assert (rings(1.45), number_formatter("rings")(-2.0), number_formatter("°C")(21.5)) == (
        "1.45 rings", "-2 rings", "21.5°C")
    assert (dollars(1234.0), compact(dollars)(150_000.0), compact(rings)(50.0)) == ("$1,234", "$150k", "50 rings")
    model = mlengineer.load(salary_model_dir)
    rows = pd.read_csv(salaries_csv).sample(400, random_state=3)
    page = _words(render_report(model, rows, n_boot=20, unit=" dollars"))
    assert re.search(r"off by <b>[\d,.]+ dollars</b> on average", page) and "dollars 1" not in page
    assert "on average, its estimates are" in page and re.search(r"[\d,.]+ dollars too (high|low)</td>", page)
    assert "too high where the model over-estimates" in page
    r = run_cli("report", "--help")
    assert "1.45 rings" in _words(r.stdout)


# -- 10. messages that name the file -------------------------------------------------------------------------

def test_a_text_target_and_a_new_label_are_refused_naming_the_file(salary_model_dir: Path, salaries_csv: Path,
                                                                    churn_model_dir: Path, churn_csv: Path,
                                                                    tmp_path: Path) -> None:
    rows = pd.read_csv(salaries_csv).head(40).astype({"salary_in_usd": object})
    rows.loc[3, "salary_in_usd"] = "lots"
    text = tmp_path / "text.csv"
    rows.to_csv(text, index=False)
    r = run_cli("evaluate", str(salary_model_dir), str(text))
    assert r.returncode == 2 and "--task" not in r.stderr, r.stderr
    assert f"{text}: The target 'salary_in_usd' holds text such as 'lots' (row 4)" in _words(r.stderr)
    labels = pd.read_csv(churn_csv).head(40)
    labels.loc[:4, "churn"] = "maybe"
    new = tmp_path / "new.csv"
    labels.to_csv(new, index=False)
    r = run_cli("report", str(churn_model_dir), "--data", str(new), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 2 and f"error: {new}: The target holds the label 'maybe'" in _words(r.stderr), r.stderr


# -- 11. the importance figure speaks for a share of the model -----------------------------------------------

def test_the_importance_caption_gives_the_share_and_the_real_reason() -> None:
    from mlengineer.report.explained import importance_caption, left_out_members

    exact = SimpleNamespace(family="catboost", explained_exactly=True)
    net = SimpleNamespace(family="mlp", explained_exactly=False)
    logged = SimpleNamespace(family="lightgbm", explained_exactly=False, params={"target_transform": "log"})
    model = SimpleNamespace(
        predictor=SimpleNamespace(members=[("catboost_1", exact, 0.6), ("mlp_1", net, 0.3), ("lightgbm_2", logged, 0.1)]),
        metadata={"importance_method": "mean |SHAP| on training rows (without mlp_1, lightgbm_2: too slow to explain)"})
    assert [(n, round(w, 3)) for n, w, _ in left_out_members(model)] == [("mlp_1", 0.3), ("lightgbm_2", 0.1)]
    caption = importance_caption(model)
    assert "catboost_1, the member that carries 60% of the model's weight" in caption
    assert "lightgbm_2 (10% of the weight: a lightgbm model of the log of the target" in caption
    assert "mlp_1 (30% of the weight: a neural network" in caption and "too slow" not in caption
