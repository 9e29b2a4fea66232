"""A seeded run repeats: the same seed, budget, table and machine give identical predictions and the same
ensemble, because the search follows a plan in work units at rounded, remembered costs (training/plan.py)
rather than the clock; another seed is another run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlengineer.training.clock import WorkClock
from mlengineer.training.plan import FamilyCost, Measurements, bucket

from .conftest import pin_lightgbm_costs


@pytest.fixture
def cost_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Measurements remembered in a folder of this test's own (a user's live in ~/.cache/mlengineer)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MLENGINEER_CACHE_DIR", str(folder))
    monkeypatch.delenv("MLENGINEER_COST_CACHE", raising=False)
    return folder


def _members(model: object) -> list[tuple[str, float]]:
    return [(n, round(w, 12)) for n, _, w in model.predictor.members]  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_same_seed_gives_identical_predictions_and_another_seed_runs(churn_csv: Path, cost_cache: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import mlengineer
    from mlengineer.training import selection

    # remembered costs are forgotten when a rerun's search takes far less real time than planned, as it does
    # when the first run measured them on a machine other tests kept busier: the reruns below need them kept
    monkeypatch.setattr(selection, "STALE_COSTS", 0.0)

    df = pd.read_csv(churn_csv)
    rows = df.drop(columns=["churn"])
    first, second = (mlengineer.train(df, "churn", time_budget=10, seed=7, track=False) for _ in range(2))
    why = [m.metadata["reproducibility"]["why"] for m in (first, second)]
    assert np.array_equal(first.predict_raw(rows), second.predict_raw(rows)), why
    assert _members(first) == _members(second)
    boards = [[(r["model"], r["best_iteration"]) for r in m.metadata["leaderboard"]] for m in (first, second)]
    assert boards[0] == boards[1], why
    # the second run planned from the first one's rounded measurements, read back from the cache
    assert not first.metadata["reproducibility"]["plan"]["measurements_reused"]
    assert second.metadata["reproducibility"]["plan"]["measurements_reused"]
    assert first.metadata["reproducibility"]["plan"] == {**second.metadata["reproducibility"]["plan"],
                                                          "measurements_reused": False}
    assert list(cost_cache.glob("costs/*.json"))

    other = mlengineer.train(df, "churn", time_budget=10, seed=8, track=False)
    # the other seed plans from the same remembered costs (its folds may stop boosting at other rounds and
    # leave time for more or fewer families than the first run reached, so only the shared ones compare)
    mine, theirs = (m.metadata["reproducibility"]["plan"]["costs"] for m in (first, other))
    shared = mine.keys() & theirs.keys()
    assert "lightgbm" in shared and all(mine[f] == theirs[f] for f in shared), (mine, theirs)
    # other folds: other out-of-fold scores, whatever the final models turn out to be
    assert other.metadata["validation_score"] != first.metadata["validation_score"]
    assert other.predict_raw(rows).shape == first.predict_raw(rows).shape


@pytest.mark.long
@pytest.mark.slow
def test_a_seeded_regression_repeats_with_tuning(cost_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the safety stops off (``MLENGINEER_SAFETY_FACTOR=0``) a seeded run repeats however busy the
    machine is: nothing but the plan decides."""
    from mlengineer.training.config import TrainConfig

    monkeypatch.setenv("MLENGINEER_SAFETY_FACTOR", "0")
    from mlengineer.training.trainer import fit_pipeline

    rng = np.random.default_rng(0)
    n = 1200
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n), "c": rng.choice(list("pqrs"), n)})
    df["y"] = 3 * df["a"] + np.sin(6 * df["b"]) + (df["c"] == "q") + 0.3 * rng.normal(size=n)
    # k folds side by side, one thread each (the search's way on small data): their threads must not matter
    config = TrainConfig(target="y", time_budget=10, seed=3, families=["lightgbm", "linear"],
                         validation="kfold")
    # The plan follows the measured costs; a slow or busy machine measures dearer rounds and may plan no
    # tuning at all within 10 s. A short first run fills the cost cache; its LightGBM costs are then pinned
    # to values that leave room for tuning on any machine, and both compared runs plan from them.
    # Pinned again before each run: a machine much faster than the pinned costs would have the first run
    # forget them as stale (training/selection.py), and the second would measure its own.
    fit_pipeline(df, config.model_copy(update={"time_budget": 2}))
    [stored] = cost_cache.glob("costs/*.json")
    first_cache = json.loads(stored.read_text())

    def pinned_run() -> Any:
        pin_lightgbm_costs(stored, first_cache)
        return fit_pipeline(df, config)

    runs = [pinned_run() for _ in range(2)]
    X = runs[0].encoder.transform(runs[0].plan.apply(df.drop(columns=["y"]), training=False))
    preds = [r.predictor.predict_raw(X) for r in runs]
    assert np.array_equal(preds[0], preds[1]), [r.reproducibility["why"] for r in runs]
    assert _members(runs[0]) == _members(runs[1])
    boards = [[(r["model"], r["params"].get("num_leaves"), r["best_iteration"]) for r in run.leaderboard]
              for run in runs]
    assert boards[0] == boards[1] and any(r["phase"] == "tuning" for r in runs[0].leaderboard)


