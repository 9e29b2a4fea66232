"""Each family's one-row function (``row_function``, used by bundle/rowpath.py) answers what its
``predict_raw`` answers for that row: LightGBM through its single-row C API, linear models through their
formula written in place; families without one fall back to ``predict_raw`` itself."""

from __future__ import annotations

import numpy as np
import pytest

from mlengineer.bundle.rowpath import row_predictor
from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask
from mlengineer.training.ensemble import Bag, Ensemble
from mlengineer.training.models import FitContext, get_family


def data(kind: str, n: int = 600) -> tuple[np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 2] = rng.integers(0, 12, n)  # category codes, some unseen below
    X[rng.random(X.shape) < 0.08] = np.nan
    signal = np.nan_to_num(X[:, 0]) + (np.nan_to_num(X[:, 2]) % 3 == 1) + 0.5 * np.nan_to_num(X[:, 3])
    if kind == "binary":
        return X, (signal + rng.normal(0, 0.5, n) > 0.5).astype(np.int64), BinaryTask(["no", "yes"])
    if kind == "multiclass":
        return X, np.digitize(signal + rng.normal(0, 0.4, n), [0.0, 1.0]).astype(np.int64), MulticlassTask(["a", "b", "c"])
    return X, (25_000 * signal + rng.normal(0, 300, n)).astype(np.float64), RegressionTask()


def odd_rows(X: np.ndarray) -> np.ndarray:
    """Rows a server meets: all missing, unseen category codes, values far outside the training range."""
    extra = np.full((4, X.shape[1]), np.nan, dtype=np.float32)
    extra[1] = X[0]
    extra[1, 2] = 40  # a code the model never saw
    extra[2] = 1e6
    extra[3] = -1e6
    extra[2:, 2] = 1  # codes are never negative or huge: the encoder writes a known code, the rare one or NaN
    return np.vstack([X, extra])


def fitted(name: str, kind: str) -> tuple[object, np.ndarray]:
    X, y, task = data(kind)
    fam = get_family(name)
    ctx = FitContext(task=task, categorical=[2], cardinalities=[12], seed=0, n_jobs=1, time_limit=60)
    config = {**fam.default_configs(task, len(X), X.shape[1])[0], "n_estimators": 150}
    if fam.early_stopping:
        model = fam.fit(X[:450], y[:450], ctx, config, X[450:], y[450:])
    else:
        model = fam.fit(X[:450], y[:450], ctx, config)
    return model, odd_rows(X[450:])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["lightgbm", "linear"])
def test_row_function_equals_predict_raw(name: str, kind: str) -> None:
    model, rows = fitted(name, kind)
    row = model.row_function()
    assert row is not None
    for i in range(len(rows)):
        x = rows[i : i + 1]
        got, want = row(x), model.predict_raw(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 if kind != "regression" else 1e-6 * 25_000)
    if name == "lightgbm":  # the same C library and trees: not merely close
        np.testing.assert_array_equal(np.vstack([row(rows[i : i + 1]) for i in range(len(rows))]).ravel(),
                                      np.vstack([model.predict_raw(rows[i : i + 1]) for i in range(len(rows))]).ravel())


@pytest.mark.slow
def test_lightgbm_row_function_follows_a_reloaded_booster() -> None:
    """``prepare`` reloads the booster (a new handle): the single-row configuration is built again, never
    left pointing at the freed one."""
    model, rows = fitted("lightgbm", "binary")
    row = model.row_function()
    before = row(rows[:1])
    booster = model.estimator
    booster.model_from_string(booster.model_to_string())
    np.testing.assert_array_equal(row(rows[:1]), before)


@pytest.mark.slow
def test_ensemble_and_bag_rows_combine_members_as_predict_raw_does() -> None:
    lgb, rows = fitted("lightgbm", "multiclass")
    lin, _ = fitted("linear", "multiclass")
    forest, _ = fitted("random_forest", "multiclass")  # no row function: its own predict_raw answers
    assert getattr(forest, "row_function", None) is None
    ensemble = Ensemble([("lightgbm_1", Bag([lgb, lgb]), 0.5), ("linear_1", lin, 0.3), ("rf_1", forest, 0.2)])
    fn = row_predictor(ensemble)
    for i in range(0, len(rows), 7):
        np.testing.assert_allclose(fn(rows[i : i + 1]), ensemble.predict_raw(rows[i : i + 1]), rtol=0, atol=1e-9)
