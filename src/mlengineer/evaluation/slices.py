"""Metrics for each slice of the data (each value of each categorical column), with the slices where the
model does significantly worse than on the rest flagged, so nobody learns about them in production."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["row_losses", "slice_metrics"]

MISSING = "(missing)"
OTHER = "(other values)"


def row_losses(kind: str, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Each row's own loss: log loss of its true class, or its absolute error."""
    if kind == "regression":
        return np.abs(np.asarray(y, float) - np.asarray(raw, float))
    p = np.clip(np.asarray(raw)[np.arange(len(y)), y], 1e-15, 1.0)
    return 0.0 - np.log(p)  # a sure right answer loses 0, not -0


def slice_metrics(frame: pd.DataFrame, columns: list[str], kind: str, y: np.ndarray, raw: np.ndarray, *,
                  max_values: int = 15, min_rows: int = 20, alpha: float = 0.05, min_ratio: float = 1.1,
                  labels: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per slice: column, value, rows, share, the task's slice metrics, and ``flagged`` when the
    slice's average loss is both significantly above the other rows' (Welch's t-test, Bonferroni-corrected
    over every slice tested; only slices of at least ``min_rows`` rows are tested) and at least
    ``min_ratio`` times the overall average, so a large group a hair worse than average is not flagged.

    A classifier's accuracy counts ``labels``, the classes the model answers (at its decision threshold, where
    it has one: ``decision.decided_labels``), or else the class of the highest probability. A regression's
    ``bias`` is the slice's mean of estimate - actual: above 0 it over-estimates, below 0 it under-estimates."""
    losses = row_losses(kind, y, raw)
    if kind == "regression":
        pred_label = np.zeros(0)
    else:
        pred_label = np.asarray(raw).argmax(axis=1) if labels is None else np.asarray(labels)
    out: list[dict[str, Any]] = []
    for col in columns:
        if col not in frame.columns:
            continue
        values = frame[col].astype("object").where(frame[col].notna(), MISSING).astype(str).to_numpy()
        counts = pd.Series(values).value_counts()
        keep = set(counts.index[:max_values])
        if len(counts) > max_values:
            values = np.where(np.isin(values, list(keep)), values, OTHER)
        for value in pd.unique(values):
            m = values == value
            n = int(m.sum())
            row: dict[str, Any] = {"column": col, "value": str(value), "rows": n, "share": n / len(values),
                                   "mean_loss": float(losses[m].mean())}
            if kind == "regression":
                err = np.asarray(raw, float)[m] - np.asarray(y, float)[m]  # estimate - actual
                row.update(mae=float(np.mean(np.abs(err))), rmse=float(np.sqrt(np.mean(err ** 2))),
                           bias=float(np.mean(err)))
            else:
                row.update(accuracy=float(np.mean(pred_label[m] == y[m])), log_loss=row["mean_loss"])
            row["_test"] = n >= min_rows and n < len(values)
            if row["_test"]:
                t = stats.ttest_ind(losses[m], losses[~m], equal_var=False, alternative="greater")
                row["p_value"] = float(t.pvalue) if np.isfinite(t.pvalue) else 1.0
            out.append(row)
    tested = sum(r["_test"] for r in out) or 1
    overall = float(losses.mean())
    for r in out:
        test = r.pop("_test")
        r["loss_vs_overall"] = r["mean_loss"] / overall if overall > 0 else float("nan")
        r["flagged"] = bool(test and r.get("p_value", 1.0) * tested < alpha and r["loss_vs_overall"] >= min_ratio)
    return out
