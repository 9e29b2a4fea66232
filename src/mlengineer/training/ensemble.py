"""Greedy ensemble selection with replacement over out-of-fold predictions (Caruana et al., 2004), the
Ensemble predictor, and the bag that averages a candidate's fold models when there is no time to refit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ..metrics import Metric
from .models.base import FittedModel

__all__ = ["Bag", "Ensemble", "row_predictor", "select_ensemble"]


def select_ensemble(
    predictions: dict[str, np.ndarray],
    y: np.ndarray,
    metric: Metric,
    *,
    rounds: int = 25,
    cost_ms: dict[str, float] | None = None,
    max_ms: float | None = None,
    max_members: int | None = None,
) -> dict[str, float]:
    """Weights per candidate that minimise the metric's loss on ``y``: add one candidate at a time (the same
    one may come back, which is how weights form), for ``rounds`` steps, and keep the best step.

    With ``max_ms``, a candidate joins only while the members' summed single-row cost (``cost_ms``) stays
    within it: the ensemble as a whole keeps the latency limit, not just each member. With ``max_members``,
    no more than that many distinct candidates join (1: the best single one).
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
                loss = metric.loss(y, candidate)
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


class Ensemble:
    """A weighted average of fitted models' raw outputs (probabilities or values)."""

    def __init__(self, members: list[tuple[str, Any, float]]) -> None:
        self.members = members

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.members]

    def row_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """One encoded row through the members' own row functions, as a bundle's row path answers it."""
        return row_predictor(self)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        out = None
        for _, model, w in self.members:
            p = model.predict_raw(X) * w
            out = p if out is None else out + p
        assert out is not None
        return out


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
        members = [(row_predictor(m), w) for _, m, w in predictor.members]

        def ensemble(X: np.ndarray) -> np.ndarray:
            out = None
            for fn, w in members:  # the same order and arithmetic as Ensemble.predict_raw
                p = fn(X) * w
                out = p if out is None else out + p
            assert out is not None
            return out

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
