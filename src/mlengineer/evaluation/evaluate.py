"""How good a model is on labelled rows it did not learn from: metrics with bootstrap confidence intervals,
curves, calibration, the honesty of its ranges and sets, and the slices where it does worst.

    >>> result = evaluate(model, test_frame)        # doctest: +SKIP
    >>> result["metrics"]["rmse"], result["intervals"]["rmse"]   # doctest: +SKIP

A model trained with row weights (``--weight-column``) is evaluated with them where the rows hold that column:
its metrics, their intervals, the baseline, the calibration error, the threshold table and the coverage of its
ranges and sets count each row for its weight (``weights=False``: each row once); the confusion matrix, the
error quantiles and the slices count rows.

A binary model given a decision threshold by ``mlengineer calibrate`` is judged by the labels it answers at it
(accuracy, balanced accuracy, F1, the confusion matrix, each slice's accuracy), as ``predict`` answers; its
probability metrics (ROC AUC, log loss, Brier) are the same either way. The constant baseline answers what a
model could know: the class shares, mean or median of the rows the model was validated on at training
(``baseline.py``). Fewer than ``MIN_ROWS`` labelled rows are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..metrics import get_metric
from .baseline import constant_baseline, training_prior
from .bootstrap import bootstrap_interval, fast_metric
from .calibration import describe, expected_calibration_error, reliability_curve
from .decision import as_decided, decided_labels, decision_threshold
from .slices import slice_metrics

__all__ = ["MIN_ROWS", "REPORTED_METRICS", "evaluate", "evaluate_predictions", "graded_coverage", "labelled_frame",
           "labelled_weights"]

REPORTED_METRICS = {
    "binary": ["roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "brier"],
    "multiclass": ["log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc"],
    "regression": ["rmse", "mae", "r2"],
}
COVERAGE = 0.9


def labelled_weights(model: Any, data: pd.DataFrame, labelled: pd.Series, *, weights: bool = True
                     ) -> tuple[np.ndarray | None, str | None]:
    """The weights of ``data``'s ``labelled`` rows (a mask) from the column the model was trained to weight rows
    by, checked as training checks them, and that column's name; (None, None) where the model has none, the
    data lacks it, or ``weights`` is False (each row then counts once)."""
    from ..training.weights import numbered, read_weights

    column = model.metadata.get("weight_column")
    if not weights or not column or column not in data.columns:
        return None, None
    try:
        return read_weights(data.loc[labelled, column], column, rows="labelled rows",
                            by_number=numbered(data.index)), str(column)
    except DataError as e:  # a measure can go on without them, as training could not
        raise DataError(f"{str(e).rstrip('.')}; or pass --no-weights to count every row once.") from None


def labelled_frame(data: Any) -> pd.DataFrame:
    """Labelled rows as a DataFrame: a DataFrame as it is, records (a list of {column: value}, or one) as
    the rows they are; anything else refused, naming what was given."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, list | tuple) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame(list(data))
    raise DataError(f"Labelled rows come as a DataFrame or records ({{column: value}}, the target among them); "
                    f"got {type(data).__name__}{' (empty)' if isinstance(data, list | tuple) and not data else ''}.")


#: fewest labelled rows an evaluation is made on: on fewer, its intervals, baseline and slices say nothing
MIN_ROWS = 10


def evaluate(model: Any, data: pd.DataFrame, *, n_boot: int = 200, seed: int = 0,
             slices: bool = True, weights: bool = True) -> dict[str, Any]:
    """Everything ``evaluate_predictions`` reports for ``model`` on ``data`` (which must hold the target, in at
    least ``MIN_ROWS`` rows), plus metrics per slice of each categorical column and, for classifiers, the
    calibration error of the model's probabilities before its calibrator. Labels are the model's answers (at its
    decision threshold, where it has one); the baseline is the constant it could know from its validation rows.
    Weighted by the model's weight column where ``data`` holds it (``result["weighted_by"]``), unless ``weights``
    is False."""
    data = labelled_frame(data)
    target = model.target
    if target not in data.columns:
        raise DataError(f"The data has no column {target!r}: evaluation needs the true values of the target.")
    mask = data[target].notna()
    labelled = data.loc[mask].reset_index(drop=True)
    if labelled.empty:
        raise DataError(f"Every row misses a value for {target!r}: there is nothing to evaluate on.")
    if len(labelled) < MIN_ROWS:
        raise DataError(f"Only {len(labelled)} labelled row{'' if len(labelled) == 1 else 's'} (with a value for "
                        f"{target!r}): an evaluation needs at least {MIN_ROWS}, as its intervals, baseline and "
                        "slices mean nothing on fewer. Give more labelled rows.")
    w, column = labelled_weights(model, data, mask, weights=weights)
    y = _encoded_target(model, data.loc[mask, target], data.index)
    features = labelled.drop(columns=[target])
    X = model.encode(features)
    uncalibrated = model.predictor.predict_raw(X)
    raw = model.calibrated(uncalibrated)
    threshold = decision_threshold(model)
    result = evaluate_predictions(model.task, y, raw, metric=model.metadata.get("metric"), n_boot=n_boot,
                                  seed=seed, conformal=model.extras.get("conformal"), weights=w,
                                  threshold=threshold, prior=training_prior(model))
    result["weighted_by"] = column
    if model.task.is_classification:
        result["calibration"]["ece_before_calibration"] = expected_calibration_error(y, uncalibrated, weights=w)
        result["calibration"]["method"] = describe(model.extras.get("calibrator"))["method"]
        if threshold is not None:
            result["threshold"] = _at_threshold(y, raw[:, 1], model.extras["threshold"])
    if slices:
        columns = [c.name for c in model.schema.columns
                   if c.name in model.feature_names and c.role.value in ("categorical", "boolean")]
        labels = None if not model.task.is_classification else decided_labels(raw, threshold)
        result["slices"] = slice_metrics(features, columns, model.task.kind, y, raw, labels=labels)
        result["worst_slices"] = sorted((s for s in result["slices"] if s["flagged"]),
                                        key=lambda s: -s["loss_vs_overall"])[:10]
    return result


