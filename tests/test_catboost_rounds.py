"""CatBoost's rounds under the plan: a fit the plan caps runs to its cap without a per-round Python callback
(which made CatBoost's training quadratic in its rounds), counts the rounds it ran from the validation
history, and a fit without a cap (a refit on all rows) still stops at its deadline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlengineer.tasks import make_task
from mlengineer.training.models import FitContext, get_family


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 4] = rng.integers(0, 4, n)  # a categorical column, coded
    return X, X[:, 0] + 0.5 * X[:, 1] ** 2 + (X[:, 4] == 2) + 0.3 * rng.normal(size=n)


def _ctx(y: np.ndarray, **kw: object) -> FitContext:
    return FitContext(task=make_task(pd.Series(y), "regression"), categorical=[4], cardinalities=[4], **kw)


def test_a_capped_fit_runs_to_its_cap_and_counts_the_rounds_from_validation() -> None:
    X, y = _data(600)
    catboost = get_family("catboost")
    # a learning rate this small is still improving at 60 rounds: the cap, not early stopping, ends the fit
    model = catboost.fit(X[:480], y[:480], _ctx(y, max_units=60, time_limit=0.0), {"learning_rate": 0.01},
                         X[480:], y[480:])
    # the cap bounds the fit: a deadline already past does not cut it short (the plan's cap is the bound)
    assert model.rounds_run == 60 and not model.stopped_by_time
    assert 50 <= model.best_iteration <= 60


def test_a_refit_counts_every_round_and_stops_at_its_deadline() -> None:
    X, y = _data(600)
    catboost = get_family("catboost")
    # a refit on all rows: a known number of rounds, no validation rows, no cap from the plan
    model = catboost.fit(X, y, _ctx(y, time_limit=60.0), {"learning_rate": 0.1, "n_estimators": 40})
    assert model.rounds_run == 40 and model.best_iteration == 40 and not model.stopped_by_time
    # far more rounds than its time allows: the deadline stops it, and says so
    cut = catboost.fit(X, y, _ctx(y, time_limit=0.2), {"learning_rate": 0.1, "n_estimators": 1_000_000})
    assert cut.stopped_by_time and 0 < cut.rounds_run < 1_000_000
    np.testing.assert_array_equal(np.isfinite(cut.predict_raw(X[:5])), True)