def test_rounding_keeps_noisy_measurements_on_one_value() -> None:
    assert bucket(1.0, 0.01) == bucket(1.1, 0.01) == bucket(0.9, 0.01) == 1.0
    assert bucket(1.3, 0.01) == pytest.approx(2 ** 0.5) and bucket(1.8, 0.01) == 2.0
    assert bucket(1e-9, 0.01) == bucket(0.01, 0.01)


def test_a_limit_becomes_a_cap_on_units_and_units_become_planned_seconds() -> None:
    cost = FamilyCost(fixed=0.25, unit=0.01, rows=1000, params={"num_leaves": 31}, n_features=10)
    assert cost.max_units({"num_leaves": 31}, 1.25, 1000) == 100
    assert cost.max_units({"num_leaves": 31}, 1.25, 2000) < 100  # more rows, fewer rounds
    assert cost.max_units({"num_leaves": 255}, 1.25, 1000) < 100  # bigger trees cost more a round
    assert cost.seconds({"num_leaves": 31}, 100, 1000) == pytest.approx(1.25)
    assert FamilyCost(fixed=0.1, unit=0.0, rows=10).max_units({}, 5.0, 10) is None


def test_measurements_are_remembered_per_table(cost_cache: Path) -> None:
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20) % 2
    memo = Measurements(X, y, n_jobs=2, families=["lightgbm"])
    assert memo.get("probe:lightgbm", lambda: {"fixed": 0.5}) == {"fixed": 0.5} and not memo.reused
    memo.save()
    again = Measurements(X, y, n_jobs=2, families=["lightgbm"])
    assert again.reused and again.get("probe:lightgbm", lambda: {"fixed": 9.0}) == {"fixed": 0.5}
    other = Measurements(X + 1, y, n_jobs=2, families=["lightgbm"])  # another table measures afresh
    assert not other.reused and other.path != again.path


def test_the_safety_stop_is_recorded_as_a_deviation() -> None:
    clock = WorkClock(0.001)
    assert not clock.overrun()
    clock.hard_end = time.perf_counter() - 1  # as if the machine ran far slower than its measured costs
    assert clock.overrun() and clock.overrun()
    assert len(clock.deviations) == 1 and "planned" in clock.deviations[0]


def test_a_first_run_holds_its_budget_by_the_real_clock_and_a_rerun_stops_where_it_did() -> None:
    """A first run's clock answers "stop" where the real seconds, with what would start, pass its budget; it
    keeps the calls it stopped at, and a rerun given them stops at the same calls whatever its clock says."""
    clock = WorkClock(10.0, hold=True)
    assert not clock.overrun() and not clock.overrun(need=5.0)
    assert clock.overrun(need=11.0)  # what would start cannot end within the budget's real seconds
    clock.end = time.perf_counter() - 1  # as if the probes and the fits took longer than their plan
    assert clock.overrun() and clock.stops == [2, 3] and not clock.deviations
    again = WorkClock(10.0, hold=True, stops=clock.stops)
    assert again.end is None  # its clock is not read but for the safety stop: a rerun repeats the first run
    assert [again.overrun(need=n) for n in (0.0, 99.0, 0.0, 0.0, 0.0)] == [False, False, True, True, False]
    assert again.stops == clock.stops and not again.deviations
    assert not WorkClock(10.0).overrun(need=99.0)  # not held: the plan alone decides, up to the safety stop
    # what would start is priced at the run's pace: here 4 real seconds went to 2 planned ones, 6 are left
    paced = WorkClock(10.0, hold=True)
    paced.start -= 4.0
    paced.end -= 4.0  # type: ignore[operator]
    paced.charge(2.0)
    assert paced.pace() == pytest.approx(2.0, rel=0.05)
    assert not paced.overrun(need=2.5) and paced.overrun(need=3.5)


