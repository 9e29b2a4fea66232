"""From the encoded matrix to the fitted ensemble: validation scheme, search, ensemble selection, refit.

Every step answers to one budget of *planned* seconds (``plan.py``), decided before the search from the
time budget, the time spent so far and each family's probed costs, all rounded: the search stops early
enough to leave time for the refit of the ensemble it found; the refit keeps the search's models for any
member it has no time for. Nothing in between reads the clock except the safety stops and, on a first run
on a table, the budget's real end (``clock.WorkClock``: where it stopped the search, and the refit's seconds,
are remembered for a rerun to repeat), so the same seed, budget, table and machine give the same models.
The ensemble is chosen on out-of-fold predictions, so ``valid_pred`` holds predictions of models that did
not see those rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..features.encoder import FeatureEncoder
from ..metrics import Metric
from ..tasks import Task
from .candidate import real_per_planned
from .clock import WorkClock
from .config import TrainConfig
from .ensemble import Ensemble, choose_bounds, lean_ensemble, select_ensemble
from .latency import LATENCY_ROWS, latency_ms
from .models import FAMILIES, FitContext
from .models.target import target_transforms
from .models.threads import wait_policy
from .plan import Measurements, bucket
from .refit import refit_members
from .search import (
    PARALLEL_FOLDS_CELLS,
    Candidate,
    Evaluator,
    SearchResult,
    affordable,
    portfolio,
    run_search,
)
from .validation import Validation, choose_validation, search_sample
from .weights import class_weights, training_weights, weightless_folds

__all__ = ["Selection", "class_weights", "search_and_ensemble"]

#: the share of the budget after which nothing new starts: the rest covers the refit and the bundle
SEARCH_END = 0.82
REFIT_END = 0.90
#: where a first run holds its budget by the real clock (``clock.WorkClock``), the refit may take real seconds
#: up to this share: what follows it (the bundle, one-row timings, SHAP) takes a second or two of the rest
HELD_REFIT_END = 0.96
#: seconds kept back whatever the budget: building the bundle and what follows training take about that
FIXED_MARGIN = 0.7
#: without a user's limit, the whole bundle (cleaning, encoding and every member) aims at this many
#: milliseconds for one row: a member joins only while the sum allows (the best model alone always does;
#: the user's limit makes the aim a promise)
DEFAULT_ENSEMBLE_MS = 4.0
ENSEMBLE_POOL = 16


@dataclass
class Selection:
    predictor: Ensemble
    leaderboard: list[dict[str, Any]]
    strategy: str
    score: float
    refit: bool
    valid_y: np.ndarray
    valid_pred: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    #: positions in ``X`` of the rows ``valid_y``/``valid_pred`` describe (the bundle's reference sample ties
    #: its out-of-sample predictions to input rows through them)
    valid_rows: np.ndarray | None = None
    #: whether a rerun with this seed and budget repeats this one, why not, and the plan it followed
    reproducibility: dict[str, Any] = field(default_factory=dict)
    #: the user's weights of the rows ``valid_y`` describes (None: every row counts once)
    valid_weight: np.ndarray | None = None


@dataclass
class _Searched:
    """What the search hands on to ensemble selection and the refit."""

    ys: np.ndarray  # the searched rows' targets
    rows: np.ndarray  # their positions in X (all rows, or the search's sample)
    validation: Validation
    ctx: FitContext
    weights: np.ndarray | None  # per-row weights the learners fit with, on all rows (the user's, balanced), or None
    row_weights: np.ndarray | None  # the user's weights on all rows, which every score counts rows by, or None
    fold_rows: float  # rows one search model learned from, on average
    strategy: str
    model_limit: float | None  # the user's latency limit for the models, less the pipeline's share
    max_models: int | None  # the user's cap on the ensemble's members (TrainConfig.max_models)
    result: SearchResult
    ok: list[Candidate]  # the candidates to ensemble, best first
    clock: WorkClock  # the search's planned seconds
    plan: dict[str, Any]  # what the plan was decided from (the rounded measurements), for the run's record
    memo: Measurements
    overhead_ms: float  # the pipeline's single-row cost, rounded: what the latency aim is checked with
    threads: Callable[[str], int]  # the threads of each family's search fits (``Evaluator.threads``)


#: remembered costs are forgotten when the search took less than this share of the seconds it planned
STALE_COSTS = 0.5


def search_and_ensemble(
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    metric: Metric,
    config: TrainConfig,
    encoder: FeatureEncoder,
    groups: np.ndarray | None,
    order: np.ndarray | None,
    deadline: float,
    overhead_ms: float = 0.0,
    progress: Callable[..., None],
    blend_metric: Metric | None = None,
    weights: np.ndarray | None = None,
) -> Selection:
    """Search, ensemble and refit; ``blend_metric`` chooses the ensemble's weights (the metric if None).
    ``weights``: the user's row weights (``weights.py``), in every fit and every score; None: rows count once."""
    timings: dict[str, float] = {}
    searched = _search(X, y, task=task, metric=metric, config=config, encoder=encoder, groups=groups, order=order,
                       deadline=deadline, overhead_ms=overhead_ms, progress=progress, row_weights=weights)
    timings["search_s"] = searched.result.seconds

    progress("stage", name="ensemble")
    blend_metric = blend_metric or metric
    chosen_w, lean = _blend(searched, blend_metric, config.ensemble_lean_se)

    progress("stage", name="refit")
    t0 = time.perf_counter()
    by_name = {c.name: c for c in searched.ok}
    full_ctx = FitContext(**{**searched.ctx.__dict__, "sample_weight": searched.weights})
    chosen = [(by_name[n], w) for n, w in chosen_w.items()]
    refit_budget = _refit_budget(searched)
    members, refit, refit_notes = refit_members(X, y, full_ctx, chosen, rows_ratio=len(y) / searched.fold_rows,
                                                budget=refit_budget, bagged=_bagged(chosen, searched, len(y)),
                                                threads=_refit_threads(searched, X.size), late=_refit_late(searched))
    _held_refits(searched)
    timings["refit_s"] = time.perf_counter() - t0
    members = _within_aim(members, refit, searched, by_name)
    chosen_w = {n: w for n, _, w in members}
    y_scored, w_scored = searched.ys[searched.validation.scored], _scored_weights(searched)
    # a regression's members that extrapolate, kept near its trees' answers where that does better out of fold
    bounds, ens_pred, tried = choose_bounds([np.asarray(by_name[n].valid_pred) for n in chosen_w], list(chosen_w.values()),
                                     [FAMILIES[by_name[n].family].target_range if task.kind == "regression" else ""
                                      for n in chosen_w], y_scored, blend_metric, row_weights=w_scored)
    score = metric(y_scored, ens_pred, w_scored)
    predictor = Ensemble(members, bounds)
    for _, model, _ in members:
        model.prepare()
    latency = latency_ms(predictor, X[:LATENCY_ROWS])
    leaderboard = [c.row() for c in sorted(searched.result.candidates, key=lambda c: c.loss)]
    leaderboard.insert(0, {
        "model": "ensemble", "family": "ensemble", "phase": "ensemble", "score": score,
        "fit_s": round(sum(by_name[n].fit_seconds for n in chosen_w), 3),
        "predict_ms_per_row": round(sum(by_name[n].predict_ms_per_row for n in chosen_w), 4),
        "predict_1row_ms": round(latency + overhead_ms, 4), "best_iteration": None, "status": "ok",
        "params": {"weights": chosen_w, "weights_chosen_by": blend_metric.name, "refit_on_all_rows": refit,
                   "bounds": None if bounds is None else bounds.describe(list(chosen_w)), "bounds_tried": tried,
                   "left_for_time": lean},
    })
    timings["predict_1row_ms"] = round(latency + overhead_ms, 4)
    timings["pipeline_1row_ms"] = round(overhead_ms, 4)
    if searched.memo.reused and searched.clock.spent > 5 and searched.result.seconds < STALE_COSTS * searched.clock.spent:
        # the search took far less real time than it planned: the costs remembered for this table were
        # measured on a busier machine, and would keep every later run well short of its budget
        searched.memo.discard()
    else:
        searched.memo.save()
    why = searched.clock.deviations + refit_notes
    reproducibility = {"reproducible": not why, "why": why, "plan": searched.plan}
    return Selection(predictor=predictor, leaderboard=leaderboard, strategy=searched.strategy, score=float(score),
                     refit=len(refit) == len(members), valid_y=y_scored, valid_pred=np.asarray(ens_pred),
                     timings=timings, valid_rows=searched.rows[searched.validation.scored],
                     reproducibility=reproducibility, valid_weight=w_scored)


