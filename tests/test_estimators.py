"""AutoClassifier and AutoRegressor keep scikit-learn's estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import mlengineer

pytestmark = pytest.mark.slow


def _xy(n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    return X, np.where(X[:, 0] - X[:, 1] + rng.normal(0, 0.3, n) > 0, "up", "down")


def test_params_round_trip_and_clone() -> None:
    est = mlengineer.AutoClassifier(time_budget=2, families=["linear"], metric="accuracy")
    assert est.get_params()["time_budget"] == 2
    est.set_params(time_budget=3, seed=7)
    assert est.time_budget == 3 and est.seed == 7
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert not hasattr(twin, "model_")  # nothing learned in the constructor


def test_unfitted_estimator_says_so() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        mlengineer.AutoRegressor().predict(np.zeros((1, 2)))


def test_classifier_in_a_pipeline_with_grid_search() -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy()
    pipe = Pipeline([("scale", StandardScaler()), ("auto", mlengineer.AutoClassifier(time_budget=2, families=["linear"]))])
    grid = GridSearchCV(pipe, {"auto__seed": [0, 1]}, cv=2).fit(X, y)
    assert grid.best_score_ > 0.8
    proba = grid.predict_proba(X[:4])
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(grid.predict(X[:10])) <= {"up", "down"}


def test_regressor_cross_val_score_and_score_on_a_frame() -> None:
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"size": rng.uniform(20, 200, 200), "rooms": rng.integers(1, 6, 200)})
    y = 1000 * X["size"] + 5000 * X["rooms"] + rng.normal(0, 3000, 200)
    est = mlengineer.AutoRegressor(time_budget=2, families=["linear", "lightgbm"])
    scores = cross_val_score(est, X, y, cv=2)
    assert scores.mean() > 0.9
    est.fit(X, y)
    assert est.score(X, y) > 0.9
    assert list(est.feature_names_in_) == ["size", "rooms"] and est.n_features_in_ == 2
    assert est.predict(X.head(3)).shape == (3,)
