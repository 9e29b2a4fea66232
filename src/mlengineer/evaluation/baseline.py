"""The constant baseline: what a model that never looks at a row would score, answering every row alike with
what it could know from training (the class shares, the mean, or for MAE the median, of the rows the model
was validated on at training), as ``compare A baseline`` answers. Only where no such rows are given is the
constant taken from the scored rows themselves, which flatters it (it then knows the answers' mix), and
``baseline_from`` says so.

    >>> scores, source = constant_baseline("binary", y, 2, prior=(y_valid, None))    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics import get_metric

__all__ = ["constant_answer", "constant_baseline", "training_prior"]

#: a (truth, weights or None) pair: the rows a constant answer is learned from
Prior = tuple[np.ndarray, np.ndarray | None]
#: metrics whose best constant answer is the median rather than the mean
MEDIAN_METRICS = frozenset({"mae", "median_absolute_error", "neg_mean_absolute_error", "neg_median_absolute_error"})


def training_prior(model: Any) -> Prior | None:
    """The rows the model kept at training (its validation rows: truth and weights), or None where it kept none."""
    validation = getattr(model, "validation", None) or {}
    if "y" not in validation:
        return None
    return np.asarray(validation["y"]), validation.get("weight")


def _median(y: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(np.median(y))
    order = np.argsort(y, kind="stable")
    cum = np.cumsum(np.asarray(weights, dtype=float)[order])
    return float(y[order][int(np.searchsorted(cum, 0.5 * cum[-1]))])


def constant_answer(kind: str, k: int, prior: Prior, metric: str | None = None) -> np.ndarray:
    """The one answer learned from ``prior``: the classes' (weighted) shares (k,), or the (weighted) mean of the
    values, their median for a metric of absolute errors (``metric``), as a 0-d array."""
    y, w = np.asarray(prior[0]), prior[1]
    if kind != "regression":
        counts = np.bincount(y.astype(np.int64), weights=w, minlength=k)
        return counts / counts.sum()
    y = y.astype(float)
    if metric in MEDIAN_METRICS:
        return np.asarray(_median(y, w))
    return np.asarray(float(np.mean(y) if w is None else np.average(y, weights=w)))


def constant_baseline(kind: str, y: np.ndarray, k: int, weights: np.ndarray | None = None, *,
                      names: list[str] | tuple[str, ...] = (), prior: Prior | None = None
                      ) -> tuple[dict[str, float], str]:
    """What a constant answer scores on the rows ``y`` (each counting for its ``weights`` where given), for the
    usual few metrics and every metric of ``names`` a constant can be scored on; and where the constant comes
    from, in words. The constant is learned from ``prior`` (the rows the model kept at training) where given,
    else from ``y`` itself."""
    if prior is None:
        return _own_baseline(kind, y, k, weights, names), _source(kind, None)
    n = len(y)
    if kind == "regression":
        y = y.astype(float)
        mean = np.full(n, float(constant_answer(kind, k, prior)))
        median = np.full(n, float(constant_answer(kind, k, prior, "mae")))
        out = {"rmse": float(get_metric("rmse", kind)(y, mean, weights)),
               "mae": float(get_metric("mae", kind)(y, median, weights))}
        return _constant_scores(out, kind, y, mean, weights, ("r2", *names)), _source(kind, prior)
    constant = np.tile(constant_answer(kind, k, prior), (n, 1))
    usual = ("accuracy", "log_loss", "brier") if kind == "binary" else ("accuracy", "log_loss")
    return _constant_scores({"roc_auc": 0.5}, kind, y, constant, weights, (*usual, *names)), _source(kind, prior)


def _source(kind: str, prior: Prior | None) -> str:
    what = "the class shares" if kind != "regression" else "the mean (for MAE the median)"
    if prior is None:
        return (f"{what} of these rows themselves, answered for every row (the model kept no rows at training "
                "to learn a constant from, so this constant knows the answers' mix here)")
    return (f"{what} of the {len(prior[0]):,} rows the model was validated on at training, answered for every "
            "row, as a model that never looks at a row could")


def _own_baseline(kind: str, y: np.ndarray, k: int, weights: np.ndarray | None,
                  names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """The constant of the scored rows' own class shares (or mean and median), where no training rows are given."""
    if kind == "regression":
        y = y.astype(float)
        if weights is not None:
            mean = np.average(y, weights=weights)
            out = {"rmse": float(np.sqrt(np.average((y - mean) ** 2, weights=weights))),
                   "mae": float(np.average(np.abs(y - _median(y, weights)), weights=weights)), "r2": 0.0}
        else:
            mean = float(np.mean(y))
            out = {"rmse": float(np.std(y)), "mae": float(np.mean(np.abs(y - np.median(y)))), "r2": 0.0}
        return _constant_scores(out, kind, y, np.full(len(y), mean), weights, names)
    counts = np.bincount(y, weights=weights, minlength=k)
    prior = counts / counts.sum()
    nz = prior[prior > 0]
    out = {"accuracy": float(counts.max() / counts.sum()), "log_loss": float(0.0 - np.sum(nz * np.log(nz))),
           "roc_auc": 0.5}
    if kind == "binary":
        out["brier"] = float(prior[1] * (1 - prior[1]))
    return _constant_scores(out, kind, y, np.tile(prior, (len(y), 1)), weights, names)


def _constant_scores(out: dict[str, float], kind: str, y: np.ndarray, constant: np.ndarray,
                     weights: np.ndarray | None, names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """``out`` with the score of the ``constant`` answer for each of ``names`` it lacks (balanced accuracy, F1,
    a chosen metric), where the metric can score it."""
    import warnings

    for name in names:
        if name in out:
            continue
        try:
            with warnings.catch_warnings():  # F1 of an answer that never names the positive class: 0, warned
                warnings.simplefilter("ignore")
                out[name] = float(get_metric(name, kind)(y, constant, weights))
        except (ValueError, ZeroDivisionError):
            continue
    return out