def _search(X: np.ndarray, y: np.ndarray, *, task: Task, metric: Metric, config: TrainConfig,
            encoder: FeatureEncoder, groups: np.ndarray | None, order: np.ndarray | None, deadline: float,
            overhead_ms: float, progress: Callable[..., None], row_weights: np.ndarray | None = None) -> _Searched:
    """Choose the search's rows and validation, plan the search, run it, and keep the candidates to ensemble."""
    # the search's rows: all of them, or a sample when the table is too large to search on in full
    sample = search_sample(y, X.shape[1], budget=config.time_budget, stratify=task.is_classification,
                           seed=config.seed, max_rows=config.max_search_rows) if order is None else None
    rows = np.arange(len(y)) if sample is None else sample
    Xs, ys = X[rows], y[rows]
    configs = portfolio(task, len(ys), X.shape[1], config.families, feature_names=encoder.feature_names_,
                        target_transforms=_target_transforms(ys, task, config))
    configs, left_out = affordable(configs, config.time_budget, named=bool(config.families))
    n_jobs = config.n_jobs or os.cpu_count() or 1
    families = sorted({f for f, _ in configs})
    for family in families:  # imports (torch: about 2 s) before the plan's start
        FAMILIES[family].warm_up()
    # schema, audit, cleaning, encoding and the learners' imports: once per process, and a command's every run
    # is one (not in the plan before issue 16: a first candidate's import ran past it)
    elapsed = config.time_budget - (deadline - time.perf_counter())
    memo = Measurements(Xs, ys, n_jobs=n_jobs, families=families)
    before = memo.get("prepare_s, imports included", lambda: bucket(elapsed, 0.25))
    # pictures: one holdout, as a network fitted per fold would take the search's time k times over
    mode = "holdout" if config.validation == "auto" and getattr(encoder, "image_models_", None) else config.validation
    validation = choose_validation(
        ys, mode=mode, budget=max(config.time_budget - before, 0.5), holdout_fraction=config.holdout_fraction,
        stratify=task.is_classification, groups=None if groups is None else groups[rows], order=order,
        seed=config.seed, names=list(task.classes) if task.is_classification else None)
    strategy = validation.strategy + (f", searched on a sample of {len(rows):,} of {len(y):,} rows"
                                      if sample is not None else "") + (f"; {left_out}" if left_out else "")
    if row_weights is not None:
        weightless_folds(validation, row_weights[rows])
    weights = training_weights(y, len(task.classes), row_weights, balanced=task.is_classification and metric.balanced)
    ctx = FitContext(task=task, categorical=encoder.categorical_features_, cardinalities=encoder.cardinalities_,
                     feature_names=encoder.feature_names_, seed=config.seed, n_jobs=n_jobs,
                     sample_weight=None if weights is None else weights[rows])
    evaluate = Evaluator(Xs, ys, validation, ctx, metric, weights=None if row_weights is None else row_weights[rows])
    clock, plan = _plan(evaluate, config, memo, before=before, overhead_ms=overhead_ms)
    limit = config.max_predict_ms_per_row
    model_limit = None if limit is None else max(limit - plan["pipeline_1row_ms"], 0.0)
    evaluate.max_predict_ms_per_row = model_limit
    progress("search_start", total=len(configs), budget=clock.budget)
    fold_rows = float(np.mean([len(tr) for tr, _ in validation.folds]))
    result = run_search(evaluate, clock=clock, configs=configs, tune=config.tune,
                        rows_ratio=len(y) / fold_rows, seed=config.seed,
                        on_candidate=lambda c: progress("candidate", candidate=c),
                        after=plan["refit_budget_s"] - clock.budget, restarts=sample is None)
    plan.update(probe_s=evaluate.probe_spent, costs={f: c.as_dict() for f, c in evaluate.costs.items()},
                calibration=dict(evaluate.calibrated))
    ok = result.ok
    if not ok:  # nothing within the latency limit: the fastest model there is, rather than none
        slow = [c for c in result.candidates if c.status.startswith("too slow")]
        ok = sorted(slow, key=lambda c: (c.latency_ms, c.loss))[:1]
    if not ok:
        reasons = "; ".join(f"{c.name}: {c.status}" for c in result.candidates[:3]) or "no time to fit any"
        raise DataError(f"No model could be trained on this data ({reasons}).")
    return _Searched(ys=ys, rows=rows, validation=validation, ctx=ctx, weights=weights, row_weights=row_weights,
                     fold_rows=fold_rows, strategy=strategy, model_limit=model_limit, max_models=config.max_models,
                     result=result, ok=ok, clock=clock, plan=plan, memo=memo, overhead_ms=plan["pipeline_1row_ms"],
                     threads=lambda family: evaluate.threads(family)[1])


