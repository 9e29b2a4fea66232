"""The search's clock: planned seconds to spend (``WorkClock``), and the few looks at the real clock that back
the plan up (``plan.py`` says how the plan's seconds are measured and remembered).

A safety stop reads the real clock: the search stops at ``SAFETY_SEARCH`` times its planned seconds, a fit
at 1.5 times that (``fit_safety``), and either is recorded as why a run may not repeat. A first run on a table
also holds its budget's real seconds (``WorkClock``'s ``hold``); where that stopped it is remembered with the
costs, and a rerun stops there too, so it repeats the first run.
"""

from __future__ import annotations

import math
import os
import time

__all__ = ["MAX_PACE", "SAFETY_SEARCH", "WorkClock", "budget_words", "fit_safety", "safety_factor"]

#: the search stops at this many times its planned seconds (``MLENGINEER_SAFETY_FACTOR`` overrides it; 0
#: turns the safety stops off), a fit at half as many times more (plus two seconds)
SAFETY_SEARCH = 2.0
#: the most real seconds a planned one is taken to cost where a first run holds its budget (``WorkClock.pace``)
MAX_PACE = 2.0


#: a fixed cost outside the training (loading libraries, the run store, saving) is named from this many seconds
FIXED_SAID_S = 0.3


def budget_words(trained_s: float, budget: float, fixed: dict[str, float]) -> str:
    """How the seconds of a training command went, for its last line: the training, which the time budget
    covers, then each fixed cost outside it (``fixed``: what, in words, to seconds; those under
    ``FIXED_SAID_S`` left out), e.g. "trained in 1.1 s (budget 1 s); outside it, loading the libraries 2.4 s
    and saving the bundle and recording the run 0.8 s"."""
    said = [f"{what} {s:.1f} s" for what, s in fixed.items() if s >= FIXED_SAID_S]
    words = f"trained in {trained_s:.1f} s (budget {budget:g} s)"
    if not said:
        return words
    listed = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"
    return f"{words}; outside it, {listed}"


def safety_factor() -> float:
    """How many times its planned seconds the search may run before the clock stops it; 0: never."""
    try:
        return max(float(os.environ.get("MLENGINEER_SAFETY_FACTOR", SAFETY_SEARCH)), 0.0)
    except ValueError:
        return SAFETY_SEARCH


def fit_safety(planned: float) -> float | None:
    """Seconds after which one fit planned to take ``planned`` gives up (``FitContext.time_limit``): a fit
    varies more than a whole search, so it may run 1.5 times the search's factor, plus two seconds."""
    factor = safety_factor()
    return None if factor == 0 else 1.5 * factor * planned + 2.0


class WorkClock:
    """Planned seconds: ``budget`` to spend, ``spent`` so far. ``overrun()`` is the one look at the real
    clock, asked before each candidate (the ``calls``-th time).

    With ``hold``, a first run on a table holds its budget in real seconds: ``overrun`` answers yes where the
    real clock, with what would start (``need`` planned seconds at the pace the run has kept so far,
    ``pace``), passes ``budget`` real seconds (and ``extra``) from the clock's start: the probes' own fits, the
    learners' first set-ups and a busy machine's slower fits take real seconds the plan does not see. The
    calls it answered yes are kept in ``stops`` and remembered with the costs; a run that reads them back
    (``stops`` given) answers yes at the same calls whatever its clock says, so it repeats the first run.
    Past that, only the safety stop (``SAFETY_SEARCH`` times the budget) reads the clock, and is recorded in
    ``deviations`` when it fires; with the safety factor 0 the clock is never read."""

    def __init__(self, budget: float, *, hold: bool = False, stops: list[int] | None = None) -> None:
        self.budget = max(budget, 1e-3)
        self.spent = 0.0
        self.start = time.perf_counter()
        factor = safety_factor()
        self.hard_end = self.start + factor * self.budget + 1.0 if factor else math.inf
        self.factor = factor
        self.deviations: list[str] = []
        #: the real end a first run holds (None: not held, or the stops are read back); never past the safety
        #: stop's (a factor under 1), which a first run then records as one of its stops
        self.end = min(self.start + self.budget, self.hard_end) if hold and factor and stops is None else None
        self.replay = None if stops is None else frozenset(stops)
        self.stops: list[int] = []
        self.calls = 0

    def left(self) -> float:
        return self.budget - self.spent

    def charge(self, seconds: float) -> None:
        self.spent += seconds

    def excuse(self, seconds: float) -> None:
        """Real seconds the safety stop does not count: a learner's first import, the probes' own fits (the
        real end a first run holds counts them)."""
        self.hard_end += seconds

    def pace(self) -> float:
        """Real seconds a planned one has taken so far in this run, 1 to ``MAX_PACE`` (1 until 1 s is spent)."""
        if self.spent < 1.0:
            return 1.0
        return min(max((time.perf_counter() - self.start) / self.spent, 1.0), MAX_PACE)

    def overrun(self, need: float = 0.0, extra: float = 0.0, pace: float | None = None) -> bool:
        """Whether ``need`` planned seconds started now would end past the held end (and ``extra``), at
        ``pace`` real seconds a planned one (by default the run's, ``pace()``); see the class."""
        call, now = self.calls, time.perf_counter()
        self.calls += 1
        if self.end is not None:  # a first run: its stops are remembered, so the safety stop is never needed
            stop = now + need * (self.pace() if pace is None else pace) > self.end + extra
        elif now > self.hard_end:
            why = (f"the search ran past {self.factor:g}x its planned {self.budget:.1f} s (the machine was slower "
                   "than its measured costs) and stopped early")
            if why not in self.deviations:
                self.deviations.append(why)
            return True
        else:
            stop = self.replay is not None and call in self.replay
        if stop:
            self.stops.append(call)
        return stop

    def real_left(self, until: float) -> float:
        """Planned seconds that fit, at the run's ``pace``, in the real ones left until ``until`` seconds after
        the start, where a first run holds its budget (``hold``); else infinite (the plan alone decides)."""
        return math.inf if self.end is None else (self.start + until - time.perf_counter()) / self.pace()
