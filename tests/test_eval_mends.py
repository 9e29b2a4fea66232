"""Mends from a new user's pass over evaluate, calibrate, compare and the report: evaluate says when its rows
are rows the model trained on, evaluate and the report say when they are the rows calibrate was fitted on,
calibrate's "before" is the model as it was, the report's sentence on what matters speaks for the whole model,
compare prints its interval once, evaluate's baseline scores every metric a constant answer can have, and the
report's leaderboard shows each candidate's target_transform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlengineer

from .conftest import FIXTURES, run_cli


def _words(text: str) -> str:
    """Printed text with its line breaks (the terminal's wrapping) as single spaces."""
    return " ".join(text.split())


def _unseen(churn_csv: Path, tmp_path: Path, name: str, *, seed: int, nudge: float) -> Path:
    """Labelled churn rows the model never trained on: training rows whose monthly fee is nudged by a cent or two."""
    rows = pd.read_csv(churn_csv).dropna(subset=["monthly_fee"]).sample(300, random_state=seed)
    path = tmp_path / name
    rows.assign(monthly_fee=rows["monthly_fee"] + nudge).to_csv(path, index=False)
    return path


def _evaluate_json(*args: str) -> dict[str, Any]:
    r = run_cli("evaluate", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- 1. evaluate on the rows the model trained on ------------------------------------------------------------

@pytest.mark.long
def test_evaluate_says_when_its_rows_are_rows_the_model_trained_on(churn_model_dir: Path, churn_csv: Path,
                                                                    tmp_path: Path) -> None:
    r = run_cli("evaluate", str(churn_model_dir), str(churn_csv))
    assert r.returncode == 0, r.stderr
    assert "Careful: these are rows the model trained on, so the numbers below flatter it" in _words(r.stdout)
    result = _evaluate_json(str(churn_model_dir), str(churn_csv))
    assert result["trained_rows"] == {"rows": 800, "share": 1.0, "exact": True}
    assert result["warnings"] and "flatter it" in result["warnings"][0]
    assert result["metrics"] and result["calibration_rows"] is None
    fresh = _unseen(churn_csv, tmp_path, "fresh.csv", seed=1, nudge=0.01)
    r = run_cli("evaluate", str(churn_model_dir), str(fresh))
    assert r.returncode == 0, r.stderr
    assert "Careful" not in r.stdout
    assert _evaluate_json(str(churn_model_dir), str(fresh))["warnings"] == []


# -- 2. evaluate and the report on the rows calibrate was fitted on ------------------------------------------

@pytest.mark.long
def test_evaluate_and_the_report_say_when_its_rows_are_the_rows_calibrate_was_fitted_on(
        churn_model_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    from mlengineer.evaluation.seen import calibration_rows
    from mlengineer.report.html import build_context

    held = _unseen(churn_csv, tmp_path, "held.csv", seed=2, nudge=0.01)
    other = _unseen(churn_csv, tmp_path, "other.csv", seed=3, nudge=0.02)
    calibrated = tmp_path / "calibrated"
    r = run_cli("calibrate", str(churn_model_dir), "--data", str(held), "--out", str(calibrated),
                "--target-recall", "0.8")
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", str(calibrated), str(held))
    assert r.returncode == 0, r.stderr
    said = _words(r.stdout)
    assert "Careful: these are the rows that 'mlengineer calibrate' fitted" in said and "decision threshold" in said
    result = _evaluate_json(str(calibrated), str(held))
    assert result["calibration_rows"]["share"] == 1.0 and result["trained_rows"]["rows"] == 0
    assert _evaluate_json(str(calibrated), str(other))["warnings"] == []

    model = mlengineer.load(calibrated)
    context = build_context(model, pd.read_csv(held), n_boot=20)
    assert "'mlengineer calibrate' fitted" in context["summary"][0]
    assert context["rows_on"].endswith("though its calibration was fitted on them")
    assert context["evaluation"]["uncertainty"]["calibrated_here"]
    honest = build_context(model, pd.read_csv(other), n_boot=20)
    assert "calibrate" not in honest["summary"][0] and "calibration was fitted" not in honest["rows_on"]
    # a bundle calibrated before the rows were kept says nothing, as before
    model.extras.pop("calibration_rows")
    assert calibration_rows(model, pd.read_csv(held)) is None
    # calibrated again on its validation rows: the held rows are no longer the calibration rows
    again = tmp_path / "again"
    r = run_cli("calibrate", str(calibrated), "--out", str(again))
    assert r.returncode == 0, r.stderr
    assert "calibration_rows" not in mlengineer.load(again).extras


# -- 3. calibrate's "before" is the model as it was ----------------------------------------------------------

@pytest.mark.long
def test_calibrate_says_the_calibration_error_of_the_model_as_it_was(churn_model_dir: Path, churn_csv: Path,
                                                                      tmp_path: Path) -> None:
    held = _unseen(churn_csv, tmp_path, "held.csv", seed=4, nudge=0.01)
    platt = tmp_path / "platt"
    r = run_cli("calibrate", str(churn_model_dir), "--data", str(held), "--method", "platt", "--out", str(platt))
    assert r.returncode == 0, r.stderr
    cal = _evaluate_json(str(platt), str(held))["calibration"]
    assert cal["method"] == "platt" and f"{cal['ece']:.4f}" != f"{cal['ece_before_calibration']:.4f}"
    r = run_cli("calibrate", str(platt), "--data", str(held), "--method", "isotonic", "--out", str(tmp_path / "iso"))
    assert r.returncode == 0, r.stderr
    # before: what evaluate shows for the model given (its Platt calibrator), not the never-calibrated scores
    assert f"on those rows {cal['ece']:.4f} before" in _words(r.stdout), r.stdout


# -- 4. the report's sentence on what matters ----------------------------------------------------------------

def test_training_records_the_share_of_the_model_its_importance_speaks_for(churn_model_dir: Path) -> None:
    from mlengineer.explain.contributions import is_sampled

    model = mlengineer.load(churn_model_dir)
    members = model.predictor.members
    sampled = [n for n, m, _ in members if is_sampled(m)]
    total = sum(w for _, _, w in members)
    expected = 1.0 if not sampled or len(sampled) == len(members) else sum(
        w for n, _, w in members if n not in sampled) / total
    assert model.metadata["importance_covers"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.long
def test_the_summary_speaks_for_the_whole_model_where_the_explained_members_carry_little_of_it(
        churn_model_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    from mlengineer.report.html import build_context
    from mlengineer.report.summary import importance_covers

    model = mlengineer.load(churn_model_dir)
    rows = pd.read_csv(_unseen(churn_csv, tmp_path, "rows.csv", seed=5, nudge=0.01))

    def said(covers: float, data: pd.DataFrame | None) -> str:
        model.metadata["importance_covers"] = covers
        context = build_context(model, data, n_boot=20)
        return next(s for s in context["summary"] if s.startswith("What matters most"))

    whole = said(1.0, rows)
    assert whole.startswith("What matters most to its predictions: <b>") and "shuffled" not in whole
    # the members explained carry 12% of the weight: the permutation importance on the rows speaks for the model
    shuffled = said(0.12, rows)
    assert "shuffled across these rows" in shuffled
    top = next(iter(build_context(model, rows, n_boot=20)["permutation"]))
    assert f"<b>{top} (" in shuffled
    assert "members of the model that carry 12% of its weight" in said(0.12, None)
    assert "members of the model that carry 70% of its weight" in said(0.7, rows)
    # a bundle from before the share was kept: read off the importance method's words
    meta = {"importance_method": "mean |SHAP| on training rows (without mlp_1, knn_1: too slow to explain)",
            "ensemble": [{"model": "linear_1", "weight": 0.3}, {"model": "mlp_1", "weight": 0.5},
                         {"model": "knn_1", "weight": 0.2}]}
    assert importance_covers(meta) == pytest.approx(0.3)
    assert importance_covers({"importance_method": "mean |SHAP| on training rows"}) == 1.0


# -- 5. compare's interval, evaluate's baseline --------------------------------------------------------------

def test_compare_prints_the_interval_of_the_difference_once(churn_model_dir: Path, churn_csv: Path,
                                                             tmp_path: Path) -> None:
    rows = _unseen(churn_csv, tmp_path, "rows.csv", seed=6, nudge=0.01)
    r = run_cli("compare", str(churn_model_dir), "baseline", "--data", str(rows), "--metric", "roc_auc")
    assert r.returncode == 0, r.stderr
    assert "paired bootstrap" in r.stdout
    assert _words(r.stdout).count("interval") == 1, r.stdout


@pytest.mark.long
def test_evaluates_baseline_scores_the_metrics_compare_scores_a_constant_answer_on(
        churn_model_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    rows = _unseen(churn_csv, tmp_path, "rows.csv", seed=7, nudge=0.01)
    baseline = _evaluate_json(str(churn_model_dir), str(rows))["baseline"]
    for metric in ("f1", "balanced_accuracy"):
        r = run_cli("compare", str(churn_model_dir), "baseline", "--data", str(rows), "--metric", metric, "--json")
        assert r.returncode == 0, r.stderr
        assert baseline[metric] == pytest.approx(json.loads(r.stdout)["scores"][1]), metric
    r = run_cli("evaluate", str(churn_model_dir), str(rows))
    assert r.returncode == 0, r.stderr
    assert not any(line.split("│")[-2].strip() == "-" for line in r.stdout.splitlines() if line.count("│") == 5)


def test_a_multiclass_baseline_scores_f1_macro() -> None:
    from mlengineer.evaluation.evaluate import evaluate_predictions
    from mlengineer.tasks import make_task

    y = np.array([0, 0, 0, 1, 1, 2] * 20)
    task = make_task(pd.Series(y), "multiclass")
    raw = np.eye(3)[y] * 0.7 + 0.1
    result = evaluate_predictions(task, y, raw, n_boot=10)
    # always the most common class: precision 1/2 and recall 1, an F1 of 2/3, for it; 0 for the two others
    assert result["baseline"]["f1_macro"] == pytest.approx((2 / 3) / 3)
    assert result["baseline"]["balanced_accuracy"] == pytest.approx(1 / 3)


# -- 6. the report's leaderboard shows target_transform ------------------------------------------------------

@pytest.mark.long
def test_the_reports_leaderboard_shows_each_candidates_target_transform(tmp_path: Path) -> None:
    from mlengineer.report.html import render_report

    path = tmp_path / "houses.csv"
    pd.read_csv(FIXTURES / "house_prices_300.csv.gz").to_csv(path, index=False)
    model = mlengineer.train(path, "SalePrice", time_budget=8, out=tmp_path / "m", families=["lightgbm"],
                             tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    board = [r for r in model.metadata["leaderboard"] if r["status"] == "ok"][:15]
    transformed = [r["model"] for r in board if r["params"].get("target_transform") == "log"]
    assert transformed, board
    page = render_report(model)
    for name in transformed:
        assert f"<td>{name} (target_transform: log)</td>" in page
    plain = next(r["model"] for r in board if "target_transform" not in r["params"])
    assert f"<td>{plain}</td>" in page

