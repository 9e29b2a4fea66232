"""compare: two models on the same labelled rows, a paired test that fits the metric, and a plain verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlengineer.evaluation.compare import compare_predictions
from mlengineer.tasks import BinaryTask, RegressionTask

from .conftest import run_cli, run_clis


def test_identical_models_are_not_significantly_different(churn_model_dir: Path, churn_csv: Path) -> None:
    r = run_cli("compare", str(churn_model_dir), str(churn_model_dir), "--data", str(churn_csv), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["significant"] is False and result["p_value"] == 1.0
    assert result["verdict"].startswith("No difference")


@pytest.mark.slow
def test_a_model_beats_a_saved_constant_baseline(tmp_path: Path, churn_model_dir: Path, churn_csv: Path) -> None:
    import mlengineer
    from mlengineer.evaluation.compare import constant_model

    const_dir = constant_model(mlengineer.load(churn_model_dir)).save(tmp_path / "constant")
    # the saved constant, and the built-in baseline on the other side: side by side, each its own process
    r, built_in = run_clis(["compare", str(churn_model_dir), str(const_dir), "--data", str(churn_csv)],
                           ["compare", "baseline", str(churn_model_dir), "--data", str(churn_csv), "--json"])
    assert r.returncode == 0, r.stderr
    assert "is significantly better than" in r.stdout and "paired bootstrap" in r.stdout
    # the built-in baseline says the same, whichever side it is on
    r = built_in
    result = json.loads(r.stdout)
    assert result["significant"] is True and result["p_value"] < 0.01
    assert result["scores"][1] > result["scores"][0]  # roc_auc: B (the model) is higher


def test_the_test_fits_the_metric() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    good = np.clip(y * 0.6 + 0.2 + rng.normal(0, 0.15, 600), 0.01, 0.99)
    weak = np.clip(y * 0.2 + 0.4 + rng.normal(0, 0.25, 600), 0.01, 0.99)
    a, b = np.column_stack([1 - good, good]), np.column_stack([1 - weak, weak])
    r = compare_predictions(BinaryTask(["no", "yes"]), y, a, b, metric="accuracy")
    assert r["test"] == "McNemar's exact test" and r["significant"]
    yr = rng.normal(0, 1, 500)
    r = compare_predictions(RegressionTask(), yr, yr + rng.normal(0, 0.5, 500), yr + rng.normal(0, 1.0, 500),
                            metric="mae", names=("sharp", "blurry"))
    assert r["test"] == "paired t-test" and r["verdict"].startswith("sharp is significantly better")
    noise = yr + rng.normal(0, 1.0, 500)
    r = compare_predictions(RegressionTask(), yr, noise, noise + rng.normal(0, 0.01, 500), metric="rmse")
    assert r["test"].startswith("paired bootstrap") and not r["significant"]
    assert r["verdict"].startswith("No significant difference")


@pytest.mark.long
def test_compare_names_what_is_wrong_in_one_line(churn_model_dir: Path, salary_model_dir: Path,
                                                 churn_csv: Path) -> None:
    r = run_cli("compare", str(churn_model_dir), str(salary_model_dir), "--data", str(churn_csv))
    assert r.returncode == 2 and "different things" in r.stderr
    r = run_cli("compare", str(churn_model_dir), "no-such-model", "--data", str(churn_csv))
    assert r.returncode == 2 and "neither a model bundle folder nor an MLflow run id" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_compare_takes_mlflow_run_ids(churn_model_dir: Path, churn_csv: Path, tracking_uri: str) -> None:
    meta = json.loads((churn_model_dir / "artifacts" / "bundle" / "metadata.json").read_text())
    r = run_cli("compare", meta["run_id"], str(churn_model_dir), "--data", str(churn_csv), "--tracking-uri",
                tracking_uri, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["p_value"] == 1.0
