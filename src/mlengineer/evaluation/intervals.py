"""Conformal prediction: ranges (regression) and sets of labels (classification) that hold the truth a
chosen share of the time, from the model's errors on rows it did not learn from.

Regression uses normalised split conformal intervals: each error is divided by the typical error size at
its predicted value, so a skewed target such as a salary gets wider ranges where the model is less sure
(high salaries) and narrow ones where it is sure; lower and upper quantiles are taken apart, so ranges can
be asymmetric. Classification uses the least-ambiguous set rule: a label is in the set when
its probability clears a threshold learned on the calibration rows; the most probable label always is.

Calibration rows may carry weights (the user's weight column): the quantiles are then weighted ones, a row
of weight 2 counting as two rows and the new row as one of average weight (weighted split conformal); rows
of weight 0 take no part.

    >>> conf = ConformalRegressor().fit(y_valid, pred_valid)   # doctest: +SKIP
    >>> lower, upper = conf.bounds(pred_new, 0.9)              # doctest: +SKIP
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import ConfigError, ModelError

__all__ = ["ConformalClassifier", "ConformalRegressor", "check_coverage", "check_supported", "conformal_quantile",
           "interval_bounds"]

#: calibration rows per bin of predicted values when estimating how the error size varies with them
ROWS_PER_SPREAD_BIN = 100
MAX_SPREAD_BINS = 20


def check_coverage(coverage: float) -> float:
    try:
        c = float(coverage)
    except (TypeError, ValueError):
        raise ConfigError(f"The coverage must be a number between 0 and 1 (e.g. 0.9); got {coverage!r}.") from None
    if not 0 < c < 1:
        raise ConfigError(f"The coverage must be between 0 and 1 (e.g. 0.9 for 90%); got {coverage}.")
    return c


#: how far (n + 1) * level may sit above a whole number and still count as it: 0.998 with 999 rows asks for
#: rank 999 exactly, which binary floating point writes as 999.0000000000001
_RANK_SLACK = 1e-9


def _upper_rank(n: int, level: float) -> int:
    """The rank of the split-conformal upper quantile at ``level`` of ``n`` scores: ceil((n + 1) * level)."""
    return int(np.ceil((n + 1) * level - _RANK_SLACK))


def _lower_rank(n: int, level: float) -> int:
    """The rank of the split-conformal lower quantile at ``level`` of ``n`` scores: floor((n + 1) * level)."""
    return int(np.floor((n + 1) * level + _RANK_SLACK))


def check_supported(coverage: float, n_rows: int, *, ranges: bool, most: float | None = None) -> float:
    """``coverage`` as a float, or a ConfigError where ``n_rows`` calibration rows cannot promise it.

    Split conformal promises a coverage only where its quantile's rank, ceil((n + 1) * coverage), is one of
    the n rows: a set's largest coverage is n / (n + 1); a range gives each tail half the misses, so its
    largest is (n - 1) / (n + 1). Past it the range would have to be infinite (the set, every label), and the
    widest error seen holds less often than promised: the request is refused, naming what the rows can
    promise. ``most``: that largest coverage where weights make it other than these."""
    c = check_coverage(coverage)
    if most is None:
        most = (n_rows - 1) / (n_rows + 1) if ranges else n_rows / (n_rows + 1)
    if c <= most + 1e-12:
        return c
    shown = math.floor(max(most, 0.0) * 10_000 + 1e-9) / 10_000  # rounded down, so that asking for it is taken
    exact = Fraction(repr(c))  # the coverage as written (0.99999), so that the count is exact
    need = math.ceil(((1 + exact) if ranges else exact) / (1 - exact))  # the fewest rows that promise it
    rows = f"{n_rows:,} row{'s' if n_rows != 1 else ''}"
    raise ConfigError(f"A coverage of {c:.12g} needs more calibration rows than the model kept: its {rows} can "
                      f"promise {'ranges' if ranges else 'sets'} of at most {shown:g} ({shown:.2%}); ask for that or "
                      f"less, or refit them on at least {need:,} labelled rows the model did not learn from "
                      "('mlengineer calibrate MODEL --data ROWS').")


def _order_stat(sorted_scores: np.ndarray, rank: int) -> float:
    """The ``rank``-th smallest score (1-based), or +/- infinity past either end."""
    n = len(sorted_scores)
    if rank > n:
        return float("inf")
    if rank < 1:
        return float("-inf")
    return float(sorted_scores[rank - 1])


def conformal_quantile(scores: np.ndarray, coverage: float, weights: np.ndarray | None = None) -> float:
    """The split-conformal quantile: the ceil((n+1) * coverage)-th smallest score (finite-sample corrected);
    with ``weights`` (one per score), the smallest score whose cumulative weight reaches ``coverage`` of the
    total plus one average row's."""
    coverage = check_coverage(coverage)
    if weights is not None:
        order = np.argsort(np.asarray(scores, dtype=float), kind="stable")
        s, w = np.asarray(scores, dtype=float)[order], np.asarray(weights, dtype=float)[order]
        if not len(s):
            raise ModelError("The model kept no calibration rows, so it cannot give prediction intervals or sets.")
        return _weighted_stat(s, np.cumsum(w), coverage, upper=True)
    s = np.sort(np.asarray(scores, dtype=float))
    if len(s) == 0:
        raise ModelError("The model kept no calibration rows, so it cannot give prediction intervals or sets.")
    return _order_stat(s, _upper_rank(len(s), coverage))