def _encoded_target(model: Any, values: pd.Series, index: pd.Index) -> np.ndarray:
    """The target's true values as the model's task encodes them; a regression target holding text is refused
    naming the first such value and its row (a file's rows numbered from 1), and what the model needs."""
    try:
        return np.asarray(model.task.encode(values.reset_index(drop=True)))
    except DataError:
        if model.task.kind != "regression":
            raise
    from ..training.weights import numbered

    for label, value in values.items():
        try:
            model.task.encode(pd.Series([value]))
        except DataError:
            where = f"row {int(label) + 1}" if numbered(index) else f"the row of index {label!r}"
            raise DataError(f"The target {model.target!r} holds text such as {value!r} ({where}), and this model "
                            f"estimates numbers: give {model.target!r} as numbers to evaluate it.") from None
    raise DataError(f"The target {model.target!r} holds values that are not numbers: this model estimates numbers.")


def evaluate_predictions(task: Any, y: np.ndarray, raw: np.ndarray, *, metric: str | None = None,
                         n_boot: int = 200, seed: int = 0, conformal: Any = None,
                         weights: np.ndarray | None = None, threshold: float | None = None,
                         prior: tuple[np.ndarray, np.ndarray | None] | None = None) -> dict[str, Any]:
    """Metrics with 95% bootstrap intervals, a constant baseline, and the task's curves, for encoded truth
    ``y`` and raw outputs ``raw`` (probabilities (n, k) or values (n,)) on rows the model did not learn from;
    with ``weights``, each row counts for its weight (in the bootstrap too: rows are resampled with theirs).

    ``threshold``: a binary model's decision threshold; its metrics of labels (accuracy, F1, ...) and confusion
    matrix then count the labels it answers at it (``result["decision"]``). ``prior``: the rows the model kept
    at training (truth, weights), which the constant baseline learns its answer from, as a model could; without
    it, the baseline's constant comes from ``y`` itself (``result["baseline_from"]`` says which)."""
    kind = task.kind
    y = np.asarray(y)
    raw = np.asarray(raw, dtype=float)
    threshold = threshold if kind == "binary" else None
    names = list(REPORTED_METRICS[kind])
    if metric and metric not in names:
        names.insert(0, metric)
    metrics, intervals = _scores(kind, names, y, raw, weights, threshold, n_boot=n_boot, seed=seed)
    k = raw.shape[1] if raw.ndim == 2 else 0
    baseline, baseline_from = constant_baseline(kind, y, k, weights, names=names, prior=prior)
    result: dict[str, Any] = {
        "n_rows": int(len(y)), "task": kind, "primary_metric": metric, "metrics": metrics, "intervals": intervals,
        "interval_level": 0.95, "baseline": baseline, "baseline_from": baseline_from,
        "decision": None if threshold is None else {"threshold": float(threshold)},
        "curves": {}, "slices": [], "worst_slices": [],
    }
    if task.is_classification:
        result.update(_classification_parts(task, y, raw, weights, threshold, conformal))
    else:
        result.update(_regression_parts(y, raw, weights, conformal, seed))
    return result


