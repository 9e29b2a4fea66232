"""The time-budgeted search: a portfolio of strong default configurations, tried cheapest first, each
scored on validation rows, until the budget is spent."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import Metric
from ..tasks import Task
from .models import FAMILIES, FitContext, FittedModel, load_all

__all__ = ["Candidate", "SearchResult", "portfolio", "run_search"]


@dataclass
class Candidate:
    """One configuration tried by the search, with how it did."""

    name: str
    family: str
    params: dict[str, Any]
    score: float = float("nan")          # the metric on validation rows, in its own units
    loss: float = float("inf")           # the same turned so that lower is better
    fit_seconds: float = 0.0
    predict_ms_per_row: float = float("nan")
    best_iteration: int | None = None
    status: str = "ok"
    model: FittedModel | None = field(default=None, repr=False)
    valid_pred: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {"model": self.name, "family": self.family, "score": self.score, "fit_s": round(self.fit_seconds, 3),
                "predict_ms_per_row": round(self.predict_ms_per_row, 4), "status": self.status,
                "params": {k: v for k, v in self.params.items() if not k.startswith("_")}}


@dataclass
class SearchResult:
    candidates: list[Candidate]
    seconds: float

    @property
    def ok(self) -> list[Candidate]:
        return sorted((c for c in self.candidates if c.status == "ok"), key=lambda c: c.loss)


def portfolio(task: Task, n_rows: int, n_features: int, families: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The (family, params) pairs to try, interleaved so every family gets a first try early."""
    registry = load_all()
    chosen = [f for f in (families or list(registry)) if f in registry and registry[f].available()]
    chosen.sort(key=lambda f: registry[f].cost)
    per_family = {f: registry[f].default_configs(task, n_rows, n_features) for f in chosen}
    out: list[tuple[str, dict[str, Any]]] = []
    depth = max((len(v) for v in per_family.values()), default=0)
    for i in range(depth):
        for f in chosen:
            if i < len(per_family[f]):
                out.append((f, per_family[f][i]))
    return out


def run_search(
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    ctx: FitContext,
    metric: Metric,
    *,
    budget: float,
    configs: list[tuple[str, dict[str, Any]]],
    max_predict_ms_per_row: float | None = None,
    on_candidate: Callable[[Candidate], None] | None = None,
) -> SearchResult:
    """Fit each configuration on (X, y), score it on (X_val, y_val), within ``budget`` seconds."""
    start = time.perf_counter()
    deadline = start + budget
    candidates: list[Candidate] = []
    counts: dict[str, int] = {}
    for family_name, params in configs:
        left = deadline - time.perf_counter()
        if left <= 0.05 * budget and candidates:
            break
        family = FAMILIES[family_name]
        counts[family_name] = counts.get(family_name, 0) + 1
        cand = Candidate(name=f"{family_name}_{counts[family_name]}", family=family_name, params=dict(params))
        fit_ctx = FitContext(**{**ctx.__dict__, "time_limit": max(left, 1.0)})
        try:
            model = family.fit(X, y, fit_ctx, params, X_val if family.early_stopping else None,
                               y_val if family.early_stopping else None)
            t0 = time.perf_counter()
            pred = model.predict_raw(X_val)
            cand.predict_ms_per_row = 1000 * (time.perf_counter() - t0) / max(len(X_val), 1)
            cand.model, cand.valid_pred = model, pred
            cand.fit_seconds, cand.best_iteration = model.fit_seconds, model.best_iteration
            cand.score = metric(y_val, pred)
            cand.loss = metric.loss(y_val, pred)
            if not np.isfinite(cand.loss):
                cand.status = "failed: the metric is not finite on validation rows"
            elif max_predict_ms_per_row is not None and cand.predict_ms_per_row > max_predict_ms_per_row:
                cand.status = f"too slow: {cand.predict_ms_per_row:.2f} ms per row"
        except MemoryError:
            cand.status = "failed: out of memory"
        except Exception as e:  # one failing configuration must not end the search
            cand.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            cand.params["_traceback"] = traceback.format_exc(limit=3)
        candidates.append(cand)
        if on_candidate is not None:
            on_candidate(cand)
    return SearchResult(candidates, time.perf_counter() - start)
