"""Going on with the best booster or network where it ran out of rounds: the planned seconds the search has left,
but too few for another candidate, spent on more rounds of the leader's own fold models (``FittedModel.resume``;
a network goes on from its last epoch with its optimiser's state, ``models/_mlp_loop.py``).

A large table's first booster can take half the search and still stop at the plan's cap while improving
(poker hands: 1,080-1,527 rounds in 24 planned seconds, validation loss falling to the last round); the
families after it take their turns, and what is left fits no other candidate of its cost, so it went unused,
as did the refit's share of the budget where the leader's refit on all rows does not fit in it (poker's does
not: ``search._Search.resume`` hands that share to the last continuation). Fitting that booster from its best
round on costs only the rounds added (``phases._longer`` goes on the same way): the search's fits
keep their training and validation sets (``FitContext.keep_training``) while their candidate leads, and are
released as soon as another leads (``release``). The rounds added step ``RESUME_RATE`` times further: a booster
that was still improving at its cap learns more per round at a larger step, and early stopping on the same
validation rows keeps the step honest. The continued candidate replaces the old one (its models are the same
objects, fitted further), charged the added rounds at the family's probed costs, so a seeded run repeats; its
refit on all rows repeats the step's change (``learning_rate_after``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .candidate import Candidate
from .clock import fit_safety
from .evaluator import Evaluator
from .models import FAMILIES
from .models.base import Deadline
from .plan import CANDIDATE_OVERHEAD, units_run

__all__ = ["MIN_GAIN", "RESUME_RATE", "release", "resume_candidate"]

#: the learning rate of the added rounds, as a multiple of the candidate's (poker hands, 400 rounds added
#: after 1,080 at 0.2: test log loss 0.261 at 0.2, 0.252 at 0.3, 0.251 at 0.4)
RESUME_RATE = 1.5
#: a continuation is worth it only where it may add at least this share of the rounds the candidate ran
MIN_GAIN = 0.1


def release(candidates: list[Candidate], keep: Candidate | None = None) -> None:
    """Drop what every candidate's fits kept to go on (``FitContext.keep_training``), but ``keep``'s."""
    for c in candidates:
        if c is not keep:
            for m in c.models:
                m.release()


def resume_candidate(evaluate: Evaluator, cand: Candidate, limit: float, name: str) -> Candidate | None:
    """``cand`` fitted further within ``limit`` planned seconds, as a new candidate ``name`` (phase
    "continued") that takes its place: ``cand`` is left without models (they are the new one's). None where
    its models cannot go on or the seconds would add too few rounds (``MIN_GAIN``)."""
    cost, folds = cand.plan_cost, evaluate.validation.folds
    if cost is None or cand.valid_pred is None or not cand.models or not all(m.resumable for m in cand.models):
        return None
    fold_limit = limit / evaluate.waves(cand.family)
    have = [units_run(m) for m in cand.models]
    rows = [len(tr) for tr, _ in folds]
    extra = [(cost.max_units(cand.params, fold_limit + cost.seconds(cand.params, h, r), r) or 0) - h
             for h, r in zip(have, rows, strict=True)]
    if min(extra) < max(1, MIN_GAIN * max(have)):
        return None
    # the step of the added rounds: the one it changed to where it was continued before (the refit changes
    # once, at the first continuation's round), else RESUME_RATE times its own
    later, rate = cand.params.get("learning_rate_after"), cand.params.get("learning_rate")
    rate = float(later[1]) if later else None if rate is None else round(float(RESUME_RATE * rate), 6)
    starts = [m.best_iteration or h for m, h in zip(cand.models, have, strict=True)]

    def more(i: int) -> np.ndarray:
        m, t0 = cand.models[i], time.perf_counter()
        out = m.resume(extra[i], learning_rate=rate, deadline=Deadline(fit_safety(fold_limit)))
        m.units_cap = have[i] + extra[i]
        m.fit_seconds += time.perf_counter() - t0
        return out

    new = Candidate(name=name, family=cand.family, phase="continued", plan_cost=cost, fold_rows=cand.fold_rows,
                    params={**cand.params, **({"learning_rate_after": [int(np.mean(starts)), rate]}
                                               if rate and not later else {})})
    try:
        workers = evaluate.threads(cand.family)[0]
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                outs = list(pool.map(more, range(len(folds))))
        else:  # on this thread: another's OpenMP team would contend with this one's still spinning (4x slower)
            outs = [more(i) for i in range(len(folds))]
    except Exception as e:  # noqa: BLE001 - the models are half fitted further: neither candidate keeps them
        cand.status = f"failed: {type(e).__name__} while fitted further: {str(e).splitlines()[0][:120] if str(e) else ''}"
        cand.models, cand.valid_pred = [], None
        return None
    for m, start in zip(cand.models, starts, strict=True):
        if rate and not later:  # the refit on all rows changes its step where this fit did
            m.params = {**m.params, "learning_rate_after": [start, rate]}
    oof = cand.valid_pred.copy()
    for out, (_, va) in zip(outs, folds, strict=True):
        oof[evaluate.position[va]] = out
    added = [cost.seconds(cand.params, units_run(m), r) - cost.seconds(cand.params, h, r)
             for m, h, r in zip(cand.models, have, rows, strict=True)]
    new.work = CANDIDATE_OVERHEAD + sum(max(added[w:w + workers]) for w in range(0, len(added), workers))
    new.models = cand.models
    evaluate.score(new, [(m, 0.0) for m in new.models], oof)
    # the rows were not predicted again (the booster's own validation output): the first fit's time, scaled by
    # the rounds where a prediction grows with them, stands for a batch's
    grown = (new.best_iteration or 1) / max(cand.best_iteration or 1, 1) if FAMILIES[cand.family].rounds_predict else 1.0
    new.predict_ms_per_row = cand.predict_ms_per_row * grown
    cand.status, cand.models, cand.valid_pred = f"continued as {name}", [], None
    return new