def _refit_threads(searched: _Searched, cells: int) -> Callable[[str], int]:
    """The threads of a family's refit on ``cells`` (rows x features): on small data those each of its search
    fits had, which the probes timed and the refit's plan is priced in (one where the folds were fitted side by
    side: a learner's threads mostly wait on each other there, and on a busy machine far longer than the plan
    allows; all of them for a holdout's one fit: elevators' network refit on one thread took 11.8 s for 5.1
    planned); on larger data all of them, at least as fast as planned."""
    n_jobs = searched.ctx.n_jobs
    return lambda family: searched.threads(family) if cells <= PARALLEL_FOLDS_CELLS else n_jobs


def _target_transforms(y: np.ndarray, task: Task, config: TrainConfig) -> list[str]:
    """The target transforms to try (regression only): by the target's skew for "auto", none for "none", the
    one named otherwise."""
    choice = config.target_transform
    if task.is_classification or choice == "none":
        return []
    if choice == "auto":
        return target_transforms(y)
    if choice == "log" and np.min(y) < 0:
        raise ConfigError(f"target_transform 'log' needs a target of values at least 0, but {config.target!r} "
                          "holds negative values: use 'power' (Yeo-Johnson) or 'auto'.")
    return [choice]


def _plan(evaluate: Evaluator, config: TrainConfig, memo: Measurements, *, before: float,
          overhead_ms: float) -> tuple[WorkClock, dict[str, Any]]:
    """The search's planned seconds, from rounded measurements that a later run on the same table and machine
    reads back instead of measuring again (``plan.Measurements``); the families' costs are probed as the
    search reaches them."""
    # "row path": timed through the one-record path since issue 16; a value remembered before is not reused
    pipeline = memo.get("pipeline_1row_ms, row path", lambda: bucket(overhead_ms, 0.005))
    evaluate.costs, evaluate.memo = {}, memo  # each family is probed before its first candidate
    left = max(config.time_budget - before, 0.5)
    key = _held_key(config)
    held = memo.values.get(key)  # where a first run on the table stopped by the real clock
    clock = WorkClock(max(left * SEARCH_END - FIXED_MARGIN, 0.5), hold=True,
                      stops=None if held is None else list(held["stops"]))
    plan = {"held_key": key, "search_budget_s": clock.budget,
            "refit_budget_s": max(left * REFIT_END - FIXED_MARGIN, 0.5),
            "held_refit_end_s": max(left * HELD_REFIT_END - FIXED_MARGIN, 0.5),
            "prepare_s": before, "pipeline_1row_ms": pipeline, "measurements_reused": memo.reused,
            "omp_wait_policy": wait_policy(),
            "measurements_file": None if memo.path is None else str(memo.path)}
    return clock, plan


