"""evaluate: metrics with bootstrap intervals, curves, calibration, coverage and the worst slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import mlengineer
from mlengineer.evaluation.evaluate import evaluate
from mlengineer.evaluation.slices import slice_metrics

from .conftest import run_cli


def test_classification_evaluation_has_intervals_curves_and_calibration(churn_model_dir: Path,
                                                                        churn_csv: Path) -> None:
    model = mlengineer.load(churn_model_dir)
    ev = evaluate(model, pd.read_csv(churn_csv), n_boot=100)
    for name, value in ev["metrics"].items():
        lo, hi = ev["intervals"][name]
        assert lo <= value <= hi, name
    assert ev["intervals"]["roc_auc"][1] - ev["intervals"]["roc_auc"][0] > 0
    assert np.sum(ev["confusion"]["matrix"]) == 800
    assert ev["curves"]["roc"]["fpr"][0] == 0 and ev["curves"]["roc"]["tpr"][-1] == 1
    assert 0 <= ev["calibration"]["ece"] <= 1 and "ece_before_calibration" in ev["calibration"]
    assert 0.8 <= ev["uncertainty"]["coverage"] <= 1
    assert {s["column"] for s in ev["slices"]} >= {"plan"}


def test_regression_evaluation_reports_errors_and_range_coverage(salary_model_dir: Path, salaries_csv: Path) -> None:
    model = mlengineer.load(salary_model_dir)
    ev = evaluate(model, pd.read_csv(salaries_csv), n_boot=50)
    assert ev["metrics"]["rmse"] < ev["baseline"]["rmse"]
    assert len(ev["curves"]["residuals"]["predicted"]) == len(ev["curves"]["residuals"]["actual"]) <= 2000
    assert ev["uncertainty"]["median_width"] > 0


def test_a_slice_much_worse_than_the_rest_is_flagged_and_a_fair_one_is_not() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    group = rng.choice(["north", "south", "east"], n)
    y = rng.normal(0, 1, n)
    noise = np.where(group == "east", 3.0, 1.0)
    pred = y + rng.normal(0, 1, n) * noise
    out = slice_metrics(pd.DataFrame({"region": group}), ["region"], "regression", y, pred)
    flagged = {s["value"] for s in out if s["flagged"]}
    assert flagged == {"east"}


def test_evaluate_command_prints_intervals_baseline_and_slices(churn_model_dir: Path, churn_csv: Path) -> None:
    r = run_cli("evaluate", str(churn_model_dir), str(churn_csv))
    assert r.returncode == 0, r.stderr
    assert "95% interval" in r.stdout and "constant baseline" in r.stdout
    assert "prediction sets held the true label" in r.stdout
    assert "Slices" in r.stdout or "No slice" in r.stdout
