"""The time-budgeted search.

First a portfolio of strong default configurations, one family after another in the order of their
``place`` (so every family gets a first try early), then Optuna's TPE on the tuned families that did best,
until the search's planned seconds are spent (``plan.py``: counted in work units at probed costs, not
read off the clock, so a seeded run repeats). Each candidate is scored the same way (``Evaluator``): fitted on each fold's
training rows, stopped early on its validation rows, and predicted on them, so every candidate has
out-of-fold predictions for ensemble selection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..tasks import Task
from .candidate import Candidate, refit_rounds_scale
from .clock import WorkClock
from .continuation import release, resume_candidate
from .evaluator import PARALLEL_FOLDS_CELLS, Evaluator
from .models import COST_REFERENCE, FAMILIES, load_all
from .phases import _continue, _longer, _portfolio, _restart, _tune, is_behind, is_useful

__all__ = ["PARALLEL_FOLDS_CELLS", "Candidate", "Evaluator", "SearchResult", "affordable", "portfolio",
           "refit_rounds_scale", "run_search"]

#: the most of the search's time one candidate may take
CANDIDATE_SHARE = 0.2
#: beyond this many rows the portfolio follows the families' ``place_large``
LARGE_ROWS = 20_000
#: from this many classes a family may take another place in the portfolio (``ModelFamily.place_many_classes``)
MANY_CLASSES = 10
#: the shares of its planned seconds a continuation takes, the first the clock lets end in time (``WorkClock``'s
#: hold: a first run asks the real clock, a rerun replays its answers): a network's epochs have cost 1.3 times
#: their plan, and a continuation of all the seconds left ended jungle chess's run at 62 s of 60
HELD_SHARES = (1.0, 0.7, 0.5, 0.35, 0.25)
#: the families whose first configuration is tried again on a transformed regression target, when the target
#: calls for one (``portfolio``'s ``target_transforms``); tuning then keeps the transform of the family's best
TRANSFORM_FAMILIES = ("lightgbm", "catboost")
#: a family whose warm-up (``ModelFamily.warm_up_s``) takes more than this share of the budget is left out of
#: the portfolio unless named: a 1 s budget spent 2-3 s importing torch for a network that never had a turn
WARM_UP_SHARE = 0.5


@dataclass
class SearchResult:
    candidates: list[Candidate]
    seconds: float

    @property
    def ok(self) -> list[Candidate]:
        return sorted((c for c in self.candidates if c.status == "ok"), key=lambda c: c.loss)


def portfolio(task: Task, n_rows: int, n_features: int, families: list[str] | None = None, *,
              feature_names: Sequence[str] | None = None,
              target_transforms: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The (family, params) pairs to try, in turns: every family's first configuration, then every
    family's second, and so on. ``families`` defaults to those with a place in the portfolio; the order
    is the families' place (for large data if ``n_rows`` is over ``LARGE_ROWS``), the unplaced last.
    With ``feature_names`` each family places itself for those features (a text family where text is).
    Each of ``target_transforms`` (regression: ``models/target.py``) adds the first configuration of each of
    ``TRANSFORM_FAMILIES`` fitted on the transformed target, right after the family's own first try."""
    registry = load_all()
    large = n_rows > LARGE_ROWS
    places: dict[str, float | None] = {
        f: fam.portfolio_place(large) if feature_names is None else fam.place_for(feature_names, large)
        for f, fam in registry.items()}
    if task.kind == "multiclass" and not large:
        places = _moved(places, registry, "place_multiclass")
        if len(task.classes) >= MANY_CLASSES:
            places = _moved(places, registry, "place_many_classes")
    default = [f for f in registry if places[f] is not None]
    unknown = [f for f in families or [] if f not in registry]
    if unknown:
        raise ConfigError(f"Unknown model family {unknown[0]!r}: choose from {', '.join(sorted(registry))}.")
    missing = [f for f in families or [] if not registry[f].available()]
    if families and len(missing) == len(families):
        raise ConfigError(f"The model family {missing[0]!r} cannot be used here: {registry[missing[0]].unavailable_reason()}")
    chosen = [f for f in (families or default) if registry[f].available()
              and registry[f].supports(task, n_rows, n_features)
              and not (feature_names is not None and registry[f].needs_column and places[f] is None)]
    if families and not chosen:  # refused before any fit, not after a search of nothing
        needs = "; ".join(f"{f} needs a {registry[f].needs_column} column" for f in families if registry[f].needs_column)
        raise ConfigError(f"None of the model families {', '.join(families)} suits this table ({task.kind}, {n_rows:,} "
                          f"rows{'; ' + needs if needs else ''}): name others in --families, or leave it out.")
    chosen.sort(key=lambda f: (places[f] is None, places[f] or 0))
    per_family = {f: registry[f].default_configs(task, n_rows, n_features) for f in chosen}
    out: list[tuple[str, dict[str, Any]]] = []
    depth = max((len(v) for v in per_family.values()), default=0)
    for i in range(depth):
        for f in chosen:
            if i < len(per_family[f]):
                out.append((f, per_family[f][i]))
                if i == 0 and f in TRANSFORM_FAMILIES:  # at once: the first turn may take the whole budget
                    out += [(f, {**per_family[f][0], "target_transform": kind}) for kind in target_transforms]
    return out


