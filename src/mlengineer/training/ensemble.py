"""Greedy ensemble selection with replacement over out-of-fold predictions (Caruana et al., 2004), the
Ensemble predictor, and the bag that averages a candidate's fold models when there is no time to refit.

A regression ensemble may keep its members that follow a line past the training rows (a ridge, a network)
within a margin of what its tree members answer for the same row (``Bounds``, chosen on the out-of-fold
predictions by ``choose_bounds``): on house prices the ridge answered 641,561 for a house of 5,642 square
feet that sold for 160,000, the trees 276,000-401,000."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics import Metric, row_losses
from .models.base import FittedModel

__all__ = ["BOUND_MARGINS", "LEAN_SE", "Bag", "Bounds", "Ensemble", "choose_bounds", "lean_ensemble", "row_predictor",
           "select_ensemble"]

#: the margins tried for ``Bounds``, in out-of-fold root mean squared errors of the plain ensemble, widest first
#: (house prices: 2 or 4, by the seed's folds, for the ridge's and the network's far answers; bike sharing 1; wine
#: quality 0.5; on kin8nm, elevators and parkinsons each did worse out of fold than none, and none was kept)
BOUND_MARGINS = (4.0, 2.0, 1.0, 0.5)


def select_ensemble(
    predictions: dict[str, np.ndarray],
    y: np.ndarray,
    metric: Metric,
    *,
    rounds: int = 25,
    cost_ms: dict[str, float] | None = None,
    max_ms: float | None = None,
    max_members: int | None = None,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """Weights per candidate that minimise the metric's loss on ``y``: add one candidate at a time (the same
    one may come back, which is how weights form), for ``rounds`` steps, and keep the best step.

    With ``max_ms``, a candidate joins only while the members' summed single-row cost (``cost_ms``) stays
    within it: the ensemble as a whole keeps the latency limit, not just each member. With ``max_members``,
    no more than that many distinct candidates join (1: the best single one). With ``weights`` (the user's,
    of the rows of ``y``), the loss counts each row for its weight.
    """
    names = [n for n in predictions if max_ms is None or (cost_ms or {}).get(n, 0.0) <= max_ms]
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: 1.0}
    chosen: list[str] = []
    total: np.ndarray | None = None
    best_loss, best_len = np.inf, 0
    members: set[str] = set()
    for _ in range(rounds):
        step_best, step_loss = None, np.inf
        for name in names:
            if name not in members and max_members is not None and len(members) >= max_members:
                continue
            if max_ms is not None and name not in members:
                spent = sum((cost_ms or {}).get(m, 0.0) for m in members)
                if spent + (cost_ms or {}).get(name, 0.0) > max_ms:
                    continue
            p = predictions[name]
            candidate = p if total is None else (total * len(chosen) + p) / (len(chosen) + 1)
            try:
                loss = metric.loss(y, candidate, weights)
            except ValueError:
                continue
            if np.isfinite(loss) and loss < step_loss - 1e-12:
                step_best, step_loss = name, loss
        if step_best is None:
            break
        p = predictions[step_best]
        total = p if total is None else (total * len(chosen) + p) / (len(chosen) + 1)
        chosen.append(step_best)
        members.add(step_best)
        if step_loss < best_loss - 1e-12:
            best_loss, best_len = step_loss, len(chosen)
    if not chosen:
        return {}
    counts = Counter(chosen[: max(best_len, 1)])
    n = sum(counts.values())
    return {k: v / n for k, v in counts.items()}


#: how many standard errors of the paired per-row out-of-fold loss a member must be worth to keep its time in
#: the ensemble (``lean_ensemble``; ``TrainConfig.ensemble_lean_se``)
LEAN_SE = 1.0
#: a member that takes less than this share of the members' one-row time stays whatever it adds: its leaving
#: would save nothing worth a change of the answers
LEAN_MIN_SHARE = 0.05


def _blend_of(predictions: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    return _weighted([np.asarray(predictions[n], dtype=float) for n in weights], list(weights.values()))


def _paired_gap(worse: np.ndarray, better: np.ndarray, row_weights: np.ndarray | None) -> tuple[float, float]:
    """The mean of the per-row differences ``worse - better`` and its standard error (rows weighted alike
    with ``row_weights``, as the loss counts them)."""
    d = worse - better
    n = len(d)
    if n < 2:
        return float(np.mean(d)) if n else 0.0, float("inf")
    if row_weights is None:
        return float(np.mean(d)), float(np.std(d, ddof=1) / np.sqrt(n))
    w = np.asarray(row_weights, dtype=float)
    w = w / w.sum()
    mean = float(np.sum(w * d))
    return mean, float(np.sqrt(np.sum(w ** 2 * (d - mean) ** 2) * n / (n - 1)))


def _without(name: str, weights: dict[str, float], predictions: dict[str, np.ndarray], y: np.ndarray, metric: Metric,
             row_weights: np.ndarray | None) -> tuple[dict[str, float], np.ndarray]:
    """The best ensemble of ``weights`` without ``name``, and its per-row losses: its weight handed to the other
    members in proportion, or all to one of them (a near copy's place taken by the member it copies), whichever
    loses least on ``y``."""
    others = [n for n in weights if n != name]
    options = [{n: weights[n] / (1.0 - weights[name]) for n in others}]
    options += [{n: weights[n] + (weights[name] if n == to else 0.0) for n in others} for to in others]
    best: tuple[float, dict[str, float], np.ndarray] | None = None
    for option in options:
        losses = row_losses(metric, y, _blend_of(predictions, option))
        assert losses is not None
        mean = float(np.mean(losses) if row_weights is None else np.average(losses, weights=row_weights))
        if best is None or mean < best[0] - 1e-15:
            best = (mean, option, losses)
    assert best is not None
    return best[1], best[2]


def lean_ensemble(weights: dict[str, float], predictions: dict[str, np.ndarray], y: np.ndarray, metric: Metric,
                  cost_ms: dict[str, float], *, se: float = LEAN_SE,
                  row_weights: np.ndarray | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """``weights`` (a greedy selection's) without the members that cost time for a gain within noise: the
    dearest member first (``cost_ms``, one row), a member leaves where the best ensemble of the others
    (``_without``: its weight handed on) loses less than ``se`` standard errors of the paired per-row out-of-fold loss
    on ``y`` (``metrics.row_losses``), both against the ensemble as it stands and against the one first
    chosen, so that small losses cannot add up. Members under ``LEAN_MIN_SHARE`` of the time stay; so do all
    where the metric is not made of rows. Also what each leaving member was worth (loss mean and its
    standard error), for the leaderboard.

    Why: greedy selection keeps any member that lowers the out-of-fold loss at all, and a booster of weight
    0.04 beside a linear model and a network may double the bundle's one-row time for 0.0006 ROC AUC."""
    first = row_losses(metric, y, _blend_of(predictions, weights))
    if first is None or len(weights) < 2:
        return weights, []
    kept, now, dropped = dict(weights), first, []
    while len(kept) > 1:
        total_ms = sum(cost_ms.get(n, 0.0) for n in kept)
        left = None
        for name in sorted(kept, key=lambda n: (-cost_ms.get(n, 0.0), n)):
            if total_ms <= 0 or cost_ms.get(name, 0.0) < LEAN_MIN_SHARE * total_ms:
                break
            rest, losses = _without(name, kept, predictions, y, metric, row_weights)
            gap, gap_se = _paired_gap(losses, now, row_weights)
            since, since_se = _paired_gap(losses, first, row_weights)
            if np.isfinite(gap) and gap <= se * gap_se and since <= se * since_se:
                left = (name, rest, losses, {"model": name, "weight": round(kept[name], 4),
                                             "ms": cost_ms.get(name, 0.0), "loss_gain": gap, "loss_gain_se": gap_se})
                break
        if left is None:
            break
        _, kept, now, note = left
        dropped.append(note)
    return kept, dropped


@dataclass(frozen=True)
class Bounds:
    """A regression ensemble's guard on the members whose values may follow a line past the training rows
    (``capped``, positions among the members; ``ModelFamily.target_range`` "beyond"): for each row, their values
    are kept within ``margin`` of the lowest and highest that the ``within`` members (trees, neighbours, whose
    values stay within the training targets') give it."""

    within: tuple[int, ...]
    capped: tuple[int, ...]
    margin: float

    def apply(self, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The members' ``outputs`` (in the members' order) with the capped ones kept within the range."""
        lo = np.minimum.reduce([outputs[i] for i in self.within]) - self.margin
        hi = np.maximum.reduce([outputs[i] for i in self.within]) + self.margin
        return [np.clip(p, lo, hi) if i in self.capped else p for i, p in enumerate(outputs)]

    def describe(self, names: Sequence[str]) -> dict[str, Any]:
        return {"capped": [names[i] for i in self.capped], "within": [names[i] for i in self.within],
                "margin": self.margin}


def _weighted(outputs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    out = None
    for p, w in zip(outputs, weights, strict=True):  # the one order and arithmetic of every ensemble answer
        out = p * w if out is None else out + p * w
    assert out is not None
    return out


def choose_bounds(outputs: Sequence[np.ndarray], weights: Sequence[float], ranges: Sequence[str], y: np.ndarray,
                  metric: Metric, *, row_weights: np.ndarray | None = None
                  ) -> tuple[Bounds | None, np.ndarray, dict[str, float]]:
    """``Bounds`` for a regression ensemble, chosen on its members' out-of-fold ``outputs`` (``ranges``: each
    member's family's ``target_range``): the margin of ``BOUND_MARGINS`` with the lowest loss on ``y``, kept
    only where it beats no bounds; None where it does not, or the ensemble lacks a member of either kind. Also
    the ensemble's out-of-fold answers, as it will answer, and the loss of each margin tried (by its multiple;
    "none": without bounds), for the leaderboard. ``row_weights``: the user's weights of the rows of ``y``."""
    outs = [np.asarray(p, dtype=float) for p in outputs]
    plain = _weighted(outs, weights)
    within = tuple(i for i, r in enumerate(ranges) if r == "within")
    capped = tuple(i for i, r in enumerate(ranges) if r == "beyond")
    if not within or not capped or plain.ndim != 1:
        return None, plain, {}
    sq = (np.asarray(y, dtype=float) - plain) ** 2
    scale = float(np.sqrt(np.mean(sq) if row_weights is None else np.average(sq, weights=row_weights)))
    chosen, answer, best = None, plain, float(metric.loss(y, plain, row_weights))
    tried = {"none": best}
    for k in BOUND_MARGINS:
        bounds = Bounds(within, capped, k * scale)
        pred = _weighted(bounds.apply(outs), weights)
        tried[str(k)] = loss = float(metric.loss(y, pred, row_weights))
        if loss < best - 1e-12 * abs(best):
            chosen, answer, best = bounds, pred, loss
    return chosen, answer, tried


