"""Did the model's metric change between the reference rows and the live rows by more than chance? A test of
the change itself: whether two intervals overlap is a weaker question (two values can each lie inside the
other's interval and still differ beyond chance).

Realised metrics (outcomes known on both sides): the live rows and the reference rows are each resampled on
their own (they are different rows: nothing pairs them) and the change computed on every draw; its spread
gives the change's interval and a one-sided bound. The performance alarm asks only whether the model got
worse, and takes the bound on that side at 97.5% (``TAIL``), the worse side of the 95% interval: at 95% one-sided
a reviewer's 300 regression batches drawn like the reference alarmed 9% of the time (a bootstrap of a skewed
metric such as RMSE on 50-200 rows is too narrow), so worse by at least ``bound`` with 97.5% confidence. Estimates (no outcomes yet) come with intervals only: the change's spread is taken from the side
of each interval that matters (the live value's towards better, the reference's towards worse), combined as
the spread of a difference of two independent values (normal approximation).

    >>> realised_change("rmse", (y, pred, None), (y_ref, pred_ref, None), higher=False)   # doctest: +SKIP
    {'value': 19190.2, 'low': ..., 'high': ..., 'bound': 2624.4, 'p_value': 0.026, 'method': ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .estimate import DRAWS, LEVEL, _safe, _sample, scorer

__all__ = ["estimated_change", "realised_change"]

Z_TWO = 1.959964  # the normal quantile of a one-sided 97.5% level (a two-sided 95% one)
#: the share of draws beyond the one-sided bound: the worse side of the 95% interval
TAIL = (1 - LEVEL) / 2

Rows = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # outcomes, predictions, decided classes


def realised_change(name: str, now: Rows, before: Rows, *, higher: bool, seed: int = 0,
                    draws: int = DRAWS) -> dict[str, Any] | None:
    """The change of the metric ``name`` from the rows ``before`` (the reference's outcomes, predictions and
    decided classes) to the rows ``now``, with a bootstrap of both: its ``value``, its two-sided interval
    (``low``, ``high``), ``bound``: how much worse the model is at least, one-sided at the 97.5% level (above 0:
    worse beyond chance), and ``p_value``: the share of draws in which it is not worse. None when too few
    draws can be scored (a metric of one class)."""
    score_now, score_before = (scorer(name, y, raw, d=d) for y, raw, d in (now, before))
    value = _safe(score_now, np.arange(len(now[0]))) - _safe(score_before, np.arange(len(before[0])))
    rng = np.random.default_rng(seed)
    spread = []
    for score, n, offset in ((score_now, len(now[0]), 0), (score_before, len(before[0]), 1)):
        rows, scale = _sample(n, seed + offset)
        drawn = np.array([_safe(score, rows[rng.integers(0, len(rows), len(rows))]) for _ in range(draws)])
        spread.append((drawn, scale))
    (a, scale_a), (b, scale_b) = spread
    kept = np.isfinite(a) & np.isfinite(b)
    if value != value or kept.sum() < draws / 2:
        return None
    # each side's deviation from its middle draw, scaled to its full row count when drawn on a sample
    dev = (a[kept] - np.median(a[kept])) * scale_a - (b[kept] - np.median(b[kept])) * scale_b
    low, high = value + np.quantile(dev, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    worse = -(value + dev) if higher else value + dev
    return {"value": float(value), "low": float(low), "high": float(high),
            "bound": float(np.quantile(worse, TAIL)), "p_value": float(np.mean(worse <= 0)),
            "method": "bootstrap of the change (live and reference rows each resampled)"}


def estimated_change(now: dict[str, Any], before: dict[str, Any], *, higher: bool) -> dict[str, Any]:
    """The change from ``before`` to ``now`` (``Estimate.to_dict()``s, with 95% intervals), its one-sided
    ``bound`` and ``p_value`` as ``realised_change`` gives them, from the intervals' sides that matter."""
    from scipy.stats import norm

    value = float(now["value"] - before["value"])
    if higher:
        sides = (now["high"] - now["value"], before["value"] - before["low"])
    else:
        sides = (now["value"] - now["low"], before["high"] - before["value"])
    sd = float(np.hypot(max(float(sides[0]), 0.0), max(float(sides[1]), 0.0))) / Z_TWO
    worse = -value if higher else value
    if not (np.isfinite(worse) and np.isfinite(sd)):
        return {"value": value, "bound": float("nan"), "p_value": float("nan"), "method": "not comparable"}
    p = float(norm.sf(worse / sd)) if sd > 0 else float(worse <= 0)
    return {"value": value, "bound": worse - Z_TWO * sd, "p_value": p,
            "method": "normal approximation from both intervals"}