def affordable(configs: list[tuple[str, dict[str, Any]]], budget: float, *, named: bool
               ) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """``configs`` without the families whose warm-up takes more than ``WARM_UP_SHARE`` of ``budget`` (none
    when the user ``named`` the families, or when nothing else is left), and the words that say which went."""
    registry = load_all()
    dear = sorted({f for f, _ in configs if registry[f].warm_up_s > WARM_UP_SHARE * budget})
    kept = [(f, p) for f, p in configs if f not in dear]
    if named or not dear or not kept:
        return configs, ""
    cost = max(registry[f].warm_up_s for f in dear)
    one = len(dear) == 1
    return kept, (f"{', '.join(dear)} left out: loading {'its library' if one else 'their libraries'} alone takes "
                  f"about {cost:g} s of the {budget:g} s budget (a budget of {cost / WARM_UP_SHARE:g} s or more tries "
                  f"{'it' if one else 'them'}, as does naming {'it' if one else 'them'} in --families)")


def _moved(places: dict[str, float | None], registry: dict[str, Any], attr: str) -> dict[str, float | None]:
    """``places`` with each family that has a place moved to its ``attr`` place, where it has one."""
    return {f: getattr(registry[f], attr) if p is not None and getattr(registry[f], attr) is not None else p
            for f, p in places.items()}


@dataclass
class _Search:
    """One search's state: the candidates so far and the planned seconds, with the turns the phases ask for
    (``run`` a configuration, ``resume`` a candidate)."""

    evaluate: Evaluator
    clock: WorkClock
    rows_ratio: float | None
    on_candidate: Callable[[Candidate], None] | None
    #: planned seconds after the search that the refits may use (``selection.py``'s refit budget beyond it)
    after: float = 0.0
    candidates: list[Candidate] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    cost: dict[str, list[float]] = field(default_factory=dict)  # planned seconds of each family's candidates

    def __post_init__(self) -> None:
        self.total = self.clock.budget
        self.null = self.evaluate.null_loss()
        self.perfect = self.evaluate.perfect_loss()

    def useful(self, c: Candidate) -> bool:
        return is_useful(c, self.candidates, self.null)

    def behind(self, c: Candidate) -> bool:
        return is_behind(c.family, self.candidates, self.null, self.perfect)

    def reserved(self) -> list[Candidate]:
        """The best candidates whose refits the search keeps time for, as many as fit in 30% of it (one too dear
        alone keeps its search model: waiting for it would waste the time), none of a family far behind the
        leader (``is_behind``: it will weigh little in the ensemble, if at all; on jungle chess LightGBM's refit
        held back 6.5 planned seconds that the leading network's further epochs had used, and no refit did)."""
        kept: list[Candidate] = []
        if self.rows_ratio is None:
            return kept
        for c in sorted((c for c in self.candidates if self.useful(c) and not self.behind(c)), key=lambda c: c.loss)[:3]:
            if sum(k.refit_seconds(self.rows_ratio) for k in kept + [c]) <= 0.3 * self.total:
                kept.append(c)
        return kept

    def reserve(self, reserved: list[Candidate] | None = None) -> float:
        """Planned seconds kept back for the refits of ``reserved`` (by default: ``reserved()``)."""
        ratio, kept = self.rows_ratio, self.reserved() if reserved is None else reserved
        return 0.0 if ratio is None else sum(c.refit_seconds(ratio) for c in kept)

    def run(self, family_name: str, params: dict[str, Any], phase: str, at_least: float = 0.0,
            extra: float = 0.0) -> Candidate | None:
        """One configuration scored within the planned seconds it may take (with ``extra`` of those after the
        search); None where it would not finish."""
        clock, total = self.clock, self.total
        left = clock.left() - self.reserve() + extra
        seen = self.cost.get(family_name)
        # no candidate may eat the search: each gets a share, so that every family has its turn (a fit
        # stopped at its limit keeps the rounds it reached); a longer run of the best gets ``at_least``
        cap = max(CANDIDATE_SHARE * total, min(3.0, 0.5 * total), at_least)
        if phase == "tuning" and seen:
            cap = max(cap, 1.5 * min(seen))
        # until one candidate works, the next may take half the search (its family's ``lead_share``): the rest
        # goes to other families, which an ensemble needs more than a few more rounds of the first
        lead = FAMILIES[family_name].lead_share * total
        limit = min(left, cap) if any(c.status == "ok" for c in self.candidates) else min(left, max(cap, lead))
        guess = min(seen) if seen else 0.0
        if not seen and COST_REFERENCE in self.cost:  # a first try: guess from what the reference took on this data
            guess = min(min(self.cost[COST_REFERENCE]) * FAMILIES[family_name].relative_cost, cap)
        if clock.overrun(guess, extra) or (self.candidates and (left <= 0.02 * total or guess > left)):
            return None  # would not finish: leave the time to a cheaper family
        # a family's first candidate: its costs first (the probe imports the family where ``selection`` has not,
        # before the plan); the probe's real seconds are not the safety stop's
        t0 = time.perf_counter()
        clock.charge(self.evaluate.probe(family_name, params))
        clock.excuse(time.perf_counter() - t0)
        if self.candidates and not self.evaluate.affords(family_name, params, max(limit, 0.5)):  # the first always runs
            return None
        self.counts[family_name] = self.counts.get(family_name, 0) + 1
        cand = self.evaluate(family_name, params, name=f"{family_name}_{self.counts[family_name]}", phase=phase,
                             limit=max(limit, 0.5))
        self.cost.setdefault(family_name, []).append(cand.work)
        return self.added(cand)

    def restart(self, cand: Candidate, n: int) -> Candidate | None:
        """``cand``'s configuration from its ``n``-th other random start (``phases._restart``), where the planned
        seconds left, with those after the search (``after``), hold all that ``cand`` took; None where they do
        not. The refits still kept back for are those of families that refit: the search saw every row, so a
        network keeps its fold models (``selection._bagged``; one the latency aim does not allow is refit only
        where time is left)."""
        kept = self.reserved()
        refits = self.reserve([c for c in kept if not FAMILIES[c.family].bag_folds])
        if self.clock.overrun(cand.work, self.after) or cand.work > self.clock.left() - refits + self.after:
            return None
        params = {**{k: v for k, v in cand.params.items() if k != "_traceback"}, "start": n}
        # ``run`` takes the whole reserve off what is left: hand back what is not kept for refits, and ``after``
        return self.run(cand.family, params, "restart", at_least=cand.work, extra=self.reserve(kept) - refits + self.after)

    def resume(self, cand: Candidate, at_most: float = float("inf"), *, last: bool = False) -> Candidate | None:
        """``cand`` fitted further (``continuation.py``) within ``at_most`` planned seconds and those left; the
        ``last`` turn also takes the seconds held back for refits where no candidate's refit fits in them."""
        reserved = self.reserved()
        after = self.after if last and not reserved else 0.0
        left = min(self.clock.left() - self.reserve(reserved) + after, at_most)
        if self.rows_ratio is not None and any(c is cand for c in reserved):  # its refit grows with the rounds
            left /= 1.0 + cand.refit_seconds(self.rows_ratio) / max(cand.work, 1e-9)  # added: time for that too
        held = next((left * share for share in HELD_SHARES if not self.clock.overrun(left * share, after)), None)
        new = None if held is None else resume_candidate(self.evaluate, cand, held, name=f"{cand.name}+")
        return None if new is None else self.added(new)

    def added(self, cand: Candidate) -> Candidate:
        """``cand`` charged and kept; only the leader's fits keep their rows to go on (``continuation.py``)."""
        self.clock.charge(cand.work)
        self.clock.deviations += [cand.deviation] if cand.deviation else []
        self.candidates.append(cand)
        release(self.candidates, min((c for c in self.candidates if c.status == "ok"), key=lambda c: c.loss,
                                     default=None))
        if self.on_candidate is not None:
            self.on_candidate(cand)
        return cand


