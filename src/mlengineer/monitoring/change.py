"""Did the model's metric change between the reference rows and the live rows by more than chance? A test of
the change itself, on the side that matters: whether the model got worse.

Realised metrics (outcomes known on both sides): the live rows and the reference rows are each resampled on
their own (they are different rows: nothing pairs them); the change's interval is its spread over both sides'
draws. The performance alarm takes the bound on the worse side at 97.5% (``TAIL``), the worse side of the 95%
interval: at 95% one-sided a reviewer's 300 regression batches drawn like the reference alarmed 9% of the time
(a bootstrap of a skewed metric such as RMSE on 50-200 rows is too narrow), so worse by at least ``bound`` with
97.5% confidence. Every batch of a model is compared with the same reference rows, so how lucky those rows were
is one offset all its batches share: the reference's reach is added to the batch's in full (``realised_change``),
which holds the level for each model, where drawing the two together held it only on average over models.
Estimates (no outcomes yet) come with intervals only: the change's spread is taken from the side of each
interval that matters (the live value's towards better, the reference's towards worse), combined as the
spread of a difference of two independent values (normal approximation).

    >>> realised_change("rmse", (y, pred, None), (y_ref, pred_ref, None), higher=False)   # doctest: +SKIP
    {'value': 19190.2, 'low': ..., 'high': ..., 'bound': 2624.4, 'p_value': 0.011, 'method': ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .estimate import DRAWS, LEVEL, _safe, _sample, scorer

__all__ = ["calibration_se", "estimate_gap", "estimated_change", "promised_scorer", "realised_change"]

Z_TWO = 1.959964  # the normal quantile of a one-sided 97.5% level (a two-sided 95% one)
#: the share of draws beyond the one-sided bound: the worse side of the 95% interval
TAIL = (1 - LEVEL) / 2

Rows = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # outcomes, predictions, decided classes


def realised_change(name: str, now: Rows, before: Rows, *, higher: bool, full: bool = True, seed: int = 0,
                    draws: int = DRAWS) -> dict[str, Any] | None:
    """The change of the metric ``name`` from the rows ``before`` (the reference's outcomes, predictions and
    decided classes) to the rows ``now``, with a bootstrap of both: its ``value``, its two-sided interval
    (``low``, ``high``), ``bound``: how much worse the model is at least, one-sided at the 97.5% level (above 0:
    worse beyond chance), and ``p_value``: the same test's, below 0.025 exactly when ``bound`` is above 0. None
    when too few draws can be scored (a metric of one class).

    ``full``: the reference rows are the same for every batch of this model, so how lucky they were is one
    offset all its batches share, not noise that averages out over batches: the reference's one-sided 97.5%
    reach (how much better than the model's own level its rows may have scored by chance) is added to the
    batch's in full. Then at most 2.5% of this model's batches drawn like its reference alarm unless the
    reference scored better than its own 97.5% bound. Drawn jointly with the batch (``full=False``, the
    spread of the difference) the 2.5% held only on average over models. Measured (``bench/reference_offset.py``,
    8 regressors of 400 reference rows, batches of 100 rows drawn like training): one whose reference RMSE
    came out 5.8% better than its level on fresh rows alarmed on 22 of 300 drawn jointly, 6 in full; over the
    8, 74 and 14 of 2,400; 8 classifiers' ROC AUC, 23 and 3 of 1,700. The cost: a change must clear both
    reaches added, about the two 95% intervals parting; an RMSE 11% higher was found on 56 of 400 such batches
    (131 drawn jointly), 39% higher on 382 (393). It is smaller when the reference holds many more rows than
    the batch (2,000 rows: 34 of 150 against 48 at 11%)."""
    from scipy.stats import norm

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
    dev_a, dev_b = (a[kept] - np.median(a[kept])) * scale_a, (b[kept] - np.median(b[kept])) * scale_b
    low, high = value + np.quantile(dev_a - dev_b, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    sign = -1.0 if higher else 1.0  # deviations towards worse are positive
    worse = sign * value
    if not full:
        drawn_worse = worse + sign * (dev_a - dev_b)
        return {"value": float(value), "low": float(low), "high": float(high),
                "bound": float(np.quantile(drawn_worse, TAIL)), "p_value": float(np.mean(drawn_worse <= 0)),
                "method": "bootstrap of the change (live and reference rows each resampled, drawn together)"}
    # how far chance may have taken the batch towards worse, and the reference towards better
    reach = max(-float(np.quantile(sign * dev_a, TAIL)), 0.0) + max(float(np.quantile(sign * dev_b, 1 - TAIL)), 0.0)
    p = float(norm.sf(Z_TWO * worse / reach)) if reach > 0 else float(worse <= 0)
    return {"value": float(value), "low": float(low), "high": float(high), "bound": float(worse - reach),
            "p_value": p, "method": "bootstrap of the change (live and reference rows each resampled; the "
                                    "reference's reach counted in full)"}


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


def estimate_gap(real: Any, promised: Any, n: int, *, higher: bool, tolerance: float, spread: float = 0.0,
                 full: bool = False, chance: float | None = None, seed: int = 0,
                 draws: int = DRAWS) -> dict[str, Any] | None:
    """Whether the outcomes of ``n`` rows fall short of the estimate for those same rows (what the inputs
    promised) by more than ``tolerance``, beyond chance: ``real`` and ``promised`` score row positions (the
    realised metric, the estimate). Both are numbers of the same rows, so the rows are resampled together and
    the gap taken on every draw (the estimate's own noise from row to row counts as the outcomes' does).
    ``value``: realised - estimated; ``shortfall``: how much worse the outcomes are; ``bound``: how far beyond
    the tolerance the shortfall is at least, one-sided at the 97.5% level (above 0: concept drift);
    ``p_value``: the same test's, below 0.025 exactly when ``bound`` is above 0. None when too few draws can
    be scored.

    ``spread``: the estimate's standard error from its calibration on the reference rows, which no draw of the
    live rows shows. ``full``: it is measured (a regressor's loss model, ``calibration_se``) and one offset
    every batch of this model shares, not noise that averages out over batches, so its 97.5% reach is added
    to the draws' in full: then at most 2.5% of this model's batches drawn like training alarm unless its
    reference is off by more than that reach. In quadrature the 2.5% held only on average over models:
    measured, a regressor whose 400 reference rows put its estimate 5% low (1.3 standard errors) alarmed on 10
    of 300 batches of 100 rows drawn like training, 3 in full; over 8 models trained alike, 3 and 0 of 320.
    Else (a classifier's: the metric's own spread on the reference rows, a stand-in for CBPE's error from them,
    not a measure of it) in quadrature: in full it cost a third of the alarms on a fifth of the labels flipped
    (11 of 30, against 18), where batches drawn like training alarmed on 4 of 320 over 8 models anyway.

    ``chance``: how far chance alone may take the shortfall at that level when it is known exactly, in place of
    the draws: a classifier's CBPE interval is the spread of the realised metric over outcomes drawn from the
    calibrated probabilities of these very rows, the test's own null, and the estimate has no noise of its own
    from row to row. Measured, 30 batches of 100 rows with a fifth of the labels flipped (ROC AUC 0.69 against
    0.81 promised): 18 alarms with it, 14 with the draws, which widen as the outcomes part from the
    probabilities."""
    from scipy.stats import norm

    value = _safe(real, np.arange(n)) - _safe(promised, np.arange(n))
    rows, scale = _sample(n, seed)
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(draws):
        idx = rows[rng.integers(0, len(rows), len(rows))]
        gaps.append(_safe(real, idx) - _safe(promised, idx))
    drawn = np.asarray(gaps)
    drawn = drawn[np.isfinite(drawn)]
    if value != value or len(drawn) < draws / 2:
        return None
    short = -drawn if higher else drawn
    shortfall = float(-value if higher else value)
    below = max(float(np.median(short) - np.quantile(short, TAIL)) * scale, 0.0) if chance is None else chance
    own = Z_TWO * max(float(spread), 0.0)
    reach = below + own if full else float(np.hypot(below, own))
    excess = shortfall - tolerance
    p = float(norm.sf(Z_TWO * excess / reach)) if reach > 0 else float(excess <= 0)
    return {"value": float(value), "shortfall": shortfall, "tolerance": float(tolerance),
            "bound": float(excess - reach), "p_value": p,
            "method": "bootstrap of the gap (realised and estimated on the same resampled rows)"}


def promised_scorer(name: str, *, loss: Any = None, m: np.ndarray | None = None, pred: np.ndarray | None = None,
                    proba: np.ndarray | None = None, d: np.ndarray | None = None) -> Any:
    """The estimate of ``name`` for the rows at given positions, as a function of those positions: a
    regressor's from its loss model ``loss``, expected error sizes ``m`` and predictions ``pred``; a
    classifier's from its calibrated probabilities ``proba`` answered as ``d`` (CBPE)."""
    from .estimate import _class_score

    if loss is not None:
        assert m is not None and pred is not None
        return lambda idx: loss.estimate(name, m[idx], pred[idx]).value
    assert proba is not None and d is not None
    return lambda idx: _class_score(name, None, proba[idx], d[idx])


def calibration_se(name: str, value: float, *, loss: Any = None, reference: Any = None) -> float:
    """The standard error an estimate ``value`` of ``name`` owes to the reference rows it was calibrated on:
    a regressor's from its loss model's moments (``LossModel.moment_se``), a classifier's from the metric's
    interval on the reference rows (``reference``, an ``Estimate``: CBPE knows the model no better)."""
    if loss is not None:
        mae_se, mse_se = loss.moment_se
        relative = {"mae": mae_se * value, "rmse": mse_se / 2 * value, "r2": mse_se * (1 - value)}
        return float(abs(relative.get(name, 0.0)))
    if reference is None or not np.isfinite(reference.high - reference.low):
        return 0.0
    return float((reference.high - reference.low) / 2 / Z_TWO)
