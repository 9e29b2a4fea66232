"""BLAS's threads in the work on a trained model. Monitoring's one solver, the domain classifier that tells a
text column's reference rows from live ones (a logistic regression: many small products, where BLAS's own
threads wait on each other), runs BLAS on one thread and gives the setting back; a user's own setting of BLAS's
threads (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS) is kept. Predicting keeps BLAS's threads: its
products are few and large, and faster on them (bench/blas_commands.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

from mlengineer.monitoring.columns import Prepared
from mlengineer.monitoring.drift import compare_column
from mlengineer.training.models.threads import THREAD_SETTINGS, one_thread_unless_set, user_threads


def _blas_threads() -> int:
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def _no_user_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in THREAD_SETTINGS:
        monkeypatch.delenv(var, raising=False)


def _fits_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """BLAS's threads each time a logistic regression starts fitting (the fit itself runs as it is)."""
    original = LogisticRegression.fit
    seen: list[int] = []

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(_blas_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", fit)
    return seen


def _texts(n: int, seed: int) -> Prepared:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(300)])
    notes = [" ".join(rng.choice(words, size=8)) for _ in range(n)]
    return Prepared("note", "text", "text", np.asarray(notes, dtype=object))


def test_a_text_columns_drift_runs_blas_on_one_thread_and_gives_the_setting_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _no_user_setting(monkeypatch)
    seen = _fits_seen(monkeypatch)
    with threadpool_limits(2, user_api="blas"):
        drift = compare_column(_texts(300, 0), _texts(300, 1))
        assert _blas_threads() == 2  # the setting before, back
    assert drift.test == "domain classifier ROC AUC" and seen == [1], (drift.test, seen)


def test_a_users_own_setting_of_blas_threads_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_user_setting(monkeypatch)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    seen = _fits_seen(monkeypatch)
    with threadpool_limits(2, user_api="blas"):
        compare_column(_texts(300, 0), _texts(300, 1))
    assert seen == [2], seen


@pytest.mark.parametrize("var", THREAD_SETTINGS)
def test_the_hold_keeps_any_of_the_users_settings(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    _no_user_setting(monkeypatch)
    assert user_threads() is None
    with threadpool_limits(2, user_api="blas"):
        with one_thread_unless_set():
            assert _blas_threads() == 1
        assert _blas_threads() == 2
        monkeypatch.setenv(var, "2")
        assert user_threads() == f"{var}=2"
        with one_thread_unless_set():
            assert _blas_threads() == 2
        monkeypatch.setenv(var, " ")  # set to nothing: no setting
        with one_thread_unless_set():
            assert _blas_threads() == 1
        assert _blas_threads() == 2
