"""Concept drift (the outcomes worse than the estimate for the same rows) must not fire on batches drawn like
the training rows more than chance allows, and must fire when the outcome's relation to the inputs broke."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.monitoring.change import estimate_gap
from mlengineer.monitoring.run import monitor_model

pytestmark = pytest.mark.slow


def _rows(n: int, seed: int) -> pd.DataFrame:
    """Four normal inputs and a category; y = 10 (x1 + x2/2 - x3/2 + 0.7 [c = a]) + N(0, 5)."""
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 4))
    c = r.choice(list("abc"), n)
    d = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"])
    d["c"] = c
    d["y"] = 10 * (X[:, 0] + 0.5 * X[:, 1] - 0.5 * X[:, 2] + (c == "a") * 0.7) + r.normal(0, 5, n)
    return d


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> object:
    out = tmp_path_factory.mktemp("concept") / "reg"
    mlengineer.train(_rows(2000, 0), "y", out=out, track=False, time_budget=5, families=["linear"], tune=False)
    return mlengineer.load(out)


def _concept(model: object, batch: pd.DataFrame) -> dict:
    _, result = monitor_model(model, data=batch)
    return result["performance"]


def test_batches_drawn_like_training_seldom_alarm(model: object) -> None:
    perf = [_concept(model, _rows(100, seed)) for seed in range(1000, 1024)]
    fired = sum(p["concept_drift"] for p in perf)
    assert fired <= 2, f"{fired} of 24 batches drawn like training said concept drift"
    # a test as narrow as the estimate's interval alone piles its p-values near 0; chance spreads them out
    assert np.median([p["concept_p_value"] for p in perf]) >= 0.3
    test = perf[0]["metrics"]["rmse"]["against_estimate"]
    assert test["tolerance"] > 0 and test["bound"] < 0 < test["p_value"] <= 1


@pytest.mark.parametrize("broken", ["shifted", "noisier", "reversed"])
def test_a_broken_relation_alarms(model: object, broken: str) -> None:
    batch = _rows(100, 7)
    noise = np.random.default_rng(8).normal(0, 5, len(batch))
    batch["y"] += {"shifted": 8.0 + 0 * noise, "noisier": 1.5 * noise, "reversed": -20 * batch["x1"]}[broken]
    perf = _concept(model, batch)
    assert perf["concept_drift"] and perf["alarm"], perf["metrics"]["rmse"]["against_estimate"]
    said = " ".join(monitor_model(model, data=batch)[1]["summary"])
    assert "worse than the inputs promised" in said and "beyond chance" in said


def test_the_gap_is_resampled_in_pairs() -> None:
    """Two numbers of the same rows move together: their gap's spread is far smaller than either's alone."""
    rng = np.random.default_rng(0)
    shared, own = rng.exponential(1.0, 200), rng.normal(0, 0.05, 200)
    test = estimate_gap(lambda i: float(np.mean(shared[i] + own[i])), lambda i: float(np.mean(shared[i])), 200,
                        higher=False, tolerance=0.0)
    assert test is not None and test["bound"] > -0.02  # unpaired, the spread of the mean of ``shared`` (about 0.07)
    worse = estimate_gap(lambda i: float(np.mean(shared[i] + own[i] + 0.05)), lambda i: float(np.mean(shared[i])),
                         200, higher=False, tolerance=0.0)
    assert worse is not None and worse["bound"] > 0 and worse["p_value"] < 0.025


def _null_gaps(low: float, se: float, n: int, batches: int, *, full: bool = True) -> list[dict]:
    """Gap tests of ``batches`` batches of ``n`` rows drawn like the reference (errors N(0, 1), RMSE near 1)
    against an estimate ``low`` too low that claims the standard error ``se`` from its reference rows."""
    rng = np.random.default_rng(0)
    out = []
    for seed in range(batches):
        e = rng.normal(0, 1, n)
        test = estimate_gap(lambda i, e=e: float(np.sqrt(np.mean(e[i] ** 2))), lambda i: 1 - low, n, higher=False,
                            tolerance=0.05 * (1 - low), spread=se * (1 - low), full=full, seed=seed,
                            draws=100)
        assert test is not None
        out.append(test)
    return out


def test_the_references_own_error_is_counted_in_full() -> None:
    """An estimate 7% low from a reference that claims 4% (1.75 of its standard errors, inside its 97.5% bound)
    is one offset every batch shares: counted in quadrature it fired on 5 of these 200 batches of 100 rows drawn
    like training (16 of 400); counted in full, on 1."""
    tests = _null_gaps(0.07, 0.04, 100, 200)
    fired = sum(t["bound"] > 0 for t in tests)
    assert fired <= 3, f"{fired} of 200 null batches said concept drift"
    assert sum(t["bound"] > 0 for t in _null_gaps(0.07, 0.04, 100, 200, full=False)) > fired  # a classifier's way
    assert all((t["bound"] > 0) == (t["p_value"] < 0.025) for t in tests)  # the p-value is the same test's
    # an estimate that is right fires far less; one far beyond its own bound (a broken relation's size) fires
    assert sum(t["bound"] > 0 for t in _null_gaps(0.0, 0.04, 100, 60)) == 0
    assert sum(t["bound"] > 0 for t in _null_gaps(0.50, 0.04, 100, 20)) == 20


def test_small_and_large_batches_drawn_like_training_seldom_alarm(model: object) -> None:
    fired = [_concept(model, _rows(n, seed))["concept_drift"] for n in (50, 200) for seed in range(2000, 2008)]
    assert sum(fired) <= 1, f"{sum(fired)} of 16 batches of 50 and 200 rows drawn like training said concept drift"
