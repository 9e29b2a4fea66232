"""The search's phases: the portfolio's turns, leaving out families far behind (``_portfolio``, ``is_behind``);
more rounds for a booster that ran out of them (``_longer``); then Optuna's TPE on the families that did best
(``_tune``), leaving out those far behind (``is_useful``, ``is_behind``); last, the seconds too few for another
candidate spent on the leader's further rounds where it ran out of them (``_continue``), and a leading network
fitted again from other random starts where the seconds allow (``_restart``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..tasks import Task
from .candidate import Candidate
from .clock import WorkClock
from .models import FAMILIES

__all__ = ["FOCUS_RATIO", "FOCUS_SHARE", "LONGER_FACTOR", "LONGER_SHARE", "RESTARTS", "STILL_IMPROVING", "USEFUL_SHARE",
           "is_behind", "is_useful", "ran_out"]

#: a candidate whose fits all stopped at the plan's cap on rounds with their best round among the last 20% of
#: those it ran gets more, before tuning, up to LONGER_FACTOR times its planned seconds (at most LONGER_SHARE
#: of the search): boosting that stops for lack of time rather than by early stopping (``_longer``)
STILL_IMPROVING = 0.8
LONGER_FACTOR = 3.0
LONGER_SHARE = 0.5
#: a candidate that got less than this share of the best one's way from a constant answer to its loss is not
#: tuned and no time is kept back for its refit (``is_useful``)
USEFUL_SHARE = 0.5
#: a family whose best candidate gives up more than this share of the leader's way from a constant answer gets
#: no more turns once it had its first: neither its further portfolio configurations nor tuning (``is_behind``)
FOCUS_SHARE = 0.1
#: nor does a family whose best is more than this many times as far from a perfect answer as the leader: on
#: car's decision table the network's validation log loss was 0.0104 and the boosters' 0.032-0.059, only 3% of
#: the way from a constant answer behind it (0.85), and the boosters' second configurations took the time that
#: the network's tuning would have had
FOCUS_RATIO = 2.0
#: the most other random starts of a leading network that keeps its fold models (``_restart``)
RESTARTS = 4


def is_useful(c: Candidate, candidates: list[Candidate], null: float) -> bool:
    """Whether ``c`` got at least ``USEFUL_SHARE`` of the best of ``candidates``' way from a constant answer
    (loss ``null``, ``Evaluator.null_loss``) to its loss: the rest (a linear model on poker hands, 0.98 log
    loss against 0.54 and 0.99 for the classes' shares) is neither worth tuning nor time kept back for its
    refit."""
    if c.status != "ok":
        return False
    best = min(x.loss for x in candidates if x.status == "ok")
    # a metric a constant answer has no value for (nan) measures nothing: every candidate counts
    return not np.isfinite(null) or best >= null or null - c.loss >= USEFUL_SHARE * (null - best)


def is_behind(family: str, candidates: list[Candidate], null: float, perfect: float | None = None) -> bool:
    """Whether ``family``'s best candidate is more than ``FOCUS_SHARE`` of the best candidate's way from a
    constant answer (loss ``null``) behind it: on vehicle's silhouettes the network leads (0.359 validation log
    loss against 0.475 for the best booster, 1.39 for the classes' shares), and the boosters' second
    configurations took the time the network's would have used. With ``perfect`` (the loss of the true answer,
    ``Evaluator.perfect_loss``), also whether it is more than ``FOCUS_RATIO`` times as far from that as the best
    (car: 0.032 against 0.0104). False while the family has no working candidate, or where a constant answer
    measures nothing."""
    ok = [c for c in candidates if c.status == "ok"]
    mine = [c.loss for c in ok if c.family == family]
    if not mine or not np.isfinite(null):
        return False
    best = min(c.loss for c in ok)
    if not best < null:
        return False
    if min(mine) - best > FOCUS_SHARE * (null - best):
        return True
    return perfect is not None and np.isfinite(perfect) and min(mine) - perfect > FOCUS_RATIO * (best - perfect)


def _portfolio(run: Callable[[str, dict[str, Any], str], Candidate | None],
               configs: list[tuple[str, dict[str, Any]]], candidates: list[Candidate], null: float,
               perfect: float | None = None) -> None:
    """The portfolio's configurations in turn; after its first, a family's configuration is left out while the
    family is far behind the best (``is_behind``), and a family that ``follows`` another is left out while that
    one is."""
    tried: set[str] = set()
    for family_name, params in configs:
        follows = getattr(FAMILIES.get(family_name), "follows", "")
        if (family_name in tried or follows) and is_behind(follows or family_name, candidates, null, perfect):
            continue
        tried.add(family_name)
        run(family_name, params, "portfolio")


def ran_out(cand: Candidate) -> bool:
    """True when a booster's (or network's) fits all stopped at the plan's cap on rounds while still
    improving: its best round among the last ``1 - STILL_IMPROVING`` of those it ran."""
    if cand.status != "ok" or not cand.models or not FAMILIES[cand.family].early_stopping or not cand.best_iteration:
        return False
    if cand.max_rounds is not None:  # cut for a latency limit: more rounds would only be cut again
        return False
    runs = [m.rounds_run for m in cand.models]
    caps = [getattr(m, "units_cap", None) for m in cand.models]
    if any(r is None or c is None or r < c for r, c in zip(runs, caps, strict=True)):
        return False
    return cand.best_iteration >= STILL_IMPROVING * float(np.mean([r for r in runs if r is not None]))


def _longer(run: Callable[..., Candidate | None], candidates: list[Candidate], *, total: float,
            resume: Callable[..., Candidate | None] | None = None) -> None:
    """More rounds for the best candidate while it runs out of them (``ran_out``), before Optuna's turn, to
    ``LONGER_FACTOR`` times its planned seconds (all its rounds at most ``LONGER_SHARE`` of the search), as
    long as each longer one is the new best and still runs out: its own models fitted further where they can
    go on (``resume``, ``continuation.py``: the rounds it ran are not fitted again), else the same
    configuration fitted afresh."""
    tried: set[str] = set()
    spent: dict[str, float] = {}  # the planned seconds of all a continued candidate's rounds
    while True:
        ok = [c for c in candidates if c.status == "ok"]
        if not ok:
            return
        best = min(ok, key=lambda c: c.loss)
        so_far = spent.get(best.name, best.work)
        if best.name in tried or not ran_out(best) or so_far >= LONGER_SHARE * total:
            return
        tried.add(best.name)
        if resume is not None and all(m.resumable for m in best.models):
            new = resume(best, min((LONGER_FACTOR - 1) * so_far, LONGER_SHARE * total - so_far))
            if new is not None:
                spent[new.name] = so_far + new.work
        else:
            params = {k: v for k, v in best.params.items() if k != "_traceback"}
            new = run(best.family, params, "longer", at_least=min(LONGER_FACTOR * so_far, LONGER_SHARE * total))
        if new is None:
            return


def _continue(resume: Callable[..., Candidate | None], candidates: list[Candidate]) -> None:
    """The best candidate fitted further (``continuation.py``) where it ran out of rounds (``ran_out``), once,
    with the planned seconds the other phases left (``last``: and those held back for refits none will use)."""
    ok = [c for c in candidates if c.status == "ok"]
    if ok and ran_out(best := min(ok, key=lambda c: c.loss)):
        resume(best, last=True)


def _restart(restart: Callable[[Candidate, int], Candidate | None], candidates: list[Candidate]) -> None:
    """The leader fitted again from other random starts, up to ``RESTARTS`` times while the planned seconds
    hold another, where its family keeps its fold models (``ModelFamily.bag_folds``): each start is k more
    networks whose noise the ensemble averages out, where a booster's second seed learns much the same trees."""
    ok = [c for c in candidates if c.status == "ok"]
    if not ok or not FAMILIES[(best := min(ok, key=lambda c: c.loss)).family].bag_folds or len(best.models) < 2:
        return
    for n in range(1, RESTARTS + 1):
        if restart(best, n) is None:
            return


