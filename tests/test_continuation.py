"""The leader fitted further with the planned seconds left (``continuation.py``): a LightGBM fit kept to go on
resumes where it stopped, at a larger step, answers its validation rows as it would predict them, and a refit
repeats the step's change; the search's last phase continues the leader that ran out of rounds, charged the
rounds it added, the same run after run."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlengineer.metrics import get_metric
from mlengineer.tasks import make_task
from mlengineer.training.candidate import Candidate
from mlengineer.training.clock import WorkClock
from mlengineer.training.continuation import RESUME_RATE, resume_candidate
from mlengineer.training.models import FitContext, get_family, load_all
from mlengineer.training.models.base import Deadline
from mlengineer.training.phases import LONGER_SHARE, _continue, _longer, ran_out
from mlengineer.training.plan import FamilyCost
from mlengineer.training.search import Evaluator, run_search
from mlengineer.training.validation import choose_validation


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + X[:, 2] * X[:, 3] + 0.1 * rng.normal(size=n)


def _kept_fit(params: dict, *, units: int = 30, keep: bool = True):
    X, y = _data(2500)
    task = make_task(pd.Series(y), "regression")
    ctx = FitContext(task=task, n_jobs=1, max_units=units, keep_training=keep)
    model = get_family("lightgbm").fit(X[:2000], y[:2000], ctx, params, X[2000:], y[2000:])
    return model, X, y, task


def test_a_kept_lightgbm_fit_goes_on_at_a_larger_step_and_a_refit_repeats_it() -> None:
    model, X, y, task = _kept_fit({"learning_rate": 0.05})
    assert model.resumable and model.best_iteration == 30  # stopped by the cap, still improving
    out = model.resume(40, learning_rate=0.075, deadline=Deadline(None))
    assert 30 < model.best_iteration <= 70 and model.rounds_run >= model.best_iteration
    assert model.estimator.current_iteration() == model.best_iteration  # rounds after the best rolled back
    # its answer for the validation rows is what it predicts for them
    np.testing.assert_allclose(out, model.predict_raw(X[2000:]), rtol=1e-9, atol=1e-9)
    # a fit from scratch with the step changed at the same round grows the same trees
    again = get_family("lightgbm").fit(X[:2000], y[:2000], FitContext(task=task, n_jobs=1), {
        "learning_rate": 0.05, "learning_rate_after": [30, 0.075], "n_estimators": model.best_iteration})
    np.testing.assert_allclose(again.predict_raw(X), model.predict_raw(X), rtol=1e-6, atol=1e-6)
    assert again.params["learning_rate_after"] == [30, 0.075]  # kept for the refit's own refits


def test_a_lightgbm_fit_waits_longer_the_more_rounds_it_has_run() -> None:
    """Early stopping's patience is at least a twentieth of the rounds run: a slow late gain hidden by the
    validation loss's noise for longer than the step's patience (20 rounds at 0.25) is still found."""
    X, y = _data(3000)
    task = make_task(pd.Series(y), "regression")
    model = get_family("lightgbm").fit(X[:2000], y[:2000], FitContext(task=task, n_jobs=1),
                                       {"learning_rate": 0.25, "num_leaves": 3, "min_data_in_leaf": 5}, X[2000:], y[2000:])
    b, Xv, yv = model.estimator, X[2000:], y[2000:]
    out = np.cumsum([b.predict(Xv, start_iteration=i, num_iteration=1) for i in range(b.current_iteration())], axis=0)
    loss = np.sqrt(np.mean((out - yv) ** 2, axis=1))
    best = model.best_iteration
    assert best == b.current_iteration() == int(np.argmin(loss)) + 1  # the rounds after the best dropped
    # before its best round, a stretch of more than 20 rounds without a new least loss: a fixed patience had
    # stopped there
    least_at = [int(np.argmin(loss[: r + 1])) for r in range(best)]
    assert max(r - at for r, at in enumerate(least_at)) >= 20
    assert model.rounds_run - best == max(20, model.rounds_run // 20)  # the patience it waited after the best


def test_a_released_fit_predicts_the_same_and_cannot_go_on() -> None:
    model, X, _, _ = _kept_fit({"learning_rate": 0.1})
    before = model.predict_raw(X)
    model.release()
    assert not model.resumable
    np.testing.assert_array_equal(model.predict_raw(X), before)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_raw(X), before)
    plain, _, _, _ = _kept_fit({"learning_rate": 0.1}, keep=False)  # a refit keeps nothing to go on
    assert not plain.resumable


def test_a_transformed_target_goes_on_in_its_own_scale() -> None:
    model, X, _, _ = _kept_fit({"learning_rate": 0.05, "target_transform": "power"})
    assert model.resumable
    out = model.resume(20, learning_rate=None, deadline=Deadline(None))
    assert model.best_iteration == model.inner.best_iteration > 30
    np.testing.assert_allclose(out, model.predict_raw(X[2000:]), rtol=1e-9, atol=1e-9)


def _evaluator() -> Evaluator:
    """Four classes set by the signs of products of columns, five folds, LightGBM's costs fixed so that a
    small step runs out of rounds at the plan's cap."""
    load_all()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 5))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) * 2 + (X[:, 2] * X[:, 3] > 0).astype(int)
    task = make_task(pd.Series(np.array(list("abcd"))[y]), "multiclass")
    validation = choose_validation(y, mode="kfold", seed=0, stratify=True)
    evaluate = Evaluator(X, y, validation, FitContext(task=task, n_jobs=1), get_metric("log_loss", task.kind))
    evaluate.costs = {"lightgbm": FamilyCost(fixed=0.01, unit=0.01, rows=1200)}
    return evaluate


