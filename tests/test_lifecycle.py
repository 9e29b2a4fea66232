"""The whole lifecycle through the real CLI: train, predict, evaluate, report, runs; and the bundle in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from .conftest import read_any, run_cli

pytestmark = pytest.mark.slow


def test_train_saves_a_bundle_that_mlflow_loads(tmp_path: Path, churn_csv: Path, tracking_uri: str) -> None:
    out = tmp_path / "m"
    r = run_cli("train", str(churn_csv), "--target", "churn", "--time-budget", "6", "--out", str(out),
                "--tracking-uri", tracking_uri)
    assert r.returncode == 0, r.stderr
    assert "Leaderboard" in r.stdout and "lightgbm" in r.stdout
    assert "binary" in r.stdout
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(out))
    rows = pd.read_csv(churn_csv).drop(columns=["churn"]).head(5)
    pred = pyfunc.predict(rows)
    assert list(pred.columns) == ["prediction", "proba_no", "proba_yes"]
    assert set(pred["prediction"]) <= {"yes", "no"}
    assert ((pred["proba_no"] + pred["proba_yes"] - 1).abs() < 1e-6).all()
    meta = json.loads((out / "artifacts" / "bundle" / "metadata.json").read_text())
    # the identifier is not a feature, the date is
    assert "customer_id" not in meta["feature_importance"]
    assert meta["run_id"]
    assert meta["data_fingerprint"]["rows"] == 800


@pytest.mark.long
def test_train_respects_the_time_budget_roughly(tmp_path: Path, churn_csv: Path) -> None:
    import time

    start = time.perf_counter()
    r = run_cli("train", str(churn_csv), "--target", "churn", "--time-budget", "5", "--out", str(tmp_path / "m"),
                "--no-track")
    assert r.returncode == 0, r.stderr
    # process start and imports come on top of the budget; this only guards against ignoring it
    assert time.perf_counter() - start < 5 * 3 + 15


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_keeps_row_order_and_count(tmp_path: Path, churn_model_dir: Path, churn_csv: Path, suffix: str) -> None:
    out = tmp_path / f"pred{suffix}"
    data = pd.read_csv(churn_csv).drop(columns=["churn"]).iloc[::-1]  # reversed: order must follow the input
    src = tmp_path / "rows.csv"
    data.to_csv(src, index=False)
    r = run_cli("predict", str(churn_model_dir), str(src), "--out", str(out))
    assert r.returncode == 0, r.stderr
    pred = read_any(out)
    assert len(pred) == len(data)
    import mlengineer

    expected = mlengineer.load(churn_model_dir).predict_frame(data.reset_index(drop=True))
    pd.testing.assert_series_equal(pred["proba_yes"], expected["proba_yes"], check_exact=False, rtol=1e-6,
                                   check_names=False)


def test_evaluate_prints_metrics(churn_model_dir: Path, churn_csv: Path) -> None:
    r = run_cli("evaluate", str(churn_model_dir), str(churn_csv))
    assert r.returncode == 0, r.stderr
    assert "roc_auc" in r.stdout and "accuracy" in r.stdout


def test_regression_interval_columns(salary_model_dir: Path, salaries_csv: Path) -> None:
    import mlengineer

    model = mlengineer.load(salary_model_dir)
    df = pd.read_csv(salaries_csv)
    frame = model.predict_frame(df.drop(columns=["salary_in_usd"]), interval=0.9)
    assert {"prediction", "lower", "upper"} <= set(frame.columns)
    assert (frame["lower"] <= frame["prediction"]).all() and (frame["prediction"] <= frame["upper"]).all()
    # the leaky columns were dropped and are not needed at prediction time
    assert "salary" not in model.feature_names and "salary_currency" not in model.feature_names
    model.predict(df.drop(columns=["salary_in_usd", "salary", "salary_currency"]).head(3))


def test_runs_lists_the_recorded_runs(churn_model_dir: Path, tracking_uri: str) -> None:
    r = run_cli("runs", "--tracking-uri", tracking_uri)
    assert r.returncode == 0, r.stderr
    assert "churn" in r.stdout and "roc_auc" in r.stdout


def test_nested_candidate_runs_are_recorded(churn_model_dir: Path, tracking_uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    meta = json.loads((churn_model_dir / "artifacts" / "bundle" / "metadata.json").read_text())
    client = mlflow.MlflowClient()
    parent = client.get_run(meta["run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{meta['run_id']}'")
    tried = [r for r in meta["leaderboard"] if r["model"] != "ensemble"]
    assert len(children) == len(tried) >= 2


def test_report_is_self_contained(tmp_path: Path, churn_model_dir: Path, churn_csv: Path) -> None:
    out = tmp_path / "report.html"
    r = run_cli("report", str(churn_model_dir), "--data", str(churn_csv), "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "<svg" in html and "Leaderboard" in html
    import re

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//""", html)
