"""Metrics, by name: what the search optimises and what evaluation reports.

A metric takes the encoded truth (class indices 0..k-1 for classification, floats for regression) and the
model's raw output (a probability matrix of shape (n, k) for classification, values for regression), and
optionally each row's weight (``metric(y, raw, weights)``: a row of weight 2 counts as two rows, one of
weight 0 not at all; the user's weight column). Any scikit-learn scorer name
(``sklearn.metrics.get_scorer_names()``) works too.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from .errors import ConfigError

__all__ = ["METRICS", "Metric", "ensemble_metric", "get_metric", "row_losses", "weighted_binary_auc"]

#: ``fn(y, raw)``, or ``fn(y, raw, weights)`` for a weighted score (a metric's function takes both forms)
Fn = Callable[..., float]


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction and the tasks it applies to."""

    name: str
    fn: Fn
    greater_is_better: bool
    tasks: frozenset[str]
    #: judged on predicted labels with every class counting alike: the learners then weight classes
    #: inversely to their frequency, so a rare class is not simply outvoted
    balanced: bool = False
    #: scores probabilities only by their order (ROC AUC, average precision): any increasing map of them
    #: scores the same, so the metric says nothing about whether a "70%" means 70%
    rank_only: bool = False
    #: counts rows by their weights (a few scikit-learn scorers, such as max_error, cannot)
    takes_weights: bool = True

    def __call__(self, y_true: np.ndarray, raw: np.ndarray, weights: np.ndarray | None = None) -> float:
        """The metric of ``raw`` against ``y_true``; with ``weights``, each row counts for its weight (NaN
        where the rows' weights add up to nothing)."""
        if weights is None:
            return float(self.fn(np.asarray(y_true), np.asarray(raw)))
        if not self.takes_weights:
            raise ConfigError(f"The metric {self.name!r} cannot count rows by their weights: choose another "
                              "metric, or count every row once (no --weight-column; --no-weights to measure).")
        w = np.asarray(weights, dtype=np.float64)
        if not w.sum() > 0:
            return float("nan")
        return float(self.fn(np.asarray(y_true), np.asarray(raw), w))

    def loss(self, y_true: np.ndarray, raw: np.ndarray, weights: np.ndarray | None = None) -> float:
        """The metric turned so that lower is better, which is what the search minimises."""
        v = self(y_true, raw, weights)
        return -v if self.greater_is_better else v


def _labels(raw: np.ndarray) -> np.ndarray:
    return raw.argmax(axis=1) if raw.ndim == 2 else raw


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic on average ranks: scikit-learn's value (ties included) at a
    tenth of its cost, which matters when ensemble selection scores hundreds of blends."""
    from scipy.stats import rankdata

    pos = np.asarray(y) == 1
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined in that case.")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def weighted_binary_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> float:
    """ROC AUC with row weights: the weighted share of (positive, negative) pairs ranked right, ties counting
    half (scikit-learn's ``roc_auc_score(..., sample_weight=w)``), by one sort."""
    pos = np.asarray(y) == 1
    w_pos, w_neg = float(w[pos].sum()), float(w[~pos].sum())
    if w_pos <= 0 or w_neg <= 0:
        raise ValueError("Only one class present in y_true (of weight above 0). ROC AUC score is not defined in "
                         "that case.")
    values, group = np.unique(score, return_inverse=True)
    neg_at = np.bincount(group, weights=np.where(pos, 0.0, w), minlength=len(values))
    pos_at = np.bincount(group, weights=np.where(pos, w, 0.0), minlength=len(values))
    below = np.cumsum(neg_at) - neg_at  # negative weight strictly below each distinct score
    return float(np.sum(pos_at * (below + 0.5 * neg_at)) / (w_pos * w_neg))


def _roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    if p.ndim == 1:
        return _binary_auc(y, p) if w is None else weighted_binary_auc(y, p, w)
    present = np.unique(y if w is None else y[w > 0])
    if len(present) < p.shape[1]:  # a fold without every class: average over the classes it has
        return float(np.mean([skm.roc_auc_score(y == c, p[:, c], sample_weight=w) for c in present]))
    return skm.roc_auc_score(y, p, multi_class="ovr", sample_weight=w)


def _log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    rows = _row_log_loss(y, p)
    # 0.0 + : a perfect answer is 0, never -0
    return float(0.0 + (np.mean(rows) if w is None else np.average(rows, weights=w)))


def _rmse(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    sq = _row_squared(y, p)
    return float(np.sqrt(np.mean(sq) if w is None else np.average(sq, weights=w)))


def _row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), np.asarray(y, dtype=np.int64)])


