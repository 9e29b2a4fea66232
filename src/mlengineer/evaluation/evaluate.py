"""Metrics of a model on labelled rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import get_metric

__all__ = ["REPORTED_METRICS", "evaluate"]

REPORTED_METRICS = {
    "binary": ["roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "brier"],
    "multiclass": ["log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc"],
    "regression": ["rmse", "mae", "r2"],
}


def evaluate(model: Any, data: pd.DataFrame) -> dict[str, Any]:
    """The task's usual metrics of ``model`` on ``data``, which must hold the target column."""
    target = model.target
    if target not in data.columns:
        raise DataError(f"The data has no column {target!r}: evaluation needs the true values of the target.")
    labelled = data.loc[data[target].notna()]
    if labelled.empty:
        raise DataError(f"Every row misses a value for {target!r}: there is nothing to evaluate on.")
    y = model.task.encode(labelled[target])
    raw = model.predict_raw(labelled.drop(columns=[target]))
    metrics: dict[str, float] = {}
    for name in REPORTED_METRICS[model.task.kind]:
        try:
            metrics[name] = float(get_metric(name, model.task.kind)(y, raw))
        except ValueError:  # e.g. AUC on rows of one class only
            continue
    return {"n_rows": int(len(labelled)), "metrics": metrics, "task": model.task.kind,
            "primary_metric": model.metadata.get("metric"),
            "baseline": _baseline(model.task.kind, y)}


def _baseline(kind: str, y: np.ndarray) -> dict[str, float]:
    """What always predicting the most common class (or the mean) would score, for scale."""
    if kind == "regression":
        return {"rmse": float(np.std(y)), "mae": float(np.mean(np.abs(y - np.median(y))))}
    counts = np.bincount(y)
    return {"accuracy": float(counts.max() / counts.sum())}
