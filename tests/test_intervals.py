"""Conformal ranges and sets: they hold the truth as often as promised, adapt to how hard a row is, and
reach the user through predict --interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.errors import ConfigError, ModelError
from mlengineer.evaluation.intervals import ConformalClassifier, ConformalRegressor, conformal_quantile

from .conftest import run_cli


def _skewed(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and truths whose errors grow with the predicted level, like salaries."""
    pred = rng.uniform(30_000, 300_000, n)
    y = pred * np.exp(rng.normal(0, 0.25, n))
    return y, pred


def test_regression_intervals_cover_as_promised_and_adapt_to_the_level() -> None:
    rng = np.random.default_rng(0)
    y_cal, p_cal = _skewed(3000, rng)
    y, p = _skewed(20_000, rng)
    conf = ConformalRegressor().fit(y_cal, p_cal)
    lower, upper = conf.bounds(p, 0.9)
    inside = (y >= lower) & (y <= upper)
    assert 0.88 <= inside.mean() <= 0.92
    # a constant-width range misses the high end; the adaptive one keeps its promise there too
    q = conformal_quantile(np.abs(y_cal - p_cal), 0.9)
    top = p >= np.quantile(p, 0.9)
    assert inside[top].mean() >= 0.85
    assert (np.abs(y - p) <= q)[top].mean() < 0.8
    width = upper - lower
    assert width[p < 60_000].mean() < 0.4 * width[p > 250_000].mean()
    # ranges are asymmetric where errors are (a log-normal error is longer above than below)
    assert (upper - p)[top].mean() > (p - lower)[top].mean()


def test_wider_coverage_gives_wider_ranges_and_a_nonnegative_target_no_negative_bound() -> None:
    rng = np.random.default_rng(1)
    y_cal, p_cal = _skewed(2000, rng)
    conf = ConformalRegressor().fit(y_cal, p_cal)
    p = np.array([40_000.0, 100_000.0, 250_000.0])
    lo50, hi50 = conf.bounds(p, 0.5)
    lo90, hi90 = conf.bounds(p, 0.9)
    assert (lo90 <= lo50).all() and (hi90 >= hi50).all()
    assert (lo90 >= 0).all()


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, "ninety"])
def test_a_coverage_out_of_range_names_itself(bad: object) -> None:
    conf = ConformalRegressor().fit(np.arange(50.0), np.arange(50.0) + 1)
    with pytest.raises(ConfigError, match="coverage"):
        conf.bounds(np.zeros(3), bad)  # type: ignore[arg-type]


def test_prediction_sets_cover_and_stay_small_when_the_model_is_sure() -> None:
    rng = np.random.default_rng(2)
    k = 4

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(0, 2.0, (n, k))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(k, p=row) for row in proba])
        return y, proba

    y_cal, p_cal = draw(2000)
    y, p = draw(10_000)
    member = ConformalClassifier().fit(y_cal, p_cal).sets(p, 0.9)
    assert member[np.arange(len(y)), y].mean() >= 0.88
    assert member[np.arange(len(y)), p.argmax(axis=1)].all()  # the most probable label is always in
    sure = p.max(axis=1) > 0.95
    assert member[sure].sum(axis=1).mean() < 1.1
    assert member[~sure].sum(axis=1).mean() > member[sure].sum(axis=1).mean()


@pytest.fixture(scope="module")
def split_salaries(tmp_path_factory: pytest.TempPathFactory, salaries_csv: Path) -> dict[str, Path]:
    df = pd.read_csv(salaries_csv)
    test = df.sample(400, random_state=0)
    folder = tmp_path_factory.mktemp("intervals")
    train_path, test_path = folder / "train.csv", folder / "test.csv"
    df.drop(index=test.index).to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    return {"train": train_path, "test": test_path, "folder": folder}