def _row_squared(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (np.asarray(y, float) - np.asarray(p, float)) ** 2


CLS = frozenset({"binary", "multiclass"})
REG = frozenset({"regression"})

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("roc_auc", _roc_auc, True, CLS, rank_only=True),
        Metric("log_loss", _log_loss, False, CLS),
        Metric("accuracy", lambda y, p, w=None: skm.accuracy_score(y, _labels(p), sample_weight=w), True, CLS),
        Metric("balanced_accuracy", lambda y, p, w=None: skm.balanced_accuracy_score(y, _labels(p), sample_weight=w),
               True, CLS, True),
        Metric("f1", lambda y, p, w=None: skm.f1_score(y, _labels(p), sample_weight=w), True, frozenset({"binary"}),
               True),
        Metric("f1_macro", lambda y, p, w=None: skm.f1_score(y, _labels(p), average="macro", sample_weight=w), True,
               CLS, True),
        Metric("brier", lambda y, p, w=None: skm.brier_score_loss(y, p[:, 1], sample_weight=w), False,
               frozenset({"binary"})),
        Metric("rmse", _rmse, False, REG),
        Metric("mae", lambda y, p, w=None: skm.mean_absolute_error(y, p, sample_weight=w), False, REG),
        Metric("r2", lambda y, p, w=None: skm.r2_score(y, p, sample_weight=w), True, REG),
        Metric("mape", lambda y, p, w=None: skm.mean_absolute_percentage_error(y, p, sample_weight=w), False, REG),
    ]
}


def _sklearn_response(response: object) -> bool:
    """Whether a scorer's response method asks for scores (probabilities or a decision function), not labels:
    the method itself when it is one name, the first it would try when it is a list of them."""
    first = response if isinstance(response, str) else next(iter(response), "") if isinstance(
        response, tuple | list) else ""
    return first in ("predict_proba", "decision_function")


def _probe(task: str) -> tuple[np.ndarray, np.ndarray]:
    """A few rows of the task's outputs (classes and their probabilities, or positive values) a metric is tried on
    before the search, so that one that cannot score the task is refused in one line."""
    if task == "regression":
        return np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.array([1.5, 2.0, 2.5, 4.5, 5.0, 6.5])
    k = 2 if task == "binary" else 3
    y = np.arange(12) % k
    p = np.full((12, k), 0.2 / max(k - 1, 1))
    p[np.arange(12), (y + (np.arange(12) % 4 == 0)) % k] = 0.8
    return y, p / p.sum(axis=1, keepdims=True)


def _from_sklearn(name: str, task: str) -> Metric | None:
    """Wrap a scikit-learn scorer name as a Metric on raw outputs, or None if sklearn does not know it.

    A scorer of probabilities (``predict_proba``/``decision_function``) gets the probabilities, the positive
    class's column for a binary task; one of labels gets the most likely class. A regression scorer applies to
    regression only, every other one to classes; one that fails on a few rows of the task's outputs is refused.
    A ``neg_`` scorer is named without ``neg_`` and shows its value as scikit-learn's function gives it (an
    error, lower is better)."""
    if name not in skm.get_scorer_names():
        return None
    scorer = skm.get_scorer(name)
    func, sign = scorer._score_func, scorer._sign
    kwargs = dict(scorer._kwargs)
    wants_proba = _sklearn_response(scorer._response_method)

    def fn(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
        if task == "regression":
            out = p
        elif wants_proba:
            out = p[:, 1] if p.shape[1] == 2 else p
        else:
            out = _labels(p)
        return float(func(y, out, **kwargs) if w is None else func(y, out, sample_weight=w, **kwargs))

    tasks = REG if func.__module__.endswith("_regression") else CLS
    if task not in tasks:
        return Metric(name.removeprefix("neg_"), fn, sign > 0, tasks)
    # a metric that judges every class alike (balanced accuracy, macro averages, recall, F1, Jaccard) makes the
    # fits weigh classes alike; binary precision is not one: weighing the rare class up lowers it
    balanced = not wants_proba and (any(w in name for w in ("balanced", "f1", "recall", "jaccard"))
                                    or name.startswith("precision_macro"))
    rank_only = wants_proba and any(w in name for w in ("roc_auc", "average_precision"))
    takes_weights = "sample_weight" in inspect.signature(func).parameters
    metric = Metric(name.removeprefix("neg_"), fn, sign > 0, tasks, balanced, rank_only, takes_weights)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = metric(*_probe(task))
    except Exception as e:  # noqa: BLE001 - scikit-learn's own words say why
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"The metric {name!r} cannot score a {task} task ({why}): choose another metric "
                          f"({', '.join(_known(task))} or a scikit-learn scorer for {task}).") from None
    if not np.isfinite(value):
        raise ConfigError(f"The metric {name!r} gives no number on a {task} task: choose another metric "
                          f"({', '.join(_known(task))}).")
    return metric