def _tune(run: Callable[[str, dict[str, Any], str], Candidate | None], candidates: list[Candidate], *,
          clock: WorkClock, reserve: Callable[[], float], seed: int, n_rows: int, task: Task,
          useful: Callable[[Candidate], bool]) -> None:
    """Optuna TPE (seeded) on the two tuned families with the best ``useful`` candidates, taking turns, until
    the planned time is spent."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best: dict[str, float] = {}
    for c in candidates:
        if useful(c):
            best[c.family] = min(best.get(c.family, np.inf), c.loss)
    tunable = [f for f in sorted(best, key=best.__getitem__) if f in FAMILIES and FAMILIES[f].tuned][:2]
    if not tunable:
        return
    studies = {f: optuna.create_study(direction="minimize",
                                      sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
               for f in tunable}
    turn, misses = 0, 0
    while clock.left() - reserve() > 0 and misses < len(tunable) and not clock.overrun():
        family_name = tunable[turn % len(tunable)]
        turn += 1
        study = studies[family_name]
        trial = study.ask()
        params = FAMILIES[family_name].search_space(trial, task, n_rows)
        kind = _best_transform(candidates, family_name)
        if kind:  # the family did best on a transformed target: its tuned configurations keep that
            params["target_transform"] = kind
        cand = run(family_name, params, "tuning")
        if cand is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            misses += 1
            continue
        misses = 0
        if cand.status == "ok":
            study.tell(trial, cand.loss)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _best_transform(candidates: list[Candidate], family_name: str) -> str | None:
    """The target transform of the family's best candidate so far (None: it did best untransformed)."""
    ok = [c for c in candidates if c.status == "ok" and c.family == family_name]
    return min(ok, key=lambda c: c.loss).params.get("target_transform") if ok else None
