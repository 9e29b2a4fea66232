"""Conformal prediction intervals (regression) from residuals on rows the model did not learn from."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ModelError

__all__ = ["conformal_quantile", "interval_bounds"]


def conformal_quantile(residuals: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile of absolute residuals for the wanted coverage (finite-sample corrected)."""
    if not 0 < coverage < 1:
        raise ConfigError(f"The interval coverage must be between 0 and 1 (e.g. 0.9); got {coverage}.")
    r = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    n = len(r)
    if n == 0:
        raise ModelError("The model kept no validation rows, so it cannot give prediction intervals.")
    k = int(np.ceil((n + 1) * coverage))
    return float(r[min(k, n) - 1])


def interval_bounds(pred: np.ndarray, valid_y: np.ndarray, valid_pred: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds around ``pred`` that hold the truth ``coverage`` of the time."""
    q = conformal_quantile(np.asarray(valid_y) - np.asarray(valid_pred), coverage)
    return pred - q, pred + q