def _known(task: str) -> list[str]:
    return sorted(k for k, m in METRICS.items() if task in m.tasks)


def get_metric(name: str | None, task: str) -> Metric:
    """The metric called ``name`` for ``task``, or the task's default when ``name`` is None."""
    if name is None:
        name = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
    key = name.lower().strip()
    key = {"auc": "roc_auc", "logloss": "log_loss", "neg_log_loss": "log_loss",
           "neg_root_mean_squared_error": "rmse", "root_mean_squared_error": "rmse"}.get(key, key)
    if key not in METRICS and f"neg_{key}" in skm.get_scorer_names():  # a neg_ scorer by its shown name
        key = f"neg_{key}"
    metric = METRICS.get(key) or _from_sklearn(key, task)
    known = _known(task)
    if metric is None:
        raise ConfigError(
            f"Unknown metric {name!r} for a {task} task: use one of {', '.join(known)} "
            "or a scikit-learn scorer name."
        )
    if task not in metric.tasks:
        other = "a regression" if metric.tasks == REG else "a binary" if metric.tasks == {"binary"} else (
            "a classification")
        hint = (" (or --task regression if the target is a number to predict)" if metric.tasks == REG
                and task == "multiclass" else "")
        raise ConfigError(f"The metric {name!r} does not apply to a {task} task (it is for {other} task): use one "
                          f"of {', '.join(known)}{hint}.")
    return metric


def ensemble_metric(metric: Metric, name: str | None, task: str) -> Metric:
    """The metric the ensemble's weights are chosen by: ``name`` when given, else the search's ``metric``,
    except that a metric that only ranks (ROC AUC) gives way to log loss.

    Averaging models' probabilities for the best ROC AUC happily mixes in under-confident members (random
    forests, k-NN) that add rank diversity and pull every probability towards the middle; log loss, a
    proper scoring rule, rewards the same diversity only while the probabilities stay honest. On
    higgs_subsample (5-fold, 7,500 rows) it halved the expected calibration error (0.028 to 0.013) and the
    ROC AUC rose a little (0.7839 to 0.7848).
    """
    if name is not None:
        try:
            return get_metric(name, task)
        except ConfigError as e:
            raise ConfigError(f"ensemble_metric: {e}") from None
    if metric.rank_only and task != "regression":
        return METRICS["log_loss"]
    return metric


def _row_absolute(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(y, float) - np.asarray(p, float))


#: each row's part of a loss that is a mean over rows (or grows with one, as RMSE and R2 with the squared
#: errors' mean): what a paired comparison of two models' answers row by row is made of
_ROW_LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "log_loss": _row_log_loss,
    "accuracy": lambda y, p: (np.asarray(y) != _labels(np.asarray(p))).astype(np.float64),
    "brier": lambda y, p: _row_squared(y, np.asarray(p)[:, 1]),
    "rmse": _row_squared,
    "r2": _row_squared,
    "mae": _row_absolute,
    "mape": lambda y, p: _row_absolute(y, p) / np.maximum(np.abs(np.asarray(y, float)), np.finfo(np.float64).eps),
}


def row_losses(metric: Metric, y: np.ndarray, raw: np.ndarray) -> np.ndarray | None:
    """Each row's loss under ``metric`` (lower is better; their mean, or a steady function of it, is the
    metric's loss): log loss's -log p, squared errors for RMSE and R2, and so on; None for a metric that is
    not made of rows (ROC AUC, F1, balanced accuracy, a scikit-learn scorer)."""
    fn = _ROW_LOSSES.get(metric.name)
    if fn is None or METRICS.get(metric.name) is not metric:
        return None
    return fn(np.asarray(y), np.asarray(raw))