def _refit_candidate(name: str, fit_seconds: float) -> Any:
    """A candidate of two fold models whose fits took ``fit_seconds`` each, priced 1 planned second each."""
    from types import SimpleNamespace

    from mlengineer.training.candidate import Candidate

    cand = Candidate(name=name, family="lightgbm", params={}, fold_rows=1000,
                     plan_cost=FamilyCost(fixed=1.0, unit=0.0, rows=1000))
    cand.models = [SimpleNamespace(fit_seconds=fit_seconds, rounds_run=None, params={})] * 2
    return cand


def test_a_refit_held_by_its_own_familys_pace_on_a_first_run_and_replayed_on_a_rerun() -> None:
    """A member's refit is asked of the real clock at the pace its own fits kept in the search (a network's
    epochs 1.5 real seconds a planned one where the run's mix kept less): one that would end past the held
    refit end keeps its search models; the answers are stops, which a rerun replays."""
    from types import SimpleNamespace

    from mlengineer.training.candidate import real_per_planned
    from mlengineer.training.clock import MAX_PACE
    from mlengineer.training.selection import _held_refits, _refit_late

    slow, quick = _refit_candidate("slow", 1.9), _refit_candidate("quick", 0.5)
    assert real_per_planned(slow) == pytest.approx(1.9) and real_per_planned(quick) == 1.0  # at least 1
    assert real_per_planned(type(slow)(name="x", family="lightgbm", params={})) == MAX_PACE  # no costs: the most

    def searched(clock: WorkClock, memo: dict) -> Any:
        return SimpleNamespace(clock=clock, plan={"held_refit_end_s": 10.0, "held_key": "k"},
                               memo=SimpleNamespace(values=memo))

    clock = WorkClock(8.0, hold=True)
    clock.end = time.perf_counter() + 1.0  # the search's end a second away: the refit's 3 s after it
    first = searched(clock, {"k": {"stops": [], "refit_budget_s": 2.0}})
    late = _refit_late(first)
    # 2 planned seconds: at 1.9 real a planned one they end past the refit's end, at 1.0 within it
    assert [late(slow, 2.0), late(quick, 2.0)] == [True, False]
    _held_refits(first)
    assert first.memo.values["k"]["stops"] == [0] and first.plan["held_stops"] == [0]
    again = searched(WorkClock(8.0, hold=True, stops=[0]), {"k": {"stops": [0], "refit_budget_s": 2.0}})
    late = _refit_late(again)
    assert [late(slow, 2.0), late(quick, 2.0)] == [True, False]  # its clock unread: the same answers
    _held_refits(again)
    assert again.memo.values["k"]["stops"] == [0]


def test_a_member_whose_refit_would_end_late_keeps_its_search_models_and_leaves_its_seconds() -> None:
    from mlengineer.metrics import get_metric
    from mlengineer.tasks import make_task
    from mlengineer.training.ensemble import Bag
    from mlengineer.training.models import FitContext, load_all
    from mlengineer.training.refit import refit_members
    from mlengineer.training.search import Evaluator
    from mlengineer.training.validation import choose_validation

    load_all()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = X[:, 0] + X[:, 1] ** 2 + 0.1 * rng.normal(size=400)
    task = make_task(pd.Series(y), "regression")
    ctx = FitContext(task=task, n_jobs=1)
    evaluate = Evaluator(X, y, choose_validation(y, mode="kfold", seed=0, stratify=False), ctx,
                         get_metric("rmse", task.kind))
    a = evaluate("lightgbm", {"learning_rate": 0.1}, name="lightgbm_1", phase="portfolio", limit=5.0)
    b = evaluate("linear", {}, name="linear_1", phase="portfolio", limit=5.0)
    asked: list[str] = []

    def late(cand: Any, need: float) -> bool:
        asked.append(cand.name)
        return cand.name == "lightgbm_1"

    members, refit, _ = refit_members(X, y, ctx, [(a, 0.7), (b, 0.3)], rows_ratio=1.25, budget=1e6, late=late)
    assert asked == ["lightgbm_1", "linear_1"] and refit == ["linear_1"]
    assert isinstance(members[0][1], Bag) and members[0][1].estimator == a.models  # its fold models


