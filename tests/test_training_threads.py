"""A training holds BLAS at one thread while it runs (its folds, boosters and networks bring their own
parallelism; BLAS's threads on top of them wait on each other on busy cores) and gives the setting back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mlengineer.training.config import TrainConfig
from mlengineer.training.trainer import fit_pipeline


def _blas_threads() -> int:
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_a_training_runs_blas_on_one_thread_and_gives_the_setting_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.training.models import get_family

    family_type = type(get_family("linear"))
    original = family_type.fit
    seen: list[int] = []

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:  # folds fitted side by side in the search's threads too
        seen.append(_blas_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(family_type, "fit", fit)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    df["y"] = np.where(df["a"] + 0.3 * rng.normal(size=400) > 0, "pos", "neg")
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == 2
        fit_pipeline(df, TrainConfig(target="y", time_budget=4, families=["linear"], tune=False, n_jobs=2,
                                     validation="kfold"))
        assert _blas_threads() == 2  # the user's setting, back
    assert seen and set(seen) == {1}, seen
