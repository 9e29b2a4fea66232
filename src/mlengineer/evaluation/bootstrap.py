"""Bootstrap confidence intervals for metrics, and the paired bootstrap that compares two models."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["bootstrap_interval", "fast_metric", "paired_bootstrap"]

#: ``fn(y, raw)``; with a bootstrap's ``weights``, ``fn(y, raw, weights)`` (a ``Metric`` takes both)
MetricFn = Callable[..., float]


def _auc_binary(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half), as scikit-learn computes it."""
    from scipy.stats import rankdata

    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("ROC AUC needs rows of both classes")
    return float((rankdata(score)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        return _auc_binary(y, p[:, 1])
    present = np.unique(y)
    return float(np.mean([_auc_binary((y == c).astype(int), p[:, c]) for c in present]))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(0.0 - np.mean(np.log(p[np.arange(len(y)), y])))  # never -0


_FAST: dict[str, MetricFn] = {
    "roc_auc": _auc,
    "log_loss": _log_loss,
    "accuracy": lambda y, p: float(np.mean(p.argmax(axis=1) == y)),
    "brier": lambda y, p: float(np.mean((p[:, 1] - (y == 1)) ** 2)),
    "rmse": lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))),
    "mae": lambda y, p: float(np.mean(np.abs(y - p))),
    "r2": lambda y, p: float(1 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2)),
}


def fast_metric(name: str, fn: MetricFn, y: np.ndarray, raw: np.ndarray) -> MetricFn:
    """A NumPy version of metric ``name`` for the thousands of calls a bootstrap makes, when one exists and
    agrees with ``fn`` on these rows; otherwise ``fn`` itself."""
    fast = _FAST.get(name)
    if fast is None:
        return fn
    try:
        if np.isclose(fast(y, raw), fn(y, raw), rtol=1e-6, atol=1e-9):
            return fast
    except (ValueError, IndexError, ZeroDivisionError):
        pass
    return fn


def _resamples(n: int, n_boot: int, seed: int, strata: np.ndarray | None) -> list[np.ndarray]:
    """Row indices of ``n_boot`` bootstrap samples; with ``strata`` each class keeps its count, so that a
    resample never loses a class a metric such as ROC AUC needs."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return [rng.integers(0, n, n) for _ in range(n_boot)]
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    return [np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]) for _ in range(n_boot)]


def _on(fn: MetricFn, y: np.ndarray, raw: np.ndarray, weights: np.ndarray | None, idx: np.ndarray) -> float:
    """``fn`` on the resampled rows ``idx``, with their weights where there are any."""
    return fn(y[idx], raw[idx]) if weights is None else fn(y[idx], raw[idx], weights[idx])


def bootstrap_interval(fn: MetricFn, y: np.ndarray, raw: np.ndarray, *, n_boot: int = 200, level: float = 0.95,
                       seed: int = 0, strata: np.ndarray | None = None,
                       weights: np.ndarray | None = None) -> tuple[float, float]:
    """The percentile bootstrap interval of metric ``fn(y, raw)`` at ``level`` (rows resampled; with
    ``weights``, each with its weight, scored by ``fn(y, raw, weights)``)."""
    values = []
    for idx in _resamples(len(y), n_boot, seed, strata):
        try:
            values.append(_on(fn, y, raw, weights, idx))
        except ValueError:
            continue
    values = [v for v in values if np.isfinite(v)] if weights is not None else values
    if not values:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(values, [a, 1 - a])
    return float(lo), float(hi)


def paired_bootstrap(fn: MetricFn, y: np.ndarray, raw_a: np.ndarray, raw_b: np.ndarray, *, n_boot: int = 1000,
                     level: float = 0.95, seed: int = 0, strata: np.ndarray | None = None,
                     weights: np.ndarray | None = None) -> dict[str, float]:
    """The difference ``fn(A) - fn(B)`` on the same resampled rows (each with its ``weights``, where given):
    its interval and a two-sided p-value (twice the share of resamples on the far side of zero)."""
    diffs = []
    for idx in _resamples(len(y), n_boot, seed, strata):
        try:
            diffs.append(_on(fn, y, raw_a, weights, idx) - _on(fn, y, raw_b, weights, idx))
        except ValueError:
            continue
    d = np.asarray(diffs)
    if weights is not None:  # a resample of rows that all weigh 0 scores nothing
        d = d[np.isfinite(d)]
    everything = np.arange(len(y))
    observed = _on(fn, y, raw_a, weights, everything) - _on(fn, y, raw_b, weights, everything)
    if len(d) == 0 or np.all(d == 0):
        return {"difference": float(observed), "low": 0.0, "high": 0.0, "p_value": 1.0}
    a = (1 - level) / 2
    lo, hi = np.quantile(d, [a, 1 - a])
    p = 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0)))
    return {"difference": float(observed), "low": float(lo), "high": float(hi),
            "p_value": float(min(1.0, max(p, 1.0 / len(d))))}