@pytest.mark.slow
def test_a_first_run_slower_than_its_plan_stops_in_time_and_a_rerun_repeats_it(
        cost_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run on a table whose candidates take longer than their plan (here each 0.4 s more, after the
    probes, as on a machine that got busy) stops the search by the real clock instead of running to twice its
    plan, and a rerun on a quiet machine repeats it exactly: the stops are remembered with the costs."""
    from mlengineer.training.config import TrainConfig
    from mlengineer.training.evaluator import Evaluator
    from mlengineer.training.trainer import fit_pipeline

    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n), "c": rng.choice(list("pqr"), n)})
    df["y"] = np.where(df["a"] + np.sin(5 * df["b"]) + (df["c"] == "q") + 0.5 * rng.normal(size=n) > 0.5, "yes", "no")
    config = TrainConfig(target="y", time_budget=6, seed=1, families=["lightgbm", "linear"])
    scored = Evaluator.__call__

    def busy(self: Evaluator, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.4)
        return scored(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "__call__", busy)
    first = fit_pipeline(df, config)
    monkeypatch.setattr(Evaluator, "__call__", scored)
    second = fit_pipeline(df, config)
    plans = [r.reproducibility["plan"] for r in (first, second)]
    assert plans[0]["held_stops"], plans[0]  # stopped by the real clock, not by the plan nor the safety stop
    assert first.reproducibility["reproducible"], first.reproducibility["why"]
    assert plans[1]["held_stops"] == plans[0]["held_stops"]
    assert plans[1]["held_refit_budget_s"] == plans[0]["held_refit_budget_s"]
    assert second.reproducibility["reproducible"], second.reproducibility["why"]
    boards = [[(r["model"], r["params"].get("num_leaves"), r["best_iteration"]) for r in run.leaderboard]
              for run in (first, second)]
    assert boards[0] == boards[1]
    X = first.encoder.transform(first.plan.apply(df.drop(columns=["y"]), training=False))
    assert np.array_equal(first.predictor.predict_raw(X), second.predictor.predict_raw(X))
    # another budget is another plan: the stops are remembered for this one only
    assert fit_pipeline(df, config.model_copy(update={"time_budget": 4})).reproducibility["plan"]["held_key"] != \
        plans[0]["held_key"]


@pytest.mark.parametrize("family", ["mlp", "tabm"])
def test_networks_fitted_side_by_side_repeat_as_if_alone(family: str) -> None:
    """The search fits a candidate's folds side by side in threads: each network's first weights and dropout
    masks come from its own seed, not from torch's one global stream taken in turns."""
    pytest.importorskip("torch")
    from concurrent.futures import ThreadPoolExecutor

    from mlengineer.tasks import RegressionTask
    from mlengineer.training.models import FitContext, get_family

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    y = 3 * X[:, 0] + np.sin(X[:, 1]) + 0.3 * rng.normal(size=600)
    fam = get_family(family)
    fam.warm_up()

    def fit(i: int) -> np.ndarray:
        tr = np.arange(len(X)) % 3 != i
        ctx = FitContext(task=RegressionTask(), n_jobs=1, seed=i, max_units=6)
        model = fam.fit(X[tr], y[tr], ctx, {"hidden": 64, "layers": 2, "dropout": 0.2, "lr": 3e-3}, X[~tr], y[~tr])
        return model.predict_raw(X)

    alone = [fit(i) for i in range(3)]
    for _ in range(2):
        with ThreadPoolExecutor(3) as pool:
            for a, b in zip(alone, pool.map(fit, range(3)), strict=True):
                np.testing.assert_array_equal(a, b)
