"""Scoring one configuration the search tries (``Evaluator``): fitted on each fold's training rows, stopped
early on its validation rows, predicted on them (out-of-fold predictions for ensemble selection), charged in
planned seconds at its family's probed costs (``plan.py``), its one-row latency measured and, over a latency
limit, a booster cut to its first rounds (``latency.py``)."""

from __future__ import annotations

import json
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import Metric
from .candidate import Candidate
from .clock import fit_safety
from .latency import LATENCY_ROWS, cut_to_limit, latency_ms
from .models import FAMILIES, FitContext, FittedModel
from .plan import (
    CANDIDATE_OVERHEAD,
    SIZE_RATIO,
    FamilyCost,
    Measurements,
    bucket,
    calibration,
    probe_family,
    probe_rows,
    probe_seconds,
    units_run,
)
from .validation import Validation

__all__ = ["PARALLEL_FOLDS_CELLS", "Evaluator"]

#: up to this many cells (rows x features) the folds of a candidate are fitted side by side
PARALLEL_FOLDS_CELLS = 2_000_000


class Evaluator:
    """Scores one configuration on the validation folds and keeps its fold models and out-of-fold output.

    Limits are planned seconds (``plan.py``): a fold's share becomes a cap on its units through the family's
    probed ``costs``, and what the candidate ran is charged at those costs, whatever the clock said.

    ``weights``: the user's row weights (of the rows of ``X``), which early stopping's validation rows and every
    score count rows by; the learners fit with ``ctx.sample_weight`` (those, balanced by class where the metric
    asks for it). None: every row counts once."""

    def __init__(self, X: np.ndarray, y: np.ndarray, validation: Validation, ctx: FitContext, metric: Metric,
                 *, max_predict_ms_per_row: float | None = None, costs: dict[str, FamilyCost] | None = None,
                 memo: Measurements | None = None, weights: np.ndarray | None = None) -> None:
        self.X, self.y, self.validation, self.ctx, self.metric = X, y, validation, ctx, metric
        self.weights = weights
        self.max_predict_ms_per_row = max_predict_ms_per_row
        self.costs = costs or {}
        self.memo = memo
        self.scored = validation.scored
        self.position = np.full(len(y), -1)
        self.position[self.scored] = np.arange(len(self.scored))
        #: the weights of the scored rows, in ``scored``'s order (None: unweighted)
        self.scored_weights = None if weights is None else weights[self.scored]
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
        y, w = self.y[self.scored], self.scored_weights
        if self.ctx.task.is_classification:
            k = self.ctx.n_classes
            share = np.bincount(np.asarray(y, dtype=np.int64), weights=w, minlength=k)[:k] + 1e-9
            raw = np.tile(share / share.sum(), (len(y), 1))
        else:
            raw = np.full(len(y), float(np.mean(y) if w is None else np.average(y, weights=w)))
        try:
            return self.metric.loss(y, raw, w)
        except (ValueError, TypeError, ZeroDivisionError) as e:  # a scikit-learn scorer these rows do not suit
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"The metric {self.metric.name!r} cannot score this target ({why}): choose another "
                              "--metric.") from None

    def perfect_loss(self) -> float:
        """The loss of the true answer on the validation rows (certainty on each row's class, or its value): what
        a candidate's distance from the best is measured against (``phases.is_behind``)."""
        y = self.y[self.scored]
        if self.ctx.task.is_classification:
            raw = np.eye(self.ctx.n_classes)[np.asarray(y, dtype=np.int64)]
        else:
            raw = np.asarray(y, dtype=float)
        try:
            return self.metric.loss(y, raw, self.scored_weights)
        except ValueError:  # a metric that the truth itself cannot be scored by
            return float("nan")

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
            es = family.early_stopping
            valid_weight = None if self.weights is None or not es else self.weights[va]
            ctx = FitContext(**{**self.ctx.__dict__, "n_jobs": threads, "sample_weight": weight, "max_units": units,
                                "time_limit": fit_safety(fold_limit), "keep_training": True,
                                "valid_weight": valid_weight})
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
            self.score(cand, results, oof)
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

    def score(self, cand: Candidate, results: list[tuple[FittedModel, float]], oof: np.ndarray) -> None:
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
        cand.score = self.metric(y_scored, oof, self.scored_weights)
        cand.loss = self.metric.loss(y_scored, oof, self.scored_weights)
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
