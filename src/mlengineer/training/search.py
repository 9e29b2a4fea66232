"""The time-budgeted search.

First a portfolio of strong default configurations, one family after another in the order of their
``place`` (so every family gets a first try early), then Optuna's TPE on the tuned families that did best,
until the search's planned seconds are spent (``plan.py``: counted in work units at probed costs, not
read off the clock, so a seeded run repeats). Each candidate is scored the same way (``Evaluator``): fitted on each fold's
training rows, stopped early on its validation rows, and predicted on them, so every candidate has
out-of-fold predictions for ensemble selection.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import Metric
from ..tasks import Task
from .candidate import Candidate, refit_rounds_scale
from .latency import LATENCY_ROWS, cut_to_limit, latency_ms
from .models import COST_REFERENCE, FAMILIES, FitContext, FittedModel, load_all
from .phases import _longer, _portfolio, _tune, is_behind, is_useful
from .plan import (
    CANDIDATE_OVERHEAD,
    SIZE_RATIO,
    FamilyCost,
    Measurements,
    WorkClock,
    bucket,
    calibration,
    fit_safety,
    probe_family,
    probe_rows,
    probe_seconds,
    units_run,
)
from .validation import Validation

__all__ = ["Candidate", "Evaluator", "SearchResult", "portfolio", "refit_rounds_scale", "run_search"]

#: the most of the search's time one candidate may take
CANDIDATE_SHARE = 0.2
#: up to this many cells (rows x features) the folds of a candidate are fitted side by side
PARALLEL_FOLDS_CELLS = 2_000_000
#: beyond this many rows the portfolio follows the families' ``place_large``
LARGE_ROWS = 20_000
#: from this many classes a family may take another place in the portfolio (``ModelFamily.place_many_classes``)
MANY_CLASSES = 10
#: the families whose first configuration is tried again on a transformed regression target, when the target
#: calls for one (``portfolio``'s ``target_transforms``); tuning then keeps the transform of the family's best
TRANSFORM_FAMILIES = ("lightgbm", "catboost")


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
              and registry[f].supports(task, n_rows, n_features)]
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


def _moved(places: dict[str, float | None], registry: dict[str, Any], attr: str) -> dict[str, float | None]:
    """``places`` with each family that has a place moved to its ``attr`` place, where it has one."""
    return {f: getattr(registry[f], attr) if p is not None and getattr(registry[f], attr) is not None else p
            for f, p in places.items()}


class Evaluator:
    """Scores one configuration on the validation folds and keeps its fold models and out-of-fold output.

    Limits are planned seconds (``plan.py``): a fold's share becomes a cap on its units through the family's
    probed ``costs``, and what the candidate ran is charged at those costs, whatever the clock said."""

    def __init__(self, X: np.ndarray, y: np.ndarray, validation: Validation, ctx: FitContext, metric: Metric,
                 *, max_predict_ms_per_row: float | None = None, costs: dict[str, FamilyCost] | None = None,
                 memo: Measurements | None = None) -> None:
        self.X, self.y, self.validation, self.ctx, self.metric = X, y, validation, ctx, metric
        self.max_predict_ms_per_row = max_predict_ms_per_row
        self.costs = costs or {}
        self.memo = memo
        self.scored = validation.scored
        self.position = np.full(len(y), -1)
        self.position[self.scored] = np.arange(len(self.scored))
        self.probe_spent = 0.0  # planned seconds of the probes so far
        #: the families whose first candidate checked their probed costs: what their costs were scaled by
        self.calibrated: dict[str, float] = {}

    def probe(self, family_name: str, params: dict[str, Any]) -> float:
        """Probe a family's costs before its first candidate (``plan.probe_family``); the planned seconds
        the probe took (0 when the costs are known)."""
        if family_name in self.costs or self.memo is None:
            return 0.0
        workers, threads = self.threads(family_name)
        fold = self.validation.folds[0]
        cost = probe_family(self.X, self.y, probe_rows(fold, self.ctx.seed), self.ctx, family_name, params,
                            workers=workers, threads=threads, memo=self.memo, known=self.costs,
                            larger=probe_rows(fold, self.ctx.seed + 1, times=SIZE_RATIO))
        self.costs[family_name] = cost
        self.probe_spent += probe_seconds(cost)
        return probe_seconds(cost)

    def affords(self, family_name: str, params: dict[str, Any], limit: float) -> bool:
        """Whether a candidate given ``limit`` planned seconds may run the fewest units its family needs to learn
        anything (``ModelFamily.min_units``), at the probed costs."""
        need, cost = FAMILIES[family_name].min_units, self.costs.get(family_name)
        if not need or cost is None:
            return True
        units = cost.max_units(params, limit / self.waves(family_name), self.fold_rows())
        return units is None or units >= need

    def waves(self, family_name: str) -> int:
        """How many rounds of side-by-side fits the family's folds take."""
        return -(-len(self.validation.folds) // self.threads(family_name)[0])

    def fold_rows(self) -> int:
        """The mean training rows of a fold."""
        return int(np.mean([len(tr) for tr, _ in self.validation.folds]))

    def null_loss(self) -> float:
        """The loss of a constant answer on the validation rows (each class's share of them; their mean):
        how far a candidate got is measured from there (``useful``)."""
        y = self.y[self.scored]
        if self.ctx.task.is_classification:
            k = self.ctx.n_classes
            share = np.bincount(np.asarray(y, dtype=np.int64), minlength=k)[:k] + 1e-9
            raw = np.tile(share / share.sum(), (len(y), 1))
        else:
            raw = np.full(len(y), float(np.mean(y)))
        return self.metric.loss(y, raw)

    def threads(self, family_name: str) -> tuple[int, int]:
        """(folds fitted side by side, threads each): small data fits folds side by side, one thread each
        (a learner's threads mostly wait on each other there; the learners release the GIL while they fit)."""
        small = self.X.size <= PARALLEL_FOLDS_CELLS and FAMILIES[family_name].parallel_folds
        workers = min(self.ctx.n_jobs, len(self.validation.folds)) if small else 1
        return workers, 1 if workers > 1 else self.ctx.n_jobs

    def __call__(self, family_name: str, params: dict[str, Any], *, name: str, phase: str,
                 limit: float) -> Candidate:
        family = FAMILIES[family_name]
        cand = Candidate(name=name, family=family_name, params=dict(params), phase=phase)
        start = time.perf_counter()
        folds = self.validation.folds
        k = self.ctx.n_classes if self.ctx.task.is_classification else 0
        oof = np.zeros((len(self.scored), k) if k else len(self.scored))
        workers, threads = self.threads(family_name)
        waves = self.waves(family_name)
        fold_limit = limit / waves
        cost = self.costs.get(family_name)
        cand.plan_cost, cand.fold_rows = cost, self.fold_rows()

        def fit_fold(i: int) -> tuple[FittedModel, float]:
            tr, va = folds[i]
            weight = None if self.ctx.sample_weight is None else self.ctx.sample_weight[tr]
            units = None if cost is None else cost.max_units(params, fold_limit, len(tr))
            # the plan caps the units; the clock only stops a fit far past its plan (then it may not repeat)
            ctx = FitContext(**{**self.ctx.__dict__, "n_jobs": threads, "sample_weight": weight, "max_units": units,
                                "time_limit": fit_safety(fold_limit)})
            es = family.early_stopping
            model = family.fit(self.X[tr], self.y[tr], ctx, params, self.X[va] if es else None,
                               self.y[va] if es else None)
            t0 = time.perf_counter()
            oof[self.position[va]] = model.predict_raw(self.X[va])
            return model, time.perf_counter() - t0

        try:
            family.warm_up()  # imports (torch takes seconds) outside the folds' clocks
            results = []
            if workers > 1:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for wave in range(waves):
                        ids = range(wave * workers, min((wave + 1) * workers, len(folds)))
                        results += list(pool.map(fit_fold, ids))
            else:
                for i in range(len(folds)):
                    results.append(fit_fold(i))
            cand.models = [m for m, _ in results]
            self._calibrate(cand, sum(t for _, t in results))
            cand.work = self._work(cand, workers)
            self._score(cand, results, oof)
        except MemoryError:
            cand.status = "failed: out of memory"
        except Exception as e:  # one failing configuration must not end the search
            cand.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            cand.params["_traceback"] = traceback.format_exc(limit=3)
        if not cand.work:  # failed before it could be counted: its fixed costs, fold by fold
            cand.work = CANDIDATE_OVERHEAD + (cost.fixed if cost is not None else 0.1) * waves
        if cand.status != "ok" and not cand.status.startswith("too slow"):
            cand.models, cand.valid_pred = [], None
            cand.fit_seconds = time.perf_counter() - start
        cand.seconds = time.perf_counter() - start
        return cand

    def _calibrate(self, cand: Candidate, predict_s: float) -> None:
        """A family's first fitted candidate checks its probed costs against the real seconds of its fits and
        their predictions on the validation rows (``predict_s``), which the probe timed too
        (``plan.calibration``, remembered): where the probe priced them too high, the family's costs are made
        cheaper from here on, this candidate's charge included."""
        cost = cand.plan_cost
        if cost is None or self.memo is None or cand.family in self.calibrated or not cand.models:
            return
        planned = sum(self._fold_seconds(cand, cost))
        real = sum(m.fit_seconds for m in cand.models) + predict_s
        factor = float(self.memo.get(f"calibration:{cand.family}", lambda: calibration(real, planned)))
        self.calibrated[cand.family] = factor
        if factor != 1.0:
            self.costs[cand.family] = cand.plan_cost = cost.scaled(factor)

    def _fold_seconds(self, cand: Candidate, cost: FamilyCost) -> list[float]:
        """Planned seconds of each fold's fit of ``cand`` at ``cost``: the units it ran on the fold's rows."""
        return [cost.seconds(cand.params, units_run(m), len(tr))
                for m, (tr, _) in zip(cand.models, self.validation.folds, strict=True)]

    def _work(self, cand: Candidate, workers: int) -> float:
        """Planned seconds the candidate took: each fold at the probed costs of the units it ran, the folds
        fitted side by side counting once per wave."""
        cost = cand.plan_cost
        if cost is None:
            return CANDIDATE_OVERHEAD + sum(m.fit_seconds for m in cand.models) / workers
        per_fold = self._fold_seconds(cand, cost)
        return CANDIDATE_OVERHEAD + sum(max(per_fold[w:w + workers]) for w in range(0, len(per_fold), workers))

    def _score(self, cand: Candidate, results: list[tuple[FittedModel, float]], oof: np.ndarray) -> None:
        """Score the out-of-fold predictions, note the costs and latency, and keep or refuse the candidate."""
        folds = self.validation.folds
        stopped = [i for i, m in enumerate(cand.models) if m.stopped_by_time]
        if stopped:
            cand.deviation = f"{cand.name}: the safety clock stopped {len(stopped)} fold fit(s) far past their plan"
        rows = self.X[folds[0][1][:LATENCY_ROWS]]
        measured = cand.predict_1row_ms = latency_ms(cand.models[0], rows)
        units = [units_run(m) for m in cand.models]
        # "row latency, rows in turn": timed through the row function on several rows (issue 16); a value
        # remembered before (one row, repeated) is not reused
        key = f"row latency, rows in turn:{cand.family}:{json.dumps(cand.params, sort_keys=True, default=str)}:{units}"
        cand.latency_ms = measured if self.memo is None else self.memo.get(key, lambda: bucket(measured, 0.005))
        limit = self.max_predict_ms_per_row
        if limit is not None and cand.latency_ms > limit:
            self._cut(cand, rows, oof, limit, key)
        cand.fit_seconds = sum(m.fit_seconds for m in cand.models)
        iters = [m.best_iteration for m in cand.models if m.best_iteration is not None]
        cand.best_iteration = int(round(np.mean(iters))) if iters else None
        cand.predict_ms_per_row = 1000 * sum(t for _, t in results) / max(len(self.scored), 1)
        cand.valid_pred = oof
        y_scored = self.y[self.scored]
        cand.score = self.metric(y_scored, oof)
        cand.loss = self.metric.loss(y_scored, oof)
        if not np.isfinite(cand.loss):
            cand.status = "failed: the metric is not finite on validation rows"
        elif self.max_predict_ms_per_row is not None and cand.latency_ms > self.max_predict_ms_per_row:
            cand.status = f"too slow: {cand.predict_1row_ms:.2f} ms for one row"

    def _cut(self, cand: Candidate, rows: np.ndarray, oof: np.ndarray, limit: float, key: str) -> None:
        """A booster over the latency limit keeps its first rounds, as many as the limit allows (``latency.py``):
        its fold models cut, their validation rows predicted again into ``oof``."""
        def measure(model: FittedModel, rounds: int) -> float:
            if self.memo is None:
                return latency_ms(model, rows)
            return float(self.memo.get(f"{key}:rounds {rounds}", lambda: bucket(latency_ms(model, rows), 0.005)))

        full = max((m.best_iteration or 0) for m in cand.models)
        cut = cut_to_limit(cand.models, limit, measure, cand.latency_ms)
        if cut is None:
            return
        cand.models, cand.latency_ms, rounds = cut
        cand.predict_1row_ms = cand.latency_ms
        if rounds < full:
            cand.max_rounds = rounds
        for m, (_, va) in zip(cand.models, self.validation.folds, strict=True):
            oof[self.position[va]] = m.predict_raw(self.X[va])


def run_search(
    evaluate: Evaluator,
    *,
    clock: WorkClock,
    configs: list[tuple[str, dict[str, Any]]],
    tune: bool = True,
    rows_ratio: float | None = 1.25,
    seed: int = 0,
    on_candidate: Callable[[Candidate], None] | None = None,
) -> SearchResult:
    """Evaluate the portfolio ``configs``, then tune the best families with Optuna, until ``clock`` (planned
    seconds, ``plan.WorkClock``) has none left.

    With ``rows_ratio`` (all rows over one search model's rows), time is kept back for fitting the likely
    ensemble again on all rows: the refit time of the three best candidates so far.
    """
    start = time.perf_counter()
    total = clock.budget
    candidates: list[Candidate] = []
    counts: dict[str, int] = {}
    cost: dict[str, list[float]] = {}
    null = evaluate.null_loss()

    def useful(c: Candidate) -> bool:
        return is_useful(c, candidates, null)

    def reserve() -> float:
        if rows_ratio is None:
            return 0.0
        # the best candidates' refits, as many as fit in 30% of the search; one that does not fit even
        # alone keeps its search model, so waiting for it would only waste the time
        kept = 0.0
        for c in sorted((c for c in candidates if useful(c)), key=lambda c: c.loss)[:3]:
            need = c.refit_seconds(rows_ratio)
            if kept + need <= 0.3 * total:
                kept += need
        return kept

    def run(family_name: str, params: dict[str, Any], phase: str, at_least: float = 0.0) -> Candidate | None:
        left = clock.left() - reserve()
        seen = cost.get(family_name)
        # no candidate may eat the search: each gets a share, so that every family has its turn (a fit
        # stopped at its limit keeps the rounds it reached); a longer run of the best gets ``at_least``
        cap = max(CANDIDATE_SHARE * total, min(3.0, 0.5 * total), at_least)
        if phase == "tuning" and seen:
            cap = max(cap, 1.5 * min(seen))
        # until one candidate works, the next may take half the search (its family's ``lead_share``): the rest
        # goes to other families, which an ensemble needs more than a few more rounds of the first
        lead = FAMILIES[family_name].lead_share * total
        limit = min(left, cap) if any(c.status == "ok" for c in candidates) else min(left, max(cap, lead))
        guess = min(seen) if seen else 0.0
        if not seen and COST_REFERENCE in cost:  # a first try: guess from what the reference took on this data
            guess = min(min(cost[COST_REFERENCE]) * FAMILIES[family_name].relative_cost, cap)
        if clock.overrun() or (candidates and (left <= 0.02 * total or guess > left)):
            return None  # would not finish: leave the time to a cheaper family
        # a family's first candidate: its imports (outside the plan: once per process) and its costs first
        t0 = time.perf_counter()
        FAMILIES[family_name].warm_up()
        clock.charge(evaluate.probe(family_name, params))
        clock.excuse(time.perf_counter() - t0)
        if candidates and not evaluate.affords(family_name, params, max(limit, 0.5)):  # the first always runs
            return None
        counts[family_name] = counts.get(family_name, 0) + 1
        cand = evaluate(family_name, params, name=f"{family_name}_{counts[family_name]}", phase=phase,
                        limit=max(limit, 0.5))
        cost.setdefault(family_name, []).append(cand.work)
        clock.charge(cand.work)
        if cand.deviation:
            clock.deviations.append(cand.deviation)
        candidates.append(cand)
        if on_candidate is not None:
            on_candidate(cand)
        return cand

    _portfolio(run, configs, candidates, null)
    if tune:
        _longer(run, candidates, total=total)
        _tune(run, candidates, clock=clock, reserve=reserve, seed=seed, n_rows=len(evaluate.y),
              task=evaluate.ctx.task, useful=lambda c: useful(c) and not is_behind(c.family, candidates, null))
    return SearchResult(candidates, time.perf_counter() - start)

