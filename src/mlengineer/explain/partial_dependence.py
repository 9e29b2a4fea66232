"""Partial dependence: the model's average prediction as one input column alone takes different values, the
other columns kept as they are in a set of reference rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..features.encoder import RARE

__all__ = ["likely_classes", "partial_dependence"]


def likely_classes(model: Any, X_ref: np.ndarray, n: int = 6) -> list[int]:
    """The ``n`` classes most probable on the reference rows as they are (calibrated, as the curves are)."""
    raw = np.asarray(model.predictor.predict_raw(X_ref), dtype=float).reshape(len(X_ref), -1)
    calibrator = model.extras.get("calibrator")
    if calibrator is not None:
        raw = calibrator.transform(raw)
    return [int(c) for c in np.argsort(-raw.mean(axis=0), kind="stable")[:n]]


def partial_dependence(model: Any, X_ref: np.ndarray, column: str, *, points: int = 20,
                       max_categories: int = 12, classes: list[int] | None = None) -> dict[str, Any] | None:
    """``{"column", "kind", "grid", "series": {name: values}}`` for a numeric, boolean or categorical input
    column, or None for columns that become several features (dates, text) or are absent.

    The series is the average prediction (regression), the average probability of the positive class
    (binary), or of each of the classes most probable on ``X_ref`` (multiclass, at most six: the same six for
    every column; ``classes``, from ``likely_classes``, saves finding them again for each column)."""
    enc = model.encoder
    names = list(enc.feature_names_)
    role = enc.roles_.get(column)
    if column not in names or role not in ("numeric", "boolean", "categorical"):
        return None
    j = names.index(column)
    values = X_ref[:, j]
    if role == "categorical":
        present, counts = np.unique(values[~np.isnan(values)], return_counts=True)
        codes = present[np.argsort(-counts)][:max_categories]
        cats = enc.categories_[column]
        grid_values = codes
        grid: list[Any] = ["(rare)" if cats[int(c)] == RARE else cats[int(c)] for c in codes]
        kind = "categorical"
    else:
        finite = values[~np.isnan(values)]
        if len(finite) == 0:
            return None
        grid_values = np.unique(np.quantile(finite, np.linspace(0.05, 0.95, points)))
        grid = grid_values.astype(float).tolist()
        kind = "numeric"
    if len(grid_values) < 2:
        return None
    stacked = np.repeat(X_ref[None, :, :], len(grid_values), axis=0)
    stacked[:, :, j] = np.asarray(grid_values, dtype=np.float32)[:, None]
    raw = model.predictor.predict_raw(stacked.reshape(-1, X_ref.shape[1]))
    calibrator = model.extras.get("calibrator")
    if calibrator is not None and model.task.is_classification:
        raw = calibrator.transform(raw)
    if not model.task.is_classification:
        mean = raw.reshape(len(grid_values), len(X_ref)).mean(axis=1)
        series = {"average prediction": mean.tolist()}
    else:
        mean = raw.reshape(len(grid_values), len(X_ref), -1).mean(axis=1)  # (grid, k)
        labels = [str(c) for c in model.classes]
        if len(labels) == 2:
            series = {f"P({labels[1]})": mean[:, 1].tolist()}
        else:
            top = likely_classes(model, X_ref) if classes is None else classes
            series = {f"P({labels[c]})": mean[:, c].tolist() for c in top}
    return {"column": column, "kind": kind, "grid": grid, "series": series}