def _held_key(config: TrainConfig) -> str:
    """Under what a run's real-clock decisions are remembered with the table's costs: they hold for the same
    budget, seed and options only (the costs for any)."""
    # a field added since (weight_column) counts only when set: runs without it keep their remembered key
    unset = {f for f in ("weight_column",) if getattr(config, f) is None}
    if config.ensemble_lean_se == type(config).model_fields["ensemble_lean_se"].default:  # added since, likewise: its default keeps the key of the runs before it
        unset.add("ensemble_lean_se")
    options = config.model_dump(mode="json", exclude={"tracking_uri", "experiment", "spark_master", "spark_conf",
                                                      *unset})
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"held to the budget: {digest}"


def _refit_budget(searched: _Searched) -> float:
    """The refit's planned seconds: those the plan leaves it, on a first run no more than fit in the real ones
    left until ``HELD_REFIT_END`` of the budget (``WorkClock.real_left``); remembered with the clock's stops
    (``_held_refits`` writes them once the refit has asked its own), so a rerun refits the same members."""
    plan, clock, memo = searched.plan, searched.clock, searched.memo
    held = memo.values.get(plan["held_key"])
    if held is None:
        budget = round(min(plan["refit_budget_s"] - clock.spent, clock.real_left(plan["held_refit_end_s"])), 3)
        held = memo.values[plan["held_key"]] = {"refit_budget_s": budget}
    plan.update(held_refit_budget_s=held["refit_budget_s"],
                search_spent_s=round(clock.spent, 3))  # refit_budget_s less this: what the plan alone left the refit
    return float(held["refit_budget_s"])


def _refit_late(searched: _Searched) -> Callable[[Candidate, float], bool]:
    """Asked before each member's refit: on a first run, whether its planned seconds at its own family's pace in
    the search (``real_per_planned``) would end past ``HELD_REFIT_END`` of the budget: the refit budget is
    converted at the run's pace, and a network's refit took 1.5-1.6 real seconds a planned one on the letters
    where the run's mix of families took less (62.4 s of 60). Each answer is one of the clock's stops, so a
    rerun refits the same members."""
    clock, until = searched.clock, searched.plan["held_refit_end_s"]
    return lambda cand, need: clock.overrun(need, extra=until - clock.budget, pace=real_per_planned(cand))


