"""The refit policy: each ensemble member is fitted once more on every row, when the time left allows.

The search's models saw part of the rows (k-1 folds, the holdout's training part, or a sample of a large
table). A refit on all rows, with the rounds that early stopping found (scaled up a little for the larger
data), is as accurate as the average of the fold models and k times faster to predict. When the time is
short, a member keeps what the search fitted: the average of its fold models (``Bag``), or its one model.
A network is better bagged than refit (``ModelFamily.bag_folds``): where the search saw every row and the
latency aim allows k models, the selection asks for its fold models to be kept (``bagged``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .candidate import Candidate, refit_rounds
from .clock import fit_safety
from .ensemble import Bag
from .models import FAMILIES, FitContext, FittedModel

__all__ = ["refit_members"]


def refit_members(
    X: np.ndarray,
    y: np.ndarray,
    ctx: FitContext,
    chosen: list[tuple[Candidate, float]],
    *,
    rows_ratio: float,
    budget: float,
    bagged: frozenset[str] = frozenset(),
    threads: Callable[[str], int] | None = None,
    late: Callable[[Candidate, float], bool] | None = None,
) -> tuple[list[tuple[str, FittedModel, float]], list[str], list[str]]:
    """The final (name, model, weight) members, the names of those refit on all rows, and why the run may
    not repeat (a refit the safety clock stopped).

    ``rows_ratio`` is all rows over the rows one search model learned from (1.25 for 5 folds); ``budget``
    is the planned seconds left (``plan.py``): a member is refit when its planned refit fits in what is left;
    ``bagged`` names members that keep their fold models whatever the time; ``threads`` gives each family's
    threads (by default ``ctx.n_jobs``); ``late(cand, need)``, asked of a member whose refit fits in what is
    left, says it would still end too late by the real clock (a first run's hold, ``selection._refit_late``):
    it keeps its search models, and its planned seconds stay for the members after it."""
    order = sorted(chosen, key=lambda cw: -cw[1])
    final: dict[str, FittedModel] = {}
    refit: list[str] = []
    notes: list[str] = []
    left = budget
    for cand, _ in order:
        family = FAMILIES[cand.family]
        need = cand.refit_seconds(rows_ratio)
        if cand.name not in bagged and need <= left and (late is None or not late(cand, need)):
            left -= need
            params = {k: v for k, v in cand.models[0].params.items() if not k.startswith("_")}
            if family.early_stopping and cand.best_iteration:
                params["n_estimators"] = refit_rounds(cand, rows_ratio)
            try:
                n_jobs = ctx.n_jobs if threads is None else threads(cand.family)
                model = family.fit(X, y, FitContext(**{**ctx.__dict__, "max_units": None, "n_jobs": n_jobs,
                                                       "time_limit": fit_safety(need)}), params)
            except (MemoryError, Exception):  # noqa: B014 - a failed refit keeps the search's models
                model = None
            # a refit cut short by the clock has fewer rounds than the search found best: keep the search's
            if model is not None and not model.stopped_by_time:
                final[cand.name] = model
                refit.append(cand.name)
                continue
            if model is not None:
                notes.append(f"the refit of {cand.name} ran far past its planned time and was dropped")
        final[cand.name] = cand.models[0] if len(cand.models) == 1 else Bag(cand.models)
    return [(c.name, final[c.name], w) for c, w in chosen], refit, notes

