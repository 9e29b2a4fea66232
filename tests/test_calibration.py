"""Calibration: probabilities that mean what they say, chosen only when they help; and decision thresholds
chosen by cost or by a target precision or recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlengineer.errors import ConfigError
from mlengineer.evaluation.calibration import (
    PlattCalibrator,
    TemperatureCalibrator,
    describe,
    expected_calibration_error,
    fit_calibrator,
)
from mlengineer.evaluation.threshold import choose_threshold

from .conftest import run_cli


def _overconfident(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A model whose log-odds are twice what they should be."""
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-2 * z))
    return y, np.column_stack([1 - p, p])


def test_auto_calibration_fixes_an_overconfident_model_without_reordering_rows() -> None:
    rng = np.random.default_rng(0)
    y_cal, p_cal = _overconfident(3000, rng)
    y, p = _overconfident(20_000, rng)
    cal = fit_calibrator(y_cal, p_cal)
    assert cal is not None
    after = cal.transform(p)
    assert expected_calibration_error(y, p) > 0.05
    assert expected_calibration_error(y, after) < 0.02
    assert roc_auc_score(y, after[:, 1]) == pytest.approx(roc_auc_score(y, p[:, 1]), abs=1e-12)
    np.testing.assert_allclose(after.sum(axis=1), 1.0)


def test_auto_calibration_leaves_a_calibrated_model_alone() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, 3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-z))
    assert fit_calibrator(y, np.column_stack([1 - p, p])) is None


def test_the_sweep_ece_does_not_mistake_chance_for_miscalibration() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 1500)
    y = (rng.random(1500) < p).astype(int)
    proba = np.column_stack([1 - p, p])
    # fifteen equal-width bins see about 0.03 of error in a perfectly calibrated model on 1,500 rows
    assert expected_calibration_error(y, proba) < expected_calibration_error(y, proba, bins=15)
    assert expected_calibration_error(y, proba) < 0.03


def test_temperature_scaling_keeps_the_predicted_class() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (2000, 5))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(5, p=np.exp(r / 3) / np.exp(r / 3).sum()) for r in logits])
    cal = TemperatureCalibrator().fit(y, p)
    assert cal.temperature_ > 1.5  # the probabilities were too sharp
    np.testing.assert_array_equal(cal.transform(p).argmax(axis=1), p.argmax(axis=1))


def test_platt_is_strictly_increasing() -> None:
    rng = np.random.default_rng(4)
    y, p = _overconfident(500, rng)
    cal = PlattCalibrator().fit(y, p)
    grid = np.linspace(0.001, 0.999, 200)
    out = cal.transform(np.column_stack([1 - grid, grid]))[:, 1]
    assert (np.diff(out) > 0).all()


def test_thresholds_by_target_precision_recall_and_cost() -> None:
    rng = np.random.default_rng(5)
    y, p = _overconfident(4000, rng)
    p1 = p[:, 1]
    t = choose_threshold(y, p1, target_precision=0.9)
    flag = p1 >= t["value"]
    assert (y[flag] == 1).mean() >= 0.9
    t = choose_threshold(y, p1, target_recall=0.95)
    assert (p1[y == 1] >= t["value"]).mean() >= 0.95
    cheap_misses = choose_threshold(y, p1, cost_fp=10, cost_fn=1)["value"]
    costly_misses = choose_threshold(y, p1, cost_fp=1, cost_fn=10)["value"]
    assert costly_misses < cheap_misses
    with pytest.raises(ConfigError, match="one rule"):
        choose_threshold(y, p1, target_precision=0.9, target_recall=0.9)
    with pytest.raises(ConfigError, match="target-precision"):
        choose_threshold(y, p1, target_precision=1.5)