def test_a_candidate_fitted_further_takes_its_place_charged_the_rounds_it_added() -> None:
    evaluate = _evaluator()
    old = evaluate("lightgbm", {"learning_rate": 0.03}, name="lightgbm_1", phase="portfolio", limit=2.0)
    assert ran_out(old)
    models, loss, before = list(old.models), old.loss, [m.rounds_run for m in old.models]
    new = resume_candidate(evaluate, old, 3.0, name="lightgbm_1+")
    assert new is not None and new.phase == "continued" and new.status == "ok"
    assert new.models == models and not old.models and old.status == "continued as lightgbm_1+"
    assert new.loss < loss and new.best_iteration > old.best_iteration
    assert new.params["learning_rate_after"] == [old.best_iteration, pytest.approx(RESUME_RATE * 0.03)]
    # its output for each fold's validation rows is what its fold model predicts for them
    for m, (_, va) in zip(new.models, evaluate.validation.folds, strict=True):
        np.testing.assert_allclose(new.valid_pred[evaluate.position[va]], m.predict_raw(evaluate.X[va]),
                                   rtol=1e-9, atol=1e-9)
    # charged the rounds added at the probed costs: 0.01 s a round on a fold's 1,200 rows, one fold after another
    added = sum(m.rounds_run for m in new.models) - sum(before)
    assert added > 0 and new.work == pytest.approx(0.03 + 0.01 * added)
    assert new.work <= 3.0 + 0.03
    # too few seconds to add a tenth of its rounds: not continued
    assert resume_candidate(evaluate, new, 0.05, name="lightgbm_1++") is None and new.status == "ok"
    # continued again: at the same later step, and the refit still changes it at the first continuation's round
    switch = [m.params["learning_rate_after"] for m in new.models]
    newer = resume_candidate(evaluate, new, 2.0, name="lightgbm_1++")
    assert newer is not None and newer.params["learning_rate_after"] == new.params["learning_rate_after"]
    assert [m.params["learning_rate_after"] for m in newer.models] == switch


def test_the_search_spends_the_seconds_left_on_the_leader_that_ran_out_the_same_each_run() -> None:
    def search() -> list[Candidate]:
        return run_search(_evaluator(), clock=WorkClock(10.0), configs=[("lightgbm", {"learning_rate": 0.02})]).candidates

    first = search()
    assert [(c.name, c.phase) for c in first] == [("lightgbm_1", "portfolio"), ("lightgbm_1+", "continued")]
    assert first[0].status == "continued as lightgbm_1+" and first[1].status == "ok"
    assert sum(c.work for c in first) <= 10.0
    # the rounds added make the leader's refit on all rows dearer: the seconds left still cover it
    assert 10.0 - sum(c.work for c in first) >= 0.9 * first[1].refit_seconds(1.25)
    assert all(not m.resumable for c in first for m in c.models)  # nothing kept once the search is done
    again = search()
    assert [(c.name, c.loss, c.best_iteration) for c in again] == [(c.name, c.loss, c.best_iteration) for c in first]


def test_the_last_phase_continues_only_a_leader_that_ran_out() -> None:
    asked: list[str] = []

    def cand(name: str, loss: float, best: int) -> Candidate:
        c = Candidate(name=name, family="lightgbm", params={}, loss=loss, best_iteration=best)
        c.models = [SimpleNamespace(rounds_run=100, units_cap=100)]  # what ran_out reads: stopped by the cap
        return c

    _continue(lambda c, **_: asked.append(c.name), [cand("a", 1.0, 98), cand("b", 0.5, 40)])
    assert asked == []  # the leader converged before its cap
    _continue(lambda c, **_: asked.append(c.name), [cand("a", 1.0, 40), cand("b", 0.5, 99)])
    assert asked == ["b"]


def test_a_longer_run_goes_on_from_the_rounds_it_ran_where_its_models_can() -> None:
    def cand(name: str, loss: float, work: float) -> Candidate:
        c = Candidate(name=name, family="lightgbm", params={}, loss=loss, work=work, best_iteration=99)
        c.models = [SimpleNamespace(rounds_run=100, units_cap=100, resumable=True)]
        return c

    candidates = [cand("lightgbm_1", 1.0, 5.0)]
    asked: list[tuple[str, float]] = []

    def resume(c: Candidate, at_most: float) -> Candidate:
        asked.append((c.name, at_most))
        new = cand(f"{c.name}+", c.loss - 0.1, at_most)  # took all it was given, still running out
        c.status = "continued"
        candidates.append(new)
        return new

    def run(*_: object, **__: object) -> None:
        raise AssertionError("fitted afresh, not continued")

    _longer(run, candidates, total=60.0, resume=resume)
    # twice its planned seconds more (three times in all), then more while it leads and runs out, all its
    # rounds within half the search
    assert asked == [("lightgbm_1", 10.0), ("lightgbm_1+", LONGER_SHARE * 60.0 - 15.0)]


def test_the_last_further_rounds_take_the_refit_time_where_no_refit_fits() -> None:
    def search(after: float) -> list[Candidate]:
        return run_search(_evaluator(), clock=WorkClock(10.0), configs=[("lightgbm", {"learning_rate": 0.02})],
                          rows_ratio=None, after=after).candidates

    alone, with_after = search(0.0), search(3.0)
    # no refit is planned (rows_ratio None): the three seconds after the search go to more rounds
    assert with_after[1].work > alone[1].work + 2.0 and sum(c.work for c in with_after) <= 10.0 + 3.0 + 0.03  # and a candidate's overhead
    assert with_after[1].loss < alone[1].loss
