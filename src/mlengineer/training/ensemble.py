"""Greedy ensemble selection with replacement over validation predictions, and the Ensemble predictor."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..metrics import Metric
from .models.base import FittedModel

__all__ = ["Ensemble", "select_ensemble"]


def select_ensemble(
    predictions: dict[str, np.ndarray], y: np.ndarray, metric: Metric, *, rounds: int = 25
) -> dict[str, float]:
    """Weights per candidate that minimise the metric's loss on ``y``, built by adding one candidate at a
    time (the same one may be added again) and stopping when no addition helps."""
    names = list(predictions)
    if len(names) == 1:
        return {names[0]: 1.0}
    chosen: list[str] = []
    total = None
    best_loss = np.inf
    for _ in range(rounds):
        step_best, step_loss = None, np.inf
        for name in names:
            candidate = predictions[name] if total is None else (total * len(chosen) + predictions[name]) / (len(chosen) + 1)
            try:
                loss = metric.loss(y, candidate)
            except ValueError:
                continue
            if loss < step_loss - 1e-12:
                step_best, step_loss = name, loss
        if step_best is None or step_loss >= best_loss - 1e-9 and chosen:
            break
        best_loss = step_loss
        total = predictions[step_best] if total is None else (total * len(chosen) + predictions[step_best]) / (len(chosen) + 1)
        chosen.append(step_best)
    counts = Counter(chosen)
    return {k: v / len(chosen) for k, v in counts.items()}


class Ensemble:
    """A weighted average of fitted models' raw outputs (probabilities or values)."""

    def __init__(self, members: list[tuple[str, FittedModel, float]]) -> None:
        self.members = members

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.members]

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        out = None
        for _, model, w in self.members:
            p = model.predict_raw(X) * w
            out = p if out is None else out + p
        assert out is not None
        return out