def run_search(
    evaluate: Evaluator,
    *,
    clock: WorkClock,
    configs: list[tuple[str, dict[str, Any]]],
    tune: bool = True,
    rows_ratio: float | None = 1.25,
    seed: int = 0,
    on_candidate: Callable[[Candidate], None] | None = None,
    after: float = 0.0,
    restarts: bool = False,
) -> SearchResult:
    """Evaluate the portfolio ``configs``, then tune the best families with Optuna, until ``clock`` (planned
    seconds, ``clock.WorkClock``) has none left; last, the seconds too few for another candidate go to the
    leader's further rounds where it ran out of them (``phases._continue``).

    With ``rows_ratio`` (all rows over one search model's rows), time is kept back for fitting the likely
    ensemble again on all rows: the refit time of the three best candidates so far; ``after`` planned seconds
    follow the search for the refits, which the leader's last further rounds take where none of those fits.
    With ``restarts`` (the search saw every row), a leader that keeps its fold models is fitted again from
    other random starts with the seconds left (``phases._restart``).
    """
    start = time.perf_counter()
    search = _Search(evaluate, clock, rows_ratio, on_candidate, after)
    candidates, null, perfect = search.candidates, search.null, search.perfect
    _portfolio(search.run, configs, candidates, null, perfect)
    if tune:
        _longer(search.run, candidates, total=search.total, resume=search.resume)
        _tune(search.run, candidates, clock=clock, reserve=search.reserve, seed=seed, n_rows=len(evaluate.y),
              task=evaluate.ctx.task,
              useful=lambda c: search.useful(c) and not search.behind(c))
        _continue(search.resume, candidates)
        if restarts:
            _restart(search.restart, candidates)
    release(candidates)
    return SearchResult(candidates, time.perf_counter() - start)