def _weighted_stat(sorted_scores: np.ndarray, cum: np.ndarray, level: float, *, upper: bool) -> float:
    """The weighted counterpart of ``_order_stat`` at ``level`` of the total weight plus one average row's
    (``cum``: the cumulative weights of ``sorted_scores``): upper, the smallest score whose cumulative weight
    reaches it (+infinity where none does); lower, the largest whose cumulative weight stays within it
    (-infinity where none does). Equal weights give ``_order_stat``'s ranks."""
    total = float(cum[-1])
    mass = level * (total + total / len(cum))
    if upper:
        j = int(np.searchsorted(cum, mass * (1 - 1e-12), side="left"))
        return float(sorted_scores[j]) if j < len(cum) else float("inf")
    j = int(np.searchsorted(cum, mass * (1 + 1e-12), side="right")) - 1
    return float(sorted_scores[j]) if j >= 0 else float("-inf")


def _positive(weights: np.ndarray | None, *arrays: np.ndarray) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """The rows that weigh more than 0 (all of them without weights): weights and ``arrays`` cut to them."""
    if weights is None:
        return None, list(arrays)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    return w[keep], [np.asarray(a)[keep] for a in arrays]


class _Spread:
    """How large the model's errors typically are at a given predicted value: the mean absolute error in
    bins of predicted values, interpolated between bin centres and never below a fifth of the overall one."""

    def fit(self, pred: np.ndarray, abs_err: np.ndarray) -> _Spread:
        k = int(np.clip(len(pred) // ROWS_PER_SPREAD_BIN, 1, MAX_SPREAD_BINS))
        order = np.argsort(pred, kind="stable")
        parts = np.array_split(order, k)
        self.centres_ = np.array([np.median(pred[p]) for p in parts])
        self.values_ = np.array([np.mean(abs_err[p]) for p in parts])
        self.floor_ = max(0.2 * float(np.mean(abs_err)), 1e-12)
        return self

    def __call__(self, pred: np.ndarray) -> np.ndarray:
        if len(self.centres_) == 1:
            return np.full(len(pred), max(self.values_[0], self.floor_))
        return np.maximum(np.interp(pred, self.centres_, self.values_), self.floor_)


class ConformalRegressor:
    """Adaptive split-conformal intervals: signed errors divided by the typical error size at the row's
    predicted value, with separate lower and upper quantiles (so ranges can be asymmetric).

    The scale curve is cross-fitted: each calibration row's error is divided by a curve fitted on the other
    rows, so the rows that shape the curve do not also grade it."""

    def fit(self, y: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> ConformalRegressor:
        """``weights``: the calibration rows' weights, for weighted quantiles (the scale curve is fitted on the
        rows that weigh more than 0, each once)."""
        weights, (y, pred) = _positive(weights, y, pred)
        y = np.asarray(y, dtype=float)
        pred = np.asarray(pred, dtype=float)
        n = len(y)
        if n == 0:
            raise ModelError("No calibration rows: conformal intervals need rows the model did not learn from.")
        err = y - pred
        scores = np.empty(n)
        folds = np.array_split(np.random.default_rng(0).permutation(n), 5 if n >= 50 else 1)
        for part in folds:
            rest = np.setdiff1d(np.arange(n), part, assume_unique=True) if len(folds) > 1 else part
            spread = _Spread().fit(pred[rest], np.abs(err[rest]))
            scores[part] = err[part] / spread(pred[part])
        self.spread_ = _Spread().fit(pred, np.abs(err))
        order = np.argsort(scores, kind="stable")
        self.scores_ = scores[order]
        #: the cumulative weights of ``scores_`` (None: every row counts once)
        self.cum_weights_ = None if weights is None else np.cumsum(weights[order])
        # a target never below zero in the calibration rows (a price, a count) gets no negative lower bound
        self.floor_ = 0.0 if np.min(y) >= 0 else None
        self.n_rows_ = n
        return self

    def max_coverage(self) -> float:
        """The largest coverage these calibration rows can promise ranges of (``check_supported``)."""
        n = len(self.scores_)
        cum = getattr(self, "cum_weights_", None)
        # weighted: the upper tail needs n / (n + 1) of the weight, the lower tail the lowest score's own weight
        lowest = 1.0 if cum is None else max(1.0, float(cum[0]) * n / float(cum[-1]))
        return 1.0 - 2.0 * lowest / (n + 1)

    def check(self, coverage: float) -> float:
        """``coverage`` as a float, or a ConfigError where these calibration rows cannot promise ranges of it
        (``bounds`` itself falls back to the widest error seen, for the summaries that grade ranges)."""
        return check_supported(coverage, len(self.scores_), ranges=True, most=self.max_coverage())

    def bounds(self, pred: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around predictions ``pred`` that hold the truth ``coverage`` of the time
        (where ``check`` takes it: past it, the widest error seen stands in for the quantile)."""
        alpha = 1.0 - check_coverage(coverage)
        pred = np.asarray(pred, dtype=float)
        s, n = self.scores_, len(self.scores_)
        cum = getattr(self, "cum_weights_", None)  # a bundle saved before weights has none
        # each tail gets half the misses; too few rows for a tail falls back to the most extreme error seen
        if cum is None:
            lo = _order_stat(s, _lower_rank(n, alpha / 2))
            hi = _order_stat(s, _upper_rank(n, 1 - alpha / 2))
        else:
            lo, hi = _weighted_stat(s, cum, alpha / 2, upper=False), _weighted_stat(s, cum, 1 - alpha / 2, upper=True)
        lo = min(s[0] if not np.isfinite(lo) else lo, 0.0)
        hi = max(s[-1] if not np.isfinite(hi) else hi, 0.0)
        scale = self.spread_(pred)
        lower, upper = pred + lo * scale, pred + hi * scale
        if self.floor_ is not None:
            lower = np.maximum(lower, self.floor_)
        return lower, upper


class ConformalClassifier:
    """Prediction sets: every label whose probability is at least 1 - q, q learned on calibration rows."""

    def fit(self, y: np.ndarray, proba: np.ndarray, weights: np.ndarray | None = None) -> ConformalClassifier:
        """``weights``: the calibration rows' weights, for a weighted quantile."""
        weights, (y, proba) = _positive(weights, y, proba)
        y = np.asarray(y, dtype=np.int64)
        proba = np.asarray(proba, dtype=float)
        if len(y) == 0:
            raise ModelError("No calibration rows: prediction sets need rows the model did not learn from.")
        scores = 1.0 - proba[np.arange(len(y)), y]
        order = np.argsort(scores, kind="stable")
        self.scores_ = scores[order]
        #: the weights of ``scores_``, in its order (None: every row counts once)
        self.weights_ = None if weights is None else weights[order]
        self.n_rows_ = len(y)
        return self

    def check(self, coverage: float) -> float:
        """``coverage`` as a float, or a ConfigError where these calibration rows cannot promise sets of it
        (``sets`` itself gives every label there, for the summaries that grade sets)."""
        return check_supported(coverage, len(self.scores_), ranges=False)

    def threshold(self, coverage: float) -> float:
        """The least probability a label needs to be in the set."""
        return 1.0 - conformal_quantile(self.scores_, coverage, getattr(self, "weights_", None))

    def sets(self, proba: np.ndarray, coverage: float) -> np.ndarray:
        """A boolean matrix (n, k): which labels are in each row's set (the most probable always is)."""
        proba = np.asarray(proba, dtype=float)
        member = proba >= self.threshold(coverage) - 1e-12
        member[np.arange(len(proba)), proba.argmax(axis=1)] = True
        return member


def interval_bounds(pred: np.ndarray, valid_y: np.ndarray, valid_pred: np.ndarray, coverage: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds around ``pred`` from validation rows' truth and predictions (fits on the fly;
    bundles made since conformal fitting keep a fitted ``ConformalRegressor`` instead); a coverage the rows
    cannot promise is refused (``check_supported``)."""
    conformal = ConformalRegressor().fit(valid_y, valid_pred)
    return conformal.bounds(np.asarray(pred, dtype=float), conformal.check(coverage))
