"""A network the plan stopped at its cap on epochs goes on where it stopped (``MLPModel.resume``,
``models/_mlp_loop.py``): the same epochs in one fit or in two give the same network, its answer for the
validation rows is what it predicts for them, a refit replays its step's drops, and a released or pickled fit
keeps nothing to go on."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlengineer.tasks import make_task
from mlengineer.training.models import FitContext, get_family
from mlengineer.training.models.base import Deadline

pytest.importorskip("torch")


def _data(n: int = 900, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) * 2 + (X[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _fit(units: int | None, *, keep: bool = True, family: str = "mlp", **params):
    X, y = _data()
    task = make_task(pd.Series(np.array(list("abcd"))[y]), "multiclass")
    ctx = FitContext(task=task, n_jobs=1, max_units=units, keep_training=keep, seed=3)
    model = get_family(family).fit(X[:700], y[:700], ctx, {"hidden": 32, "layers": 2, "dropout": 0.1, **params},
                                   X[700:], y[700:])
    return model, X


@pytest.mark.parametrize("family", ["mlp", "tabm"])
def test_a_network_fitted_in_two_goes_is_the_network_fitted_in_one(family: str) -> None:
    whole, X = _fit(12, family=family)
    first, _ = _fit(5, family=family)
    assert first.resumable and first.rounds_run == 5
    out = first.resume(7, learning_rate=None, deadline=Deadline(None))
    assert first.rounds_run == whole.rounds_run == 12
    assert first.best_iteration == whole.best_iteration
    np.testing.assert_array_equal(first.predict_raw(X), whole.predict_raw(X))
    np.testing.assert_allclose(out, first.predict_raw(X[700:]), rtol=1e-7, atol=1e-9)
    assert first.params["lr_drops"] == whole.params["lr_drops"]


def test_a_network_goes_on_from_its_last_epoch_and_keeps_its_best() -> None:
    model, X = _fit(8, lr=0.05)  # a large step: the validation loss turns, the best epoch is not the last
    before = model.predict_raw(X[700:])
    model.resume(30, learning_rate=None, deadline=Deadline(None))
    assert model.rounds_run > 8 and model.best_iteration <= model.rounds_run
    if model.best_iteration <= 8:  # no epoch after the first fit did better: the same best weights
        np.testing.assert_array_equal(model.predict_raw(X[700:]), before)


def test_a_network_that_stopped_early_cannot_go_on_and_a_released_one_predicts_the_same() -> None:
    stopped, _ = _fit(None, lr=0.05)  # up to 200 epochs: early stopping ends it
    assert stopped.rounds_run < 200 and not stopped.resumable
    model, X = _fit(6)
    before = model.predict_raw(X)
    model.release()
    assert not model.resumable
    np.testing.assert_array_equal(model.predict_raw(X), before)
    kept, _ = _fit(6)
    copy = pickle.loads(pickle.dumps(kept))  # a bundle keeps the network, not its training state
    assert not copy.resumable and kept.resumable
    np.testing.assert_array_equal(copy.predict_raw(X), before)
    plain, _ = _fit(6, keep=False)
    assert not plain.resumable


def _search_parts(hidden: int = 32):
    from mlengineer.metrics import get_metric
    from mlengineer.training.models import load_all
    from mlengineer.training.plan import FamilyCost
    from mlengineer.training.search import Evaluator
    from mlengineer.training.validation import choose_validation

    load_all()
    X, y = _data(1200)
    task = make_task(pd.Series(np.array(list("abcd"))[y]), "multiclass")
    validation = choose_validation(y, mode="holdout", seed=0, stratify=True)
    evaluate = Evaluator(X, y, validation, FitContext(task=task, n_jobs=1), get_metric("log_loss", task.kind))
    # an epoch priced at 0.05 s: a candidate of a few planned seconds stops at its cap while improving
    params = {"hidden": hidden, "layers": 2, "dropout": 0.0, "lr": 3e-4}
    evaluate.costs = {"mlp": FamilyCost(fixed=0.01, unit=0.05, rows=960, params=dict(params)),
                      "linear": FamilyCost(fixed=0.05, unit=0.0, rows=960)}
    return evaluate, params


def test_the_search_goes_on_with_a_leading_network_that_ran_out_the_same_each_run() -> None:
    from mlengineer.training.clock import WorkClock
    from mlengineer.training.search import run_search

    def search():
        evaluate, params = _search_parts()
        # a linear model first: the network's turn is capped at a fifth of the search, and it runs out
        return run_search(evaluate, clock=WorkClock(12.0), configs=[("linear", {}), ("mlp", params)]).candidates

    first = search()
    names = [(c.name, c.phase) for c in first]
    assert names[:3] == [("linear_1", "portfolio"), ("mlp_1", "portfolio"), ("mlp_1+", "continued")]
    went_on = first[2]
    assert first[1].status == "continued as mlp_1+" and went_on.best_iteration > 60
    assert went_on.models[0].rounds_run > 60  # the 60 epochs of the first turn, then more of the same fit
    assert went_on.predict_ms_per_row == first[1].predict_ms_per_row  # more epochs, the same network to predict
    assert sum(c.work for c in first) <= 12.0 + 0.1
    assert all(not m.resumable for c in first for m in c.models)  # nothing kept once the search is done
    again = search()
    assert [(c.name, c.loss, c.best_iteration) for c in again] == [(c.name, c.loss, c.best_iteration) for c in first]


def test_a_family_far_behind_keeps_no_time_back_for_its_refit() -> None:
    from mlengineer.training.candidate import Candidate
    from mlengineer.training.clock import WorkClock
    from mlengineer.training.search import _Search

    evaluate, _ = _search_parts()
    search = _Search(evaluate, WorkClock(60.0), 1.25, None)
    null = search.null
    lead = Candidate(name="mlp_1", family="mlp", params={}, loss=0.2 * null, work=5.0, status="ok")
    near = Candidate(name="lightgbm_1", family="lightgbm", params={}, loss=0.25 * null, work=2.0, status="ok")
    far = Candidate(name="xgboost_1", family="xgboost", params={}, loss=0.45 * null, work=2.0, status="ok")
    for c in (lead, near, far):
        c.fit_seconds, c.models = c.work, [SimpleNamespace(rounds_run=None)]
    search.candidates += [lead, near, far]
    # xgboost is 0.25 of the leader's way from a constant answer behind it (more than FOCUS_SHARE): no refit
    # kept for; LightGBM within it
    assert [c.name for c in search.reserved()] == ["mlp_1", "lightgbm_1"]


def test_a_first_run_continues_the_leader_only_as_far_as_its_real_seconds_allow_and_a_rerun_repeats_it() -> None:
    import time

    from mlengineer.training.clock import WorkClock
    from mlengineer.training.search import HELD_SHARES, _Search

    def leader(clock: WorkClock, end_in: float | None):
        evaluate, params = _search_parts()
        search = _Search(evaluate, clock, None, None)
        cand = search.run("mlp", params, "portfolio")
        assert cand is not None and cand.models[0].resumable
        clock.pace = lambda: 1.0  # type: ignore[method-assign]  # a planned second takes a real one here
        if end_in is not None:  # the held end: this many planned seconds of what is left fit before it
            clock.end = time.perf_counter() + end_in
        left = clock.left()
        return search, cand, left

    # the real clock leaves room for 0.6 of the planned seconds left: the continuation takes half of them
    clock = WorkClock(6.0, hold=True)
    search, cand, left = leader(clock, None)
    clock.end = time.perf_counter() + 0.6 * left
    calls = clock.calls
    new = search.resume(cand, last=True)
    assert new is not None and new.work <= 0.5 * left + 0.05
    assert clock.stops == [calls, calls + 1]  # the whole and 0.7 refused, 0.5 taken
    # a rerun given those stops answers the same at the same calls, whatever its clock says
    again = WorkClock(6.0, stops=clock.stops)
    search2, cand2, _ = leader(again, None)
    new2 = search2.resume(cand2, last=True)
    assert new2 is not None and (new2.work, new2.loss) == (new.work, new.loss)
    # no room at all: not continued, every share asked
    late = WorkClock(6.0, hold=True)
    search3, cand3, _ = leader(late, 0.0)
    calls = late.calls
    assert search3.resume(cand3, last=True) is None and late.stops == list(range(calls, calls + len(HELD_SHARES)))