def _held_refits(searched: _Searched) -> None:
    """The stops a first run remembers, the search's and the refit's (``_refit_late``); a rerun replayed them."""
    held = searched.memo.values[searched.plan["held_key"]]
    if searched.clock.replay is None:
        held["stops"] = list(searched.clock.stops)
    searched.plan["held_stops"] = list(held["stops"])


def _scored_weights(searched: _Searched) -> np.ndarray | None:
    """The user's weights of the rows the out-of-fold predictions score (None: every row counts once)."""
    w = searched.row_weights
    return None if w is None else w[searched.rows[searched.validation.scored]]


def _blend(searched: _Searched, blend_metric: Metric,
           lean_se: float | None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The ensemble's weights by candidate name, chosen on the out-of-fold predictions within the aim, less
    the members whose gain is within ``lean_se`` standard errors (``lean_ensemble``; None: all kept); and what
    each member that left was worth."""
    ok = searched.ok
    y_scored = searched.ys[searched.validation.scored]
    aim = _members_aim(searched)
    lean: list[dict[str, Any]] = []
    if searched.max_models == 1:  # the best single model by the user's metric (the leaderboard's first)
        chosen_w = next(({c.name: 1.0} for c in ok if c.latency_ms <= aim), {})
    else:
        pool = ok[:ENSEMBLE_POOL]  # the best: the rest rarely earn a weight, and each costs a metric call a round
        preds = {c.name: c.valid_pred for c in pool if c.valid_pred is not None}
        cost = {c.name: c.latency_ms for c in pool}
        row_weights = _scored_weights(searched)
        chosen_w = select_ensemble(preds, y_scored, blend_metric, cost_ms=cost, max_ms=aim,
                                   max_members=searched.max_models, weights=row_weights)
        if lean_se is not None and len(chosen_w) > 1:
            chosen_w, lean = lean_ensemble(chosen_w, preds, y_scored, blend_metric, cost, se=lean_se,
                                           row_weights=row_weights)
    if not chosen_w:  # nothing is fast enough: the fastest single model
        fastest = min(ok, key=lambda c: (c.latency_ms, c.loss))
        chosen_w = {fastest.name: 1.0}
    return chosen_w, lean


def _members_aim(searched: _Searched) -> float:
    """Milliseconds the members may take together for one row: the aim for the whole bundle (the user's
    limit, or ``DEFAULT_ENSEMBLE_MS``, which the best model alone may exceed) less the pipeline's share.
    Latencies are the rounded, remembered ones, so the choice does not follow the clock's noise."""
    if searched.model_limit is not None:
        return searched.model_limit
    return max(DEFAULT_ENSEMBLE_MS - searched.overhead_ms, searched.ok[0].latency_ms)


def _bagged(chosen: list[tuple[Candidate, float]], searched: _Searched, n_rows: int) -> frozenset[str]:
    """The members that keep their fold models instead of a refit (``ModelFamily.bag_folds``): only where the
    search saw every row (fold models of a sample know less than a refit on all rows), heaviest weight first,
    while the bundle with k of each stays within the latency aim."""
    if len(searched.rows) != n_rows:
        return frozenset()
    k = len(searched.validation.folds)
    total = sum(c.latency_ms for c, _ in chosen)
    aim = _members_aim(searched)
    bagged = set()
    for cand, _ in sorted(chosen, key=lambda cw: -cw[1]):
        extra = (k - 1) * cand.latency_ms
        if FAMILIES[cand.family].bag_folds and len(cand.models) == k > 1 and total + extra <= aim:
            bagged.add(cand.name)
            total += extra
    return frozenset(bagged)


def _within_aim(members: list[tuple[str, Any, float]], refit: list[str], searched: _Searched,
                by_name: dict[str, Candidate]) -> list[tuple[str, Any, float]]:
    """The members once more against the aim, as they will predict: a member the refit had no time for
    keeps its fold models (k times the latency), which can take the bundle past it. The lightest members
    leave first; the weights of the rest are scaled back to one."""
    k = len(searched.validation.folds)

    def ms(name: str) -> float:
        return by_name[name].latency_ms * (1 if name in refit else k)

    aim = _members_aim(searched)
    kept = sorted(members, key=lambda m: -m[2])
    while len(kept) > 1 and sum(ms(n) for n, _, _ in kept) > aim:
        kept.pop()
    total = sum(w for _, _, w in kept)
    return [(n, m, w / total) for n, m, w in members if any(n == x for x, _, _ in kept)]
