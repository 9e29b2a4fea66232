"""One configuration the search tried (``Candidate``): its score, costs, fold models and out-of-fold output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .clock import MAX_PACE
from .models import FAMILIES, FittedModel
from .plan import FamilyCost, units_run

__all__ = ["Candidate", "refit_rounds", "refit_rounds_scale"]


@dataclass
class Candidate:
    """One configuration tried by the search, with how it did."""

    name: str
    family: str
    params: dict[str, Any]
    phase: str = "portfolio"
    score: float = float("nan")          # the metric on validation rows, in its own units
    loss: float = float("inf")           # the same turned so that lower is better
    fit_seconds: float = 0.0             # all folds together
    seconds: float = 0.0                 # fitting and predicting, all folds: what the candidate cost
    predict_ms_per_row: float = float("nan")  # in batches (the validation rows)
    predict_1row_ms: float = float("nan")     # one row alone, the serving case
    latency_ms: float = float("nan")          # the same, rounded and remembered: what choices are made on
    work: float = 0.0                          # planned seconds, all folds (``plan.py``): what the search charged
    deviation: str = ""                        # why this candidate may not repeat (its safety clock fired)
    plan_cost: FamilyCost | None = field(default=None, repr=False)
    fold_rows: int = 0
    best_iteration: int | None = None
    #: the rounds a latency limit cut a booster to (``latency.py``): its refit on all rows gets no more
    max_rounds: int | None = None
    status: str = "ok"
    models: list[FittedModel] = field(default_factory=list, repr=False)
    valid_pred: np.ndarray | None = field(default=None, repr=False)  # out-of-fold, on Validation.scored

    @property
    def model(self) -> FittedModel | None:
        return self.models[0] if self.models else None

    @property
    def single_fit_seconds(self) -> float:
        return self.fit_seconds / max(len(self.models), 1)

    def refit_seconds(self, rows_ratio: float) -> float:
        """Planned seconds to fit this configuration on all rows: at the probed costs, the units to fit
        again (the best rounds, scaled up for the rows; the trees grown) on all rows; without costs, one
        fold's fit scaled by the rows and the share of the rounds fitted that refitting repeats."""
        if self.plan_cost is not None and self.models:
            units = units_run(self.models[0])
            if self.best_iteration and FAMILIES[self.family].early_stopping:
                units = refit_rounds(self, rows_ratio)
            return 1.1 * self.plan_cost.seconds(self.params, units, int(self.fold_rows * rows_ratio))
        share = 1.0
        runs = [m.rounds_run for m in self.models if m.rounds_run]
        if runs and self.best_iteration:
            share = min(1.0, self.best_iteration * refit_rounds_scale(rows_ratio) / float(np.mean(runs)))
        return self.single_fit_seconds * rows_ratio * share * 1.1

    def row(self) -> dict[str, Any]:
        return {"model": self.name, "family": self.family, "phase": self.phase, "score": self.score,
                "fit_s": round(self.fit_seconds, 3), "predict_ms_per_row": round(self.predict_ms_per_row, 4),
                "predict_1row_ms": round(self.predict_1row_ms, 4), "planned_s": round(self.work, 3),
                "best_iteration": self.best_iteration, "max_rounds": self.max_rounds,
                "status": self.status, "params": {k: v for k, v in self.params.items() if not k.startswith("_")}}


def real_per_planned(cand: Candidate) -> float:
    """Real seconds a planned one took in ``cand``'s fits (each fold's fit against its planned seconds at the
    probed costs), 1 to ``MAX_PACE``; ``MAX_PACE`` where it has no costs to compare with."""
    cost = cand.plan_cost
    if cost is None or not cand.models:
        return MAX_PACE
    planned = sum(cost.seconds(cand.params, units_run(m), cand.fold_rows) for m in cand.models)
    real = sum(m.fit_seconds for m in cand.models)
    return float(min(max(real / planned, 1.0), MAX_PACE)) if planned > 0 else MAX_PACE


def refit_rounds(cand: Candidate, rows_ratio: float) -> int:
    """The rounds a booster is refit with on all rows: its best ones scaled up for the rows, at most the
    rounds a latency limit cut it to."""
    rounds = max(1, int(round((cand.best_iteration or 1) * refit_rounds_scale(rows_ratio))))
    return rounds if cand.max_rounds is None else min(rounds, cand.max_rounds)


def refit_rounds_scale(rows_ratio: float) -> float:
    """More rows call for more rounds than early stopping found on fewer: the square root of the ratio,
    at most 1.5 of it."""
    return float(min(max(rows_ratio, 1.0), 1.5) ** 0.5)