class Ensemble:
    """A weighted average of fitted models' raw outputs (probabilities or values), a regression's members that
    extrapolate kept within ``bounds`` of the others where it has them."""

    #: None: a plain weighted average (and every bundle saved before bounds existed)
    bounds: Bounds | None = None

    def __init__(self, members: list[tuple[str, Any, float]], bounds: Bounds | None = None) -> None:
        self.members = members
        self.bounds = bounds

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.members]

    def row_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """One encoded row through the members' own row functions, as a bundle's row path answers it."""
        return row_predictor(self)

    def outputs(self, X: np.ndarray) -> list[np.ndarray]:
        """Each member's answers for ``X`` as the ensemble weighs them (kept within its ``bounds``)."""
        outs = [model.predict_raw(X) for _, model, _ in self.members]
        return outs if self.bounds is None else self.bounds.apply(outs)

    def combine(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """The ensemble's answer from its members' ``outputs`` (as ``outputs`` gives them)."""
        return _weighted(outputs, [w for _, _, w in self.members])

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self.combine(self.outputs(X))


class Bag(FittedModel):
    """The fold models of one candidate, averaged: what stands in for a model refit on all rows when the
    time budget has no room for the refit, or a network's final model (``ModelFamily.bag_folds``); k times
    slower to predict."""

    def __init__(self, models: list[FittedModel]) -> None:
        first = models[0]
        super().__init__(models, first.params, first.task)
        # not the members' family: code that reads a family's estimator (explanations) must not take a
        # list of them for one; ``estimator`` holds the fold models, all of family ``of_family``
        self.family = "bag"
        self.of_family = first.family
        self.fit_seconds = sum(m.fit_seconds for m in models)
        self.best_iteration = first.best_iteration

    #: the fold models' answers computed at once for a few rows, where their family can (the MLP's
    #: ``stacked_function``): (the function, the most rows it takes), built on first use, never pickled
    _stacked: tuple[tuple[Callable[[np.ndarray], np.ndarray], int] | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_stacked"}

    def _stack(self) -> tuple[Callable[[np.ndarray], np.ndarray], int] | None:
        if self._stacked is None:
            make = getattr(type(self.estimator[0]), "stacked_function", None)
            same = all(type(m) is type(self.estimator[0]) for m in self.estimator)
            self._stacked = (make(self.estimator) if callable(make) and same else None,)
        return self._stacked[0]

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The fold models at once for a few rows (bundle/rowpath.py); None: each fold's own row function."""
        stacked = self._stack()
        return None if stacked is None else stacked[0]

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        stacked = self._stack()
        if stacked is not None and len(X) <= stacked[1]:
            return stacked[0](X)
        return np.mean([m.predict_raw(X) for m in self.estimator], axis=0)

    def prepare(self) -> None:
        for m in self.estimator:
            m.prepare()

    @property
    def explained_exactly(self) -> bool:
        """True when every fold model explains itself exactly (the explain stage averages their answers)."""
        return all(m.explained_exactly for m in self.estimator)

    def feature_importance(self) -> np.ndarray | None:
        parts = [m.feature_importance() for m in self.estimator]
        if any(p is None for p in parts):
            return None
        return np.mean([np.asarray(p, dtype=float) for p in parts], axis=0)


def row_predictor(predictor: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A function of one encoded row (1, features) giving what ``predictor.predict_raw`` gives for it, built
    from the members' own row functions where they have one: what a bundle's row path calls
    (``bundle/rowpath.py``), and what the search's ensemble latency is timed through."""
    if isinstance(predictor, Ensemble):
        fns, weights = [row_predictor(m) for _, m, _ in predictor.members], [w for _, _, w in predictor.members]
        bounds = predictor.bounds

        def ensemble(X: np.ndarray) -> np.ndarray:  # the same order and arithmetic as Ensemble.predict_raw
            outs = [fn(X) for fn in fns]
            return _weighted(outs if bounds is None else bounds.apply(outs), weights)

        return ensemble
    if isinstance(predictor, Bag):
        stacked = predictor.row_function()  # the fold models at once, where their family can (the MLP)
        if stacked is not None:
            return stacked
        folds = [row_predictor(m) for m in predictor.estimator]
        return lambda X: np.mean([fn(X) for fn in folds], axis=0)
    make = getattr(predictor, "row_function", None)
    fn = make() if callable(make) else None
    return fn if fn is not None else predictor.predict_raw
