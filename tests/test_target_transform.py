"""Regression on a transformed target (issue 16): a log or Yeo-Johnson power transform of a skewed target,
tried as candidates by the search and kept only where validation scores them better on the original scale."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.errors import ConfigError
from mlengineer.tasks import make_task
from mlengineer.training.models import FitContext, get_family
from mlengineer.training.models.target import TargetTransform, TransformedTargetModel, target_transforms
from mlengineer.training.search import portfolio

from .conftest import FIXTURES, run_cli


def _skewed(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.exp(1.0 + 0.8 * X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)) * 1000
    return X, y


@pytest.mark.parametrize("kind", ["log", "power"])
def test_a_transform_inverts_what_it_forwards(kind: str) -> None:
    _, y = _skewed()
    values = y if kind == "log" else y - 2500  # power: values of both signs
    t = TargetTransform.fitted(kind, values)
    np.testing.assert_allclose(t.inverse(t.forward(values)), values, rtol=1e-10)
    # far outside what training saw, an answer is clipped to the widened range, never inf or nan
    wild = t.inverse(np.array([-1e6, 1e6]))
    assert np.isfinite(wild).all() and wild[0] < values.min() and wild[1] > values.max()


def test_a_log_transform_of_a_target_with_zeros_shifts_by_its_smallest_positive_value() -> None:
    y = np.array([0.0, 0.0, 2.0, 5.0, 40.0, 300.0])
    t = TargetTransform.fitted("log", y)
    assert t.shift == 2.0 and np.isfinite(t.forward(y)).all()
    with pytest.raises(ValueError, match="at least 0"):
        TargetTransform.fitted("log", y - 1)


def test_which_targets_call_for_a_transform() -> None:
    rng = np.random.default_rng(1)
    assert target_transforms(rng.lognormal(10, 0.8, 2000)) == ["log"]  # prices
    assert target_transforms(rng.normal(0, 1, 2000)) == []  # symmetric
    assert target_transforms(rng.lognormal(0, 0.8, 2000) - 3) == ["power"]  # skewed, negative values too
    assert target_transforms(rng.integers(3, 9, 2000).astype(float) ** 3) == []  # a grade of six levels
    assert target_transforms(np.array([1.0, np.nan, 3.0] * 50)) == []


def test_the_portfolio_tries_the_first_configurations_again_on_the_transformed_target() -> None:
    task = make_task(pd.Series([1.0, 2.0, 3.0]), "regression")
    plain = portfolio(task, 1000, 5, ["lightgbm", "linear", "catboost"])
    both = portfolio(task, 1000, 5, ["lightgbm", "linear", "catboost"], target_transforms=["log"])
    added = [(f, p) for f, p in both if p.get("target_transform")]
    assert sorted(f for f, _ in added) == ["catboost", "lightgbm"]
    assert len(both) == len(plain) + 2
    # right after the family's own first try, in the first turn
    for f, p in added:
        at = both.index((f, p))
        assert both[at - 1] == (f, {k: v for k, v in p.items() if k != "target_transform"})
        assert at < len({f for f, _ in plain}) + 2


def test_a_family_fitted_on_a_log_target_answers_on_the_original_scale() -> None:
    X, y = _skewed()
    task = make_task(pd.Series(y), "regression")
    family = get_family("lightgbm")
    ctx = FitContext(task=task, feature_names=[f"x{i}" for i in range(4)], n_jobs=1)
    params = {**family.default_configs(task, len(y), 4)[0], "n_estimators": 200}
    model = family.fit(X[:500], y[:500], ctx, {**params, "target_transform": "log"})
    assert isinstance(model, TransformedTargetModel) and model.family == "lightgbm"
    assert model.params["target_transform"] == "log" and model.rounds_run == model.inner.rounds_run
    pred = model.predict_raw(X[500:])
    # on the original scale: the inner model's log answers, exponentiated
    np.testing.assert_allclose(pred, np.exp(model.inner.predict_raw(X[500:])), rtol=1e-12)
    assert np.corrcoef(np.log(pred), np.log(y[500:]))[0, 1] > 0.9
    row = model.row_function()
    assert row is not None
    for i in range(500, 520):
        np.testing.assert_allclose(row(X[i:i + 1]), model.predict_raw(X[i:i + 1]), rtol=1e-12)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_raw(X[500:]), pred)
    assert model.contributions(X[:3], 1) is None and not model.explained_exactly


def test_classification_ignores_a_target_transform() -> None:
    X, y = _skewed()
    task = make_task(pd.Series((y > np.median(y)).astype(int)), "binary")
    family = get_family("lightgbm")
    ctx = FitContext(task=task, n_jobs=1)
    model = family.fit(X, (y > np.median(y)).astype(int), ctx, {"n_estimators": 20, "target_transform": "log"})
    assert not isinstance(model, TransformedTargetModel)


def _house(tmp_path: Path) -> Path:
    df = pd.read_csv(FIXTURES / "house_prices_300.csv.gz")
    path = tmp_path / "houses.csv"
    df.to_csv(path, index=False)
    return path


def test_training_on_a_skewed_price_tries_the_log_target_and_serves_it(tmp_path: Path) -> None:
    import mlengineer

    out = tmp_path / "house-model"
    model = mlengineer.train(_house(tmp_path), "SalePrice", time_budget=12, out=out, families=["lightgbm"],
                             tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    board = model.metadata["leaderboard"]
    transformed = [r for r in board if r["params"].get("target_transform") == "log"]
    plain = [r for r in board if r["family"] == "lightgbm" and "target_transform" not in r["params"]]
    assert transformed and plain, board
    loaded = mlengineer.load(out)
    test = pd.read_csv(FIXTURES / "house_prices_300.csv.gz").drop(columns=["SalePrice"]).head(20)
    batch = np.asarray(loaded.predict(test), dtype=float)
    assert np.isfinite(batch).all() and (batch > 10_000).all()
    records = test.to_dict(orient="records")
    one = [float(np.asarray(loaded.predict(r)).ravel()[0]) for r in records[:5]]
    np.testing.assert_allclose(one, batch[:5], rtol=1e-9)


def test_a_log_transform_of_a_target_with_negative_values_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    df["y"] = df["a"] * 3 + rng.normal(size=200)
    path = tmp_path / "signed.csv"
    df.to_csv(path, index=False)
    r = run_cli("train", str(path), "--target", "y", "--time-budget", "5", "--target-transform", "log",
                "--no-track", "--out", str(tmp_path / "m"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "target_transform 'log'" in r.stderr and "'y'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="target_transform"):
        import mlengineer

        mlengineer.train(path, "y", time_budget=5, target_transform="log", out=tmp_path / "m2", track=False)