@pytest.mark.slow
def test_calibrate_command_sets_a_threshold_that_predict_follows(tmp_path: Path, churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv)
    held = df.sample(250, random_state=0)
    train_path, held_path = tmp_path / "train.csv", tmp_path / "held.csv"
    df.drop(index=held.index).to_csv(train_path, index=False)
    held.to_csv(held_path, index=False)
    model_dir = tmp_path / "m"
    import mlengineer

    # trained in process (the train command has tests of its own); the commands under test run as a user's would
    mlengineer.train(train_path, "churn", time_budget=5, out=model_dir, track=False)
    r = run_cli("calibrate", str(model_dir), "--data", str(held_path), "--target-recall", "0.9")
    assert r.returncode == 0, r.stderr
    assert "250 held-out rows" in r.stdout and "Decision threshold" in r.stdout
    model = mlengineer.load(model_dir)
    t = model.extras["threshold"]["value"]
    frame = model.predict_frame(held.drop(columns=["churn"]))
    np.testing.assert_array_equal(frame["prediction"] == "yes", frame["proba_yes"] >= t)
    caught = (frame["prediction"][held["churn"].to_numpy() == "yes"] == "yes").mean()
    assert caught >= 0.9  # on the rows it was chosen on
    r = run_cli("evaluate", str(model_dir), str(held_path))
    assert r.returncode == 0, r.stderr
    assert "Decision threshold" in r.stdout and "calibration error" in r.stdout
    # calibrated again without a rule: the threshold is chosen again by its own rule on the new probabilities
    from mlengineer.evaluation.uncertainty import recalibrate

    for method in ("none", "platt"):
        summary = recalibrate(model, held, method=method)
        again = model.extras["threshold"]
        assert summary["threshold_again"] and again["args"] == {"target_recall": 0.9} and again["recall"] >= 0.9
        frame = model.predict_frame(held.drop(columns=["churn"]))
        assert (frame["prediction"][held["churn"].to_numpy() == "yes"] == "yes").mean() >= 0.9
    del model.extras["threshold"]["args"]  # as an older bundle kept it: no rule to apply again
    summary = recalibrate(model, held, method="none")
    assert summary["threshold_removed"] and "threshold" not in model.extras and "threshold" not in model.metadata


def test_calibrate_refuses_a_threshold_rule_it_cannot_meet_in_one_line(churn_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(churn_model_dir, copy)
    r = run_cli("calibrate", str(copy), "--target-precision", "2")
    assert r.returncode == 2
    assert "--target-precision" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _all_right(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A model right on every one of ``n`` rows, mostly sure of it: nothing on these rows says how far to
    trust it beyond them."""
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.uniform(4, 9, n)
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic"])
def test_a_calibrator_sharpens_no_further_than_the_rows_wrong_answers_allow(method: str) -> None:
    """With no wrong answer among 1,000 rows a fit by likelihood would sharpen without end (a temperature at
    its bound of 0.05); the rule of succession leaves the rows expecting at least 1/1,002 wrong answers, and a
    new row the model is unsure of (35% on its class) keeps a probability near what the model gave."""
    rng = np.random.default_rng(6)
    k = 2 if method != "temperature" else 4
    y, p = _all_right(1000, k, rng)
    cal = fit_calibrator(y, p, method=method)
    after = cal.transform(p)
    assert np.mean(1 - after.max(axis=1)) >= 1 / 1002 - 1e-9
    assert np.mean(1 - after.max(axis=1)) < np.mean(1 - p.max(axis=1))  # still sharper than the model
    unsure = np.full((1, k), 1e-3)
    unsure[0, :2] = 0.35, 0.65 - (k - 2) * 1e-3
    assert cal.transform(unsure)[0, 0] > 0.1
    assert describe(cal)["method"] == method and 0.0 <= describe(cal)["strength"] < 1.0  # in the metadata
    if method == "temperature":
        np.testing.assert_array_equal(after.argmax(axis=1), p.argmax(axis=1))
        bare = TemperatureCalibrator()  # the temperature as fitted, without the limit
        bare.temperature_ = cal.temperature_
        assert bare.transform(unsure)[0, 0] < 0.1


def test_a_calibrator_within_the_evidence_is_left_as_fitted() -> None:
    """A model with many wrong answers: the fitted map already expects about as many, so the limit does not
    bind (the overconfident model's calibration of the first test is unchanged)."""
    rng = np.random.default_rng(0)
    y, p = _overconfident(3000, rng)
    assert PlattCalibrator().fit(y, p).strength_ == 1.0
    logits = rng.normal(0, 3, (2000, 5))
    q = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    yq = np.array([rng.choice(5, p=np.exp(r / 3) / np.exp(r / 3).sum()) for r in logits])
    assert TemperatureCalibrator().fit(yq, q).strength_ == 1.0