def _scores(kind: str, names: list[str], y: np.ndarray, raw: np.ndarray, weights: np.ndarray | None,
            threshold: float | None, *, n_boot: int, seed: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Each metric of ``names`` and its bootstrap interval; metrics of labels score the labels answered at
    ``threshold`` where there is one."""
    strata = y if kind != "regression" else None
    metrics: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    for name in names:
        fn = get_metric(name, kind)
        scored = as_decided(kind, name, raw, threshold)
        try:
            metrics[name] = fn(y, scored, weights)
        except ValueError:  # e.g. AUC on rows of one class only
            continue
        boot = fast_metric(name, fn, y, scored) if weights is None else fn
        lo, hi = bootstrap_interval(boot, y, scored, n_boot=n_boot, seed=seed, strata=strata, weights=weights)
        intervals[name] = [lo, hi]
    return metrics, intervals


def _classification_parts(task: Any, y: np.ndarray, raw: np.ndarray, weights: np.ndarray | None,
                          threshold: float | None, conformal: Any) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    k = raw.shape[1]
    labels = decided_labels(raw, threshold)
    out: dict[str, Any] = {
        "confusion": {"labels": [str(c) for c in task.classes],
                      "matrix": confusion_matrix(y, labels, labels=np.arange(k)).tolist()},
        "calibration": {"ece": expected_calibration_error(y, raw, weights=weights),
                        "curve": reliability_curve(y, raw, bins=10)}}
    if task.kind == "binary" and len(np.unique(y)) == 2:
        from .threshold import threshold_table

        out["curves"] = _binary_curves(y, raw[:, 1])
        out["threshold_table"] = threshold_table(y, raw[:, 1], weights=weights)
    if conformal is not None and (target := graded_coverage(conformal)) is not None:
        member = conformal.sets(raw, target)
        out["uncertainty"] = {"coverage_target": target, "coverage": _mean(member[np.arange(len(y)), y], weights),
                              "mean_set_size": _mean(member.sum(axis=1), weights),
                              "single_label_share": _mean(member.sum(axis=1) == 1, weights)}
    return out


def _regression_parts(y: np.ndarray, raw: np.ndarray, weights: np.ndarray | None, conformal: Any,
                      seed: int) -> dict[str, Any]:
    """The residuals to plot, the errors' quantiles and bias (estimate - actual: above 0, too high), and the
    coverage of the model's ranges."""
    rng = np.random.default_rng(seed)
    show = rng.choice(len(y), size=min(len(y), 2000), replace=False)
    err = raw - y
    out: dict[str, Any] = {
        "curves": {"residuals": {"predicted": raw[show].tolist(), "actual": y[show].astype(float).tolist()}},
        "errors": {"median_absolute": float(np.median(np.abs(err))), "p90_absolute": float(np.quantile(np.abs(err), 0.9)),
                   "bias": float(err.mean())}}
    if conformal is not None and (target := graded_coverage(conformal)) is not None:
        lower, upper = conformal.bounds(raw, target)
        inside = (y >= lower) & (y <= upper)
        half = (upper - lower) / 2
        out["uncertainty"] = {"coverage_target": target, "coverage": _mean(inside, weights),
                              "median_width": float(np.median(upper - lower)),
                              "median_half_width": float(np.median(half)),
                              "below": _mean(y < lower, weights), "above": _mean(y > upper, weights)}
    return out


def graded_coverage(conformal: Any) -> float | None:
    """The coverage the summaries grade ranges or sets at: 90%, or where the model kept too few calibration
    rows to promise it (fewer than 19 for ranges), the most they can promise, rounded down to a whole percent;
    None below 50% (too few rows to grade). Past the most they promise, the widest error seen would stand in
    for the quantile and be graded as if it were one."""
    try:
        return conformal.check(COVERAGE)
    except ConfigError:
        n = len(conformal.scores_)
        most = conformal.max_coverage() if hasattr(conformal, "max_coverage") else n / (n + 1)
        most = math.floor(most * 100 + 1e-9) / 100
        return most if most >= 0.5 else None


def _mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    """The mean of ``values``, each counting for its weight where ``weights`` are given."""
    v = np.asarray(values, dtype=float)
    return float(v.mean() if weights is None else np.average(v, weights=weights))


def _binary_curves(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    return {"roc": _thin({"fpr": fpr, "tpr": tpr}), "pr": _thin({"recall": recall, "precision": precision}),
            "positive_rate": float(np.mean(y))}


def _thin(curve: dict[str, np.ndarray], points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` points of a curve, keeping both ends, for plots and JSON."""
    n = len(next(iter(curve.values())))
    idx = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int))
    return {k: np.asarray(v)[idx].astype(float).tolist() for k, v in curve.items()}


def _at_threshold(y: np.ndarray, p: np.ndarray, threshold: dict[str, Any]) -> dict[str, Any]:
    flag = p >= threshold["value"]
    if threshold.get("positive_index") == 0:  # about the first class (calibrate --positive-class): where it is answered
        y, flag = 1 - np.asarray(y), ~flag
    tp = int((flag & (y == 1)).sum())
    return {**threshold, "precision_here": tp / flag.sum() if flag.sum() else float("nan"),
            "recall_here": tp / (y == 1).sum() if (y == 1).sum() else float("nan"), "flagged_here": float(flag.mean())}