@pytest.mark.slow
def test_predict_interval_adds_ranges_that_hold_most_held_out_salaries(split_salaries: dict[str, Path]) -> None:
    import mlengineer

    model_dir = split_salaries["folder"] / "model"
    # trained in process (the train command has tests of its own): what is tested is predict --interval
    mlengineer.train(split_salaries["train"], "salary_in_usd", drop=["salary", "salary_currency"], time_budget=6,
                     out=model_dir, track=False)
    out = split_salaries["folder"] / "pred.csv"
    r = run_cli("predict", str(model_dir), str(split_salaries["test"]), "--interval", "0.9", "--out", str(out))
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(out)
    truth = pd.read_csv(split_salaries["test"])["salary_in_usd"]
    assert list(pred.columns) == ["prediction", "lower", "upper"]
    assert ((pred["lower"] <= pred["prediction"]) & (pred["prediction"] <= pred["upper"])).all()
    covered = ((truth >= pred["lower"]) & (truth <= pred["upper"])).mean()
    assert 0.82 <= covered <= 0.97  # 400 rows: chance alone moves coverage by a few points
    widths = pred["upper"] - pred["lower"]
    assert widths.nunique() > 10  # adaptive: not one width for every row


@pytest.mark.slow
def test_predict_interval_gives_classifiers_prediction_sets(tmp_path: Path, churn_model_dir: Path,
                                                            churn_csv: Path) -> None:
    out = tmp_path / "sets.csv"
    r = run_cli("predict", str(churn_model_dir), str(churn_csv), "--interval", "0.9", "--out", str(out))
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(out)
    sets = [json.loads(s) for s in pred["prediction_set"]]
    assert all(set(s) <= {"yes", "no"} and s for s in sets)
    assert all(p in s for p, s in zip(pred["prediction"], sets, strict=True))
    assert any(len(s) == 2 for s in sets) and any(len(s) == 1 for s in sets)


def test_a_bad_interval_on_the_command_line_is_one_line_and_exit_2(salary_model_dir: Path, salaries_csv: Path) -> None:
    r = run_cli("predict", str(salary_model_dir), str(salaries_csv), "--interval", "90")
    assert r.returncode == 2
    assert "coverage" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_prediction_set_is_for_classifiers_only(salary_model_dir: Path) -> None:
    import mlengineer

    model = mlengineer.load(salary_model_dir)
    with pytest.raises(ModelError, match="classification"):
        model.prediction_set(np.zeros(3), 0.9)


@pytest.mark.long
@pytest.mark.slow
def test_ranges_from_rows_kept_apart_at_training_hold_held_out_salaries(split_salaries: dict[str, Path]) -> None:
    """``--calibration-fraction``: the conformal scores come from the final model's own errors on rows no
    fit saw (search, ensemble or refit), the way ``calibrate --data`` does with a second file."""
    import mlengineer
    from mlengineer.evaluation.uncertainty import recalibrate

    model_dir = split_salaries["folder"] / "model-apart"
    r = run_cli("train", str(split_salaries["train"]), "--target", "salary_in_usd", "--drop", "salary",
                "--drop", "salary_currency", "--time-budget", "6", "--calibration-fraction", "0.2",
                "--out", str(model_dir), "--no-track")
    assert r.returncode == 0, r.stderr
    model = mlengineer.load(model_dir)
    apart = model.metadata["calibration_rows_apart"]
    n_rows = len(pd.read_csv(split_salaries["train"]))
    assert 0.15 * n_rows <= apart <= 0.25 * n_rows and len(model.validation["y"]) == apart
    assert model.metadata["n_train_rows"] == n_rows - apart
    assert model.metadata["calibration"]["source"] == "rows kept apart from every fit"
    assert "kept apart from every fit" in model.metadata["split"]
    out = split_salaries["folder"] / "pred-apart.csv"
    r = run_cli("predict", str(model_dir), str(split_salaries["test"]), "--interval", "0.9", "--out", str(out))
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(out)
    truth = pd.read_csv(split_salaries["test"])["salary_in_usd"]
    covered = ((truth >= pred["lower"]) & (truth <= pred["upper"])).mean()
    assert 0.82 <= covered <= 0.97
    assert "kept apart from every fit" in recalibrate(model)["source"]
