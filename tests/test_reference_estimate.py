"""The reference's estimated performance of a regressor reads the loss model's cross-fitted expected errors of
its rows, as a live batch's estimate reads expected errors of rows the loss model never saw, so a batch
drawn like the reference is estimated where the reference is (bench/RESULTS.md, the estimated comparison)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlengineer.monitoring.estimate import LossModel


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, predictions and outcomes whose errors grow with the second input."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    pred = 10 * X[:, 0]
    return X, pred, pred + rng.normal(size=n) * (0.6 + 0.5 * np.abs(X[:, 1]))


def test_the_cross_fitted_sizes_give_the_fit_rows_their_realised_errors() -> None:
    X, pred, y = _rows(800, 0)
    loss = LossModel(seed=0).fit(X, pred, y)
    m = loss.cross_fitted
    assert m.shape == (800,) and np.all(m >= loss.floor)
    realised = float(np.sqrt(np.mean((y - pred) ** 2)))
    assert np.isclose(loss.estimate("rmse", m, pred).value, realised, rtol=1e-9)
    assert np.isclose(loss.estimate("mae", m, pred).value, float(np.mean(np.abs(y - pred))), rtol=1e-9)
    # the final loss model's sizes for its own fit rows are another thing: fitted to those rows' errors
    in_sample = loss.expected_error(X, pred)
    assert not np.allclose(m, in_sample, rtol=1e-3)
    assert not np.isclose(loss.estimate("rmse", in_sample, pred).value, realised, rtol=1e-4)

def test_a_regressors_reference_estimate_is_its_cross_fitted_one(salary_model_dir: Path) -> None:
    import mlengineer
    from mlengineer.monitoring.reference import reference_of

    ref = reference_of(mlengineer.load(salary_model_dir))
    loss = ref.loss_model()
    assert loss is not None and len(loss.cross_fitted) == len(ref.scored)
    est = ref.estimated["rmse"]
    assert est.method.startswith("DLE")
    assert np.isclose(est.value, ref.performance["rmse"].value, rtol=1e-6)  # cross-fitted: the realised RMSE
    assert np.isclose(est.value, loss.estimate("rmse", loss.cross_fitted, ref.raw).value, rtol=1e-12)
    in_sample = loss.estimate("rmse", loss.expected_error(ref.encoded, ref.raw), ref.raw).value
    assert not np.isclose(est.value, in_sample, rtol=1e-3)
