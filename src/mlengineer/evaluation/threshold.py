"""The decision threshold of a binary model: the probability from which it answers "positive", chosen to
minimise the cost of its mistakes or to reach a precision or recall the user needs. Rows may carry weights
(the user's weight column): the counts are then sums of weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["choose_threshold", "positive_index", "positive_side", "second_class_threshold", "threshold_table"]


def _counts(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate threshold (every distinct probability, descending): TP, FP, FN, TN at it (sums of
    ``weights`` where given)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]  # the last row of each run of equal probability
    if weights is not None:
        ws = np.asarray(weights, dtype=float)[order]
        tp, seen = np.cumsum(ws * ys)[last], np.cumsum(ws)[last]
        pos = float(np.sum(ws * ys))
        return ps[last], tp, seen - tp, pos - tp, (float(ws.sum()) - pos) - (seen - tp)
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    pos = ys.sum()
    return ps[last], tp, fp, pos - tp, (len(ys) - pos) - fp


def choose_threshold(y: np.ndarray, p: np.ndarray, *, cost_fp: float | None = None, cost_fn: float | None = None,
                     target_precision: float | None = None, target_recall: float | None = None,
                     weights: np.ndarray | None = None, positive: int = 1) -> dict[str, Any]:
    """The threshold on positive-class probabilities that one rule picks, for true classes ``y`` in 0/1 and the
    probabilities ``p`` of class 1:

    - ``cost_fp`` and ``cost_fn``: the least total cost of false positives and false negatives;
    - ``target_precision``: the highest recall whose precision is at least the target;
    - ``target_recall``: the highest precision whose recall is at least the target.

    With ``weights``, each row counts for its weight (costs, precision and recall alike). ``positive``: the class
    (0 or 1) the threshold, precision and recall are about, and whose probability is ``1 - p`` where it is 0; its
    threshold is then ``positive_value``, and ``value`` the same decision said on ``p`` (class 1 from ``value``
    on), as every reader of a binary model's threshold applies it.
    """
    if positive not in (0, 1):
        raise ConfigError(f"The positive class of a binary model is its class 0 or 1; got {positive!r}.")
    if positive == 0:
        chosen = choose_threshold(1 - np.asarray(y, dtype=np.int64), 1.0 - np.asarray(p, dtype=float),
                                  cost_fp=cost_fp, cost_fn=cost_fn, target_precision=target_precision,
                                  target_recall=target_recall, weights=weights)
        return {**chosen, "value": second_class_threshold(chosen["value"]), "positive_index": 0,
                "positive_value": chosen["value"]}
    rules = [cost_fp is not None or cost_fn is not None, target_precision is not None, target_recall is not None]
    if sum(rules) != 1:
        raise ConfigError("Choose the threshold by one rule: --cost-fp/--cost-fn, --target-precision or --target-recall.")
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=float)
    thr, tp, fp, fn, tn = _counts(y, p, weights)
    count = int if weights is None else float
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
    if rules[0]:
        cfp, cfn = float(cost_fp if cost_fp is not None else 1.0), float(cost_fn if cost_fn is not None else 1.0)
        if cfp < 0 or cfn < 0:
            raise ConfigError(f"Costs must not be negative; got --cost-fp {cfp} and --cost-fn {cfn}.")
        cost = cfp * fp + cfn * fn
        # answering "negative" for everyone is a candidate too (threshold above every probability)
        none_cost = cfn * (y.sum() if weights is None else float(np.sum(np.asarray(weights) * y)))
        i = int(np.argmin(cost))
        if none_cost < cost[i]:
            return {"value": float(np.nextafter(p.max(), np.inf)), "rule": f"cost FP={cfp:g}, FN={cfn:g}",
                    "precision": 1.0, "recall": 0.0, "false_positives": 0, "false_negatives": count(fn[-1] + tp[-1]),
                    "rows": int(len(y))}
        rule = f"cost FP={cfp:g}, FN={cfn:g}"
    elif rules[1]:
        t = _fraction(target_precision, "--target-precision")
        ok = np.flatnonzero(precision >= t)
        if len(ok) == 0:
            raise ConfigError(f"No threshold reaches a precision of {t:.0%} on these rows; the best is {precision.max():.1%}.")
        i = int(ok[np.argmax(recall[ok])])
        rule = f"precision >= {t:.0%}"
    else:
        t = _fraction(target_recall, "--target-recall")
        ok = np.flatnonzero(recall >= t)
        i = int(ok[np.argmax(precision[ok])])
        rule = f"recall >= {t:.0%}"
    return {"value": float(thr[i]), "rule": rule, "precision": float(precision[i]), "recall": float(recall[i]),
            "false_positives": count(fp[i]), "false_negatives": count(fn[i]), "rows": int(len(y))}


def second_class_threshold(t: float) -> float:
    """The threshold on the probability ``p`` of class 1 that answers class 1 exactly where class 0's probability,
    ``1 - p``, is below ``t``: the least ``v`` with ``1 - v < t`` (found over the floats between 0 and 1, which
    sort as their bits do)."""
    def below(v: float) -> bool:
        return 1.0 - v < t

    if below(0.0):
        return 0.0
    if not below(1.0):
        return float(np.nextafter(1.0, np.inf))
    lo, hi = 0, int(np.float64(1.0).view(np.int64))  # below() is false at lo, true at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if below(float(np.int64(mid).view(np.float64))):
            hi = mid
        else:
            lo = mid
    return float(np.int64(hi).view(np.float64))


def positive_index(model: Any, label: Any, *, option: str = "--positive-class") -> int:
    """The index (0 or 1) of the class ``label`` names in a binary ``model`` (a true/false target's True as
    'true', 'yes' or '1', as the cleaning reads them), or the one-line ConfigError naming ``option`` and the
    classes where it names none or the model is not binary."""
    from ..data.conform import bool_value

    classes = ", ".join(map(str, model.classes)) if model.task.is_classification else ""
    if model.task.kind != "binary":
        what = f"its classes are {classes}" if classes else f"it predicts a number ({model.target!r})"
        raise ConfigError(f"{option} {label!r} is for a two-class model's decision threshold; this model is "
                          f"{model.task.kind} ({what}): leave {option} out.")
    found = [i for i, c in enumerate(model.classes) if c == label or str(c) == str(label)
             or (str(c) in ("True", "False") and bool_value(label) == (str(c) == "True"))]
    if not found:
        raise ConfigError(f"{option} {label!r} is not a class of this model; its classes are {classes}.")
    return found[0]


def positive_side(model: Any) -> tuple[Any, float] | None:
    """The class a binary ``model``'s decision threshold is about and the threshold on its probability, or None
    where it has none; a threshold saved before it carried its class is about the second class in sorted order."""
    threshold = (getattr(model, "extras", None) or {}).get("threshold")
    if threshold is None or model.task.kind != "binary":
        return None
    index = int(threshold.get("positive_index", 1))
    return model.classes[index], float(threshold.get("positive_value", threshold["value"]))


def _fraction(v: float | None, option: str) -> float:
    if v is None or not 0 < v <= 1:
        raise ConfigError(f"{option} must be between 0 and 1 (e.g. 0.9); got {v}.")
    return float(v)


def threshold_table(y: np.ndarray, p: np.ndarray, thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                    *, weights: np.ndarray | None = None) -> list[dict[str, float]]:
    """Precision, recall and share flagged positive at a few thresholds, for a person to pick from (rows
    counting for their ``weights`` where given)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for t in thresholds:
        flag = p >= t
        tp: float
        if weights is None:
            tp, flagged, pos, share = int((flag & (y == 1)).sum()), flag.sum(), (y == 1).sum(), float(flag.mean())
        else:
            tp, flagged, pos = float(w[flag & (y == 1)].sum()), float(w[flag].sum()), float(w[y == 1].sum())
            share = flagged / float(w.sum())
        rows.append({"threshold": t, "flagged": share,
                     "precision": tp / flagged if flagged else float("nan"),
                     "recall": tp / pos if pos else float("nan")})
    return rows
