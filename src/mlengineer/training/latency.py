"""One row's time: how the search measures it (``latency_ms``), and a booster over the user's latency limit
cut to the rounds that answer one row within it (``cut_to_limit``), instead of refused.

A boosted model's one-row time is mostly its trees, about in proportion to their number; its first rounds
are a model of their own (the rounds that come later only correct the earlier ones). So where the user set
``max_predict_ms_per_row`` and a candidate of a family that can be cut (``FittedModel.with_rounds``:
LightGBM, CatBoost) answers slower, its fold models keep their first rounds, as many as the limit allows,
are scored again on their validation rows, and compete as any candidate; the refit on all rows gets no
more rounds than that (``Candidate.max_rounds``). Without this, a limit of 0.1 ms left only linear models.

    cut = cut_to_limit(models, limit, measure, latency)   # (fold models, latency ms, rounds) or None

The rounds are found by a few measured steps (the first allowing for LightGBM's cut booster being timed
through the compiled walk the bundle will use, faster than the search's first timing), each remembered per
rounds in the cost cache, so a seeded run on the same machine repeats its choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .models import FittedModel

__all__ = ["LATENCY_ROWS", "cut_to_limit", "latency_ms"]

#: validation rows a candidate's one-row time is measured on, each once: a tree's path (and whether the CPU
#: guesses its branches) differs from row to row, and one row repeated answers faster than rows in turn
#: (a 2,600-tree booster: 42 us for one row repeated, 169 us for rows in turn)
LATENCY_ROWS = 16


def latency_ms(model: Any, rows: np.ndarray, *, repeats: int = 3) -> float:
    """Milliseconds one row's prediction takes: the median over ``rows`` predicted one at a time, each once,
    after one warm-up call; where ``rows`` is a single row, the median over ``repeats`` calls.
    Through the family's ``row_function`` where it has one (what a bundle's row path calls, so the ensemble's
    aim counts what a member costs there), else ``model.predict_raw``."""
    make = getattr(model, "row_function", None)
    fn = (make() if callable(make) else None) or model.predict_raw
    fn(rows[:1])  # the first call may build caches (a forest's packed trees)
    times = []
    for i in range(repeats if len(rows) == 1 else len(rows)):
        one = rows[i:i + 1] if len(rows) > 1 else rows
        t0 = time.perf_counter()
        fn(one)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


#: measured steps at most: each aims a little under the limit, from the last step's time per round
STEPS = 5
#: the share of the limit each step aims for (a row's fixed cost does not shrink with the rounds)
AIM = 0.9
#: how much faster a cut model may answer than the candidate was timed: LightGBM's cut trees answer through
#: the compiled walk, the search timed its candidate through LightGBM's own call (1.1-1.8x slower)
FASTER_CUT = 2.0


def cut_to_limit(models: list[FittedModel], limit: float, measure: Callable[[FittedModel, int], float],
                 latency: float) -> tuple[list[FittedModel], float, int] | None:
    """``models`` (a candidate's fold models, timed at ``latency`` ms) cut to the most rounds whose one-row
    time (``measure``: ms of the first fold model cut to that many rounds) is within ``limit`` ms; None where
    the family cannot be cut or even one round is too slow. The first step keeps every round the candidate
    could keep were its cut form ``FASTER_CUT`` times faster (all of them where it is that close to the
    limit), so that a booster far over it is not repacked whole for nothing (~1 s for 5,000 trees)."""
    best = max((m.best_iteration or 0) for m in models)
    rounds = min(best, int(best * FASTER_CUT * limit / latency))
    for _ in range(STEPS):
        if rounds < 1:
            return None
        cut = [m.with_rounds(rounds) for m in models]
        if any(c is None for c in cut):
            return None
        latency = measure(cut[0], rounds)  # type: ignore[arg-type]
        if latency <= limit:
            return cut, latency, rounds  # type: ignore[return-value]
        rounds = min(rounds - 1, int(rounds * AIM * limit / latency))
    return None
