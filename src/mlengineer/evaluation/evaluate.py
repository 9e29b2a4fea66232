"""How good a model is on labelled rows it did not learn from: metrics with bootstrap confidence intervals,
curves, calibration, the honesty of its ranges and sets, and the slices where it does worst.

    >>> result = evaluate(model, test_frame)        # doctest: +SKIP
    >>> result["metrics"]["rmse"], result["intervals"]["rmse"]   # doctest: +SKIP

A model trained with row weights (``--weight-column``) is evaluated with them where the rows hold that column:
its metrics, their intervals, the baseline, the calibration error, the threshold table and the coverage of its
ranges and sets count each row for its weight (``weights=False``: each row once); the confusion matrix, the
error quantiles and the slices count rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..metrics import get_metric
from .bootstrap import bootstrap_interval, fast_metric
from .calibration import describe, expected_calibration_error, reliability_curve
from .slices import slice_metrics

__all__ = ["REPORTED_METRICS", "evaluate", "evaluate_predictions", "graded_coverage", "labelled_frame",
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


def evaluate(model: Any, data: pd.DataFrame, *, n_boot: int = 200, seed: int = 0,
             slices: bool = True, weights: bool = True) -> dict[str, Any]:
    """Everything ``evaluate_predictions`` reports for ``model`` on ``data`` (which must hold the target),
    plus metrics per slice of each categorical column and, for classifiers, the calibration error of the
    model's probabilities before its calibrator. Weighted by the model's weight column where ``data`` holds
    it (``result["weighted_by"]``), unless ``weights`` is False."""
    data = labelled_frame(data)
    target = model.target
    if target not in data.columns:
        raise DataError(f"The data has no column {target!r}: evaluation needs the true values of the target.")
    mask = data[target].notna()
    labelled = data.loc[mask].reset_index(drop=True)
    if labelled.empty:
        raise DataError(f"Every row misses a value for {target!r}: there is nothing to evaluate on.")
    w, column = labelled_weights(model, data, mask, weights=weights)
    y = model.task.encode(labelled[target])
    features = labelled.drop(columns=[target])
    X = model.encode(features)
    uncalibrated = model.predictor.predict_raw(X)
    raw = model.calibrated(uncalibrated)
    result = evaluate_predictions(model.task, y, raw, metric=model.metadata.get("metric"), n_boot=n_boot,
                                  seed=seed, conformal=model.extras.get("conformal"), weights=w)
    result["weighted_by"] = column
    if model.task.is_classification:
        result["calibration"]["ece_before_calibration"] = expected_calibration_error(y, uncalibrated, weights=w)
        result["calibration"]["method"] = describe(model.extras.get("calibrator"))["method"]
        threshold = model.extras.get("threshold")
        if threshold is not None and model.task.kind == "binary":
            result["threshold"] = _at_threshold(y, raw[:, 1], threshold)
    if slices:
        columns = [c.name for c in model.schema.columns
                   if c.name in model.feature_names and c.role.value in ("categorical", "boolean")]
        result["slices"] = slice_metrics(features, columns, model.task.kind, y, raw)
        result["worst_slices"] = sorted((s for s in result["slices"] if s["flagged"]),
                                        key=lambda s: -s["loss_vs_overall"])[:10]
    return result


def evaluate_predictions(task: Any, y: np.ndarray, raw: np.ndarray, *, metric: str | None = None,
                         n_boot: int = 200, seed: int = 0, conformal: Any = None,
                         weights: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics with 95% bootstrap intervals, a constant baseline, and the task's curves, for encoded truth
    ``y`` and raw outputs ``raw`` (probabilities (n, k) or values (n,)) on rows the model did not learn from;
    with ``weights``, each row counts for its weight (in the bootstrap too: rows are resampled with theirs)."""
    kind = task.kind
    y = np.asarray(y)
    raw = np.asarray(raw, dtype=float)
    strata = y if task.is_classification else None
    metrics: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    names = list(REPORTED_METRICS[kind])
    if metric and metric not in names:
        names.insert(0, metric)
    for name in names:
        fn = get_metric(name, kind)
        try:
            metrics[name] = fn(y, raw, weights)
        except ValueError:  # e.g. AUC on rows of one class only
            continue
        boot = fast_metric(name, fn, y, raw) if weights is None else fn
        lo, hi = bootstrap_interval(boot, y, raw, n_boot=n_boot, seed=seed, strata=strata, weights=weights)
        intervals[name] = [lo, hi]
    result: dict[str, Any] = {
        "n_rows": int(len(y)), "task": kind, "primary_metric": metric, "metrics": metrics, "intervals": intervals,
        "interval_level": 0.95, "baseline": _baseline(kind, y, raw.shape[1] if raw.ndim == 2 else 0, weights, names=names),
        "curves": {}, "slices": [], "worst_slices": [],
    }
    rng = np.random.default_rng(seed)
    if task.is_classification:
        from sklearn.metrics import confusion_matrix

        labels = raw.argmax(axis=1)
        k = raw.shape[1]
        result["confusion"] = {"labels": [str(c) for c in task.classes],
                               "matrix": confusion_matrix(y, labels, labels=np.arange(k)).tolist()}
        result["calibration"] = {"ece": expected_calibration_error(y, raw, weights=weights),
                                 "curve": reliability_curve(y, raw, bins=10)}
        if kind == "binary" and len(np.unique(y)) == 2:
            result["curves"] = _binary_curves(y, raw[:, 1])
            from .threshold import threshold_table

            result["threshold_table"] = threshold_table(y, raw[:, 1], weights=weights)
        if conformal is not None and (target := graded_coverage(conformal)) is not None:
            member = conformal.sets(raw, target)
            result["uncertainty"] = {"coverage_target": target,
                                     "coverage": _mean(member[np.arange(len(y)), y], weights),
                                     "mean_set_size": _mean(member.sum(axis=1), weights),
                                     "single_label_share": _mean(member.sum(axis=1) == 1, weights)}
    else:
        show = rng.choice(len(y), size=min(len(y), 2000), replace=False)
        result["curves"] = {"residuals": {"predicted": raw[show].tolist(), "actual": y[show].astype(float).tolist()}}
        err = y - raw
        result["errors"] = {"median_absolute": float(np.median(np.abs(err))),
                            "p90_absolute": float(np.quantile(np.abs(err), 0.9)), "bias": float(-err.mean())}
        if conformal is not None and (target := graded_coverage(conformal)) is not None:
            lower, upper = conformal.bounds(raw, target)
            inside = (y >= lower) & (y <= upper)
            half = (upper - lower) / 2
            result["uncertainty"] = {"coverage_target": target, "coverage": _mean(inside, weights),
                                     "median_width": float(np.median(upper - lower)),
                                     "median_half_width": float(np.median(half)),
                                     "below": _mean(y < lower, weights), "above": _mean(y > upper, weights)}
    return result


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
    tp = int((flag & (y == 1)).sum())
    return {**threshold, "precision_here": tp / flag.sum() if flag.sum() else float("nan"),
            "recall_here": tp / (y == 1).sum() if (y == 1).sum() else float("nan"), "flagged_here": float(flag.mean())}


def _baseline(kind: str, y: np.ndarray, k: int, weights: np.ndarray | None = None, *,
              names: list[str] | tuple[str, ...] = ()) -> dict[str, float]:
    """What a constant answer (the most common class, or the mean) would score, for scale (rows counting for
    their ``weights`` where given: the weighted mean and median, the classes' weighted shares); every metric of
    ``names`` that a constant answer can be scored on (the classes' shares, or the mean, as ``compare ...
    baseline`` answers), beside the usual few."""
    if kind == "regression":
        y = y.astype(float)
        if weights is not None:
            mean = np.average(y, weights=weights)
            order = np.argsort(y, kind="stable")
            cum = np.cumsum(weights[order])
            median = y[order][int(np.searchsorted(cum, 0.5 * cum[-1]))]
            out = {"rmse": float(np.sqrt(np.average((y - mean) ** 2, weights=weights))),
                   "mae": float(np.average(np.abs(y - median), weights=weights)), "r2": 0.0}
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
