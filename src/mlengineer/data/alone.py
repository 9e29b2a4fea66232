"""How well each column alone predicts the target, for the profile: cross-validated, with an interval.

    >>> alone = AloneMeasure(y, "binary")                        # doctest: +SKIP
    >>> alone.measure(df["bmi"], ColumnRole.numeric)            # AloneSkill(score=0.74, low=0.69, high=0.79, ...)

Each column gets a small model of its own, fitted on four fifths of the labelled rows and scored on the
fifth it did not see, five times over (stratified folds for classes):

- categories, booleans and numbers with few values: the target's mean (or class shares) per value, shrunk
  towards the overall answer so a value seen twice does not claim to know it;
- numbers with more values than bins, and dates: the same over quantile bins, as many as the rows carry
  (about 30 learning rows per bin, at most 32), so a curved or U-shaped relation counts as a straight one does;
- free text: TF-IDF words and word pairs into a regularised linear model, on at most 5,000 rows.

The score is a familiar one: ROC AUC for classes (within each fold, then averaged; macro over classes for
more than two; 0.5 is guessing, 1 ranks every row right) and R² for numbers (pooled out of fold; 0 is
guessing the mean, 1 is exact). The 95% interval is a Poisson bootstrap of the whole measure, refits
included, so it holds the sampling of the rows and the wobble of the small models alike (for free text,
whose model is too slow to refit 200 times, of the scored rows only). The sample is bounded (the profile's
20,000 rows), so 400 rows and a million get the same method; on 400 rows the interval is wider, and below
30 labelled rows (or 5 of a second class) there is no measure at all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .relation import column_as_codes, column_as_numbers
from .schema import ColumnRole

__all__ = ["MIN_ROWS", "AloneMeasure", "AloneSkill"]

FOLDS = 5
MIN_ROWS = 30
TEXT_ROWS = 5_000
BOOTSTRAP = 200
_ROWS_PER_BIN = 30
_MAX_BINS = 32
_PSEUDO_ROWS = 2.0  # classification: how many rows of the overall shares each value's shares start from


@dataclass(frozen=True)
class AloneSkill:
    """A column's out-of-fold score at predicting the target on its own, and its 95% interval."""

    metric: str  # "ROC AUC" or "R²"
    score: float
    low: float
    high: float
    rows: int
    method: str

    @property
    def skill(self) -> float:
        """The score on a 0 (guessing) to 1 (perfect) scale: 2·AUC - 1 for classes, R² for numbers."""
        s = 2 * self.score - 1 if self.metric == "ROC AUC" else self.score
        return float(min(max(s, 0.0), 1.0))


class AloneMeasure:
    """Folds and bootstrap weights for one target, shared by every column measured against it."""

    def __init__(self, y: np.ndarray, kind: str, *, seed: int = 0) -> None:
        self.y, self.kind, self.seed = y, kind, seed
        self.metric = "R²" if kind == "regression" else "ROC AUC"
        self.k = int(y.max()) + 1 if kind != "regression" and len(y) else 0
        self.folds = _folds(y, kind, seed)
        self._weights: dict[int, np.ndarray] = {}

    @property
    def usable(self) -> bool:
        """Enough labelled rows to measure anything: 30, and for classes two of them with a row in every fold."""
        if len(self.y) < MIN_ROWS:
            return False
        counts = np.sort(np.bincount(self.y)) if self.kind != "regression" else np.array([])
        return self.kind == "regression" or (len(counts) >= 2 and int(counts[-2]) >= FOLDS)

    def measure(self, s: pd.Series, role: ColumnRole | str) -> AloneSkill | None:
        """The skill of column ``s`` (aligned with ``y``); None for identifiers, constants, or too few rows."""
        if not self.usable or role in (ColumnRole.identifier, ColumnRole.constant, ColumnRole.ignore):
            return None
        n = len(self.y)
        if role == ColumnRole.text:
            rows = np.arange(n) if n <= TEXT_ROWS else np.sort(
                np.random.default_rng(self.seed).choice(n, TEXT_ROWS, replace=False))
            folds = self.folds if len(rows) == n else _folds(self.y[rows], self.kind, self.seed)
            scores = self._rows_bootstrap(self._text(s.iloc[rows], rows, folds), rows, folds)
            return AloneSkill(self.metric, *scores, len(rows), "TF-IDF words into a linear model") \
                if scores is not None else None
        numbers = column_as_numbers(s, role) if role not in (ColumnRole.categorical, ColumnRole.boolean) else None
        distinct = len(np.unique(numbers[np.isfinite(numbers)])) if numbers is not None else 0
        if numbers is not None and distinct > _bin_count(n * (FOLDS - 1) // FOLDS):
            codes = [_bins(numbers, self.folds != f) for f in range(FOLDS)]
            method = "mean target per quantile bin"
        else:
            codes = [column_as_codes(s)] * FOLDS
            method = "mean target per value"
        scores = self._refit_bootstrap(codes)
        return AloneSkill(self.metric, *scores, n, method) if scores is not None else None

    # -- values and bins: refitted under every bootstrap resample ------------------------------------------

    def _refit_bootstrap(self, codes: list[np.ndarray]) -> tuple[float, float, float] | None:
        """The score under unit weights and under each resample's weights, every fold's table refitted.
        Weights are (rows, resamples): each weighted count is one sparse product over the rows."""
        y = self.y
        w = self._bootstrap(len(y))
        sse = np.zeros(w.shape[1])
        aucs: list[np.ndarray] = []
        for f in range(FOLDS):
            learn, score = self.folds != f, self.folds == f
            c = codes[f]
            n_codes = int(c.max()) + 1
            at = np.flatnonzero(learn)
            if self.kind == "regression":
                counts = _weighted_counts(c[at], at, w, n_codes)
                sums = _weighted_counts(c[at], at, w, n_codes, values=y[at])
                overall = sums.sum(axis=0) / np.maximum(counts.sum(axis=0), 1e-12)
                m = _shrinkage(c[at], y[at], n_codes)
                mean = (sums + m * overall) / np.maximum(counts + m, 1e-12)  # each value's estimate, per resample
                # the scored rows' squared error, from their weighted sums of 1, y and y² per value
                rows = np.flatnonzero(score)
                s0, s1, s2 = (_weighted_counts(c[rows], rows, w, n_codes, values=y[rows] ** p) for p in (0, 1, 2))
                sse += (s2 - 2 * mean * s1 + mean**2 * s0).sum(axis=0)
                continue
            k = self.k
            table = _weighted_counts(c[at] * k + y[at], at, w, n_codes * k).reshape(n_codes, k, -1)
            prior = table.sum(axis=0) / np.maximum(table.sum(axis=(0, 1)), 1e-12)
            shares = (table + _PSEUDO_ROWS * prior) / (table.sum(axis=1, keepdims=True) + _PSEUDO_ROWS)
            aucs += self._code_aucs(shares, c, np.flatnonzero(score), w)
        if self.kind == "regression":
            sst = (y**2) @ w - (y @ w) ** 2 / np.maximum(w.sum(axis=0), 1e-12)
            with np.errstate(all="ignore"):
                return _interval(np.where(sst > 0, 1 - sse / sst, np.nan))
        return _mean_interval(aucs)

    def _code_aucs(self, shares: np.ndarray, c: np.ndarray, rows: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
        """Per class: the AUC on one fold's ``rows`` of each resample's shares (scores are a value's share, so
        rows are grouped by value, and each resample orders a handful of values, not every row)."""
        n_codes = shares.shape[0]
        y = self.y[rows]
        out = []
        for cls in [1] if self.k == 2 else range(self.k):
            positive = y == cls
            if not 0 < positive.sum() < len(y):
                continue
            pos = _weighted_counts(c[rows[positive]], rows[positive], w, n_codes)
            neg = _weighted_counts(c[rows[~positive]], rows[~positive], w, n_codes)
            out.append(_auc_many(shares[:, cls, :].T, pos.T, neg.T))
        return out

    # -- free text: fitted once per fold, the scored rows resampled -----------------------------------------

    def _text(self, s: pd.Series, rows: np.ndarray, folds: np.ndarray) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression, Ridge

        text = s.fillna("").astype(str).to_numpy()
        y = self.y[rows]
        out = np.zeros(len(y)) if self.kind == "regression" else np.zeros((len(y), self.k))
        for f in range(FOLDS):
            learn, score = folds != f, folds == f
            vec = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=50_000)
            try:
                X = vec.fit_transform(text[learn])
            except ValueError:  # no word appears twice: nothing to learn but the overall answer
                out[score] = y[learn].mean() if self.kind == "regression" else np.bincount(
                    y[learn], minlength=self.k) / learn.sum()
                continue
            if self.kind == "regression":
                out[score] = Ridge(alpha=1.0).fit(X, y[learn]).predict(vec.transform(text[score]))
            elif len(np.unique(y[learn])) < 2:
                out[score] = np.eye(self.k)[y[learn][0]]
            else:
                clf = LogisticRegression(C=4.0, max_iter=300).fit(X, y[learn])
                proba = np.zeros((int(score.sum()), self.k))
                proba[:, clf.classes_] = clf.predict_proba(vec.transform(text[score]))
                out[score] = proba
        return out

    def _rows_bootstrap(self, pred: np.ndarray, rows: np.ndarray, folds: np.ndarray
                        ) -> tuple[float, float, float] | None:
        y = self.y[rows]
        w = self._bootstrap(len(y))
        if self.kind == "regression":
            return _interval(_r2(y, pred, w))
        aucs = []
        for f in range(FOLDS):
            at = folds == f
            for cls in [1] if self.k == 2 else range(self.k):
                positive = y[at] == cls
                if 0 < positive.sum() < at.sum():
                    _, group = np.unique(pred[at, cls], return_inverse=True)
                    group, idx = group.ravel(), np.flatnonzero(at)
                    g = int(group.max()) + 1
                    pos = _weighted_counts(group[positive], idx[positive], w, g).T
                    neg = _weighted_counts(group[~positive], idx[~positive], w, g).T
                    aucs.append(_auc_many(np.broadcast_to(np.arange(g, dtype=float), pos.shape), pos, neg))
        return _mean_interval(aucs)

    def _bootstrap(self, n: int) -> np.ndarray:
        """Weights (n rows, 1 + resamples): a column of ones (the estimate itself), then Poisson(1) draws."""
        if n not in self._weights:
            b = BOOTSTRAP if self.kind == "regression" or self.k <= 5 else max(50, BOOTSTRAP * 5 // self.k)
            draws = np.random.default_rng(self.seed + 1).poisson(1.0, (n, b)).astype(np.float64)
            self._weights[n] = np.ascontiguousarray(np.hstack([np.ones((n, 1)), draws]))
        return self._weights[n]


def _mean_interval(aucs: list[np.ndarray]) -> tuple[float, float, float] | None:
    """The interval of the mean AUC over folds and classes (None when no fold held two classes)."""
    if not aucs:
        return None
    with warnings.catch_warnings():  # a resample that left a fold one class short is skipped, not averaged
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.array(aucs), axis=0)
    return _interval(mean) if np.isfinite(mean[0]) else None


def _interval(scores: np.ndarray) -> tuple[float, float, float]:
    """The first score (unit weights: the estimate) and the 2.5th and 97.5th percentiles of the others."""
    point, boot = float(scores[0]), scores[1:]
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return point, point, point
    low, high = np.quantile(boot, [0.025, 0.975])
    return point, float(low), float(high)


def _folds(y: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """Fold numbers 0..4 per row: stratified by class (each class spread evenly), or shuffled."""
    rng = np.random.default_rng(seed)
    n = len(y)
    order = np.lexsort((rng.random(n), y)) if kind != "regression" else rng.permutation(n)
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.arange(n) % FOLDS
    return folds


def _bin_count(n_learn: int) -> int:
    return int(np.clip(n_learn // _ROWS_PER_BIN, 2, _MAX_BINS))


def _bins(x: np.ndarray, learn: np.ndarray) -> np.ndarray:
    """Codes of quantile bins cut on the learning rows (missing as one more code)."""
    finite = np.isfinite(x)
    fit = x[learn & finite]
    edges = np.unique(np.quantile(fit, np.linspace(0, 1, _bin_count(len(fit)) + 1)[1:-1])) if len(fit) else np.array([])
    codes = np.full(len(x), len(edges) + 1, dtype=np.int64)
    codes[finite] = np.searchsorted(edges, x[finite], side="right")
    return codes


def _weighted_counts(codes: np.ndarray, rows: np.ndarray, w: np.ndarray, size: int,
                     values: np.ndarray | None = None) -> np.ndarray:
    """Per code, each resample's weight of ``rows`` (row ``rows[i]`` has code ``codes[i]``), times ``values``
    when given: (size, resamples). One sparse product reads only those rows of ``w`` (rows, resamples)."""
    from scipy import sparse

    data = np.ones(len(rows)) if values is None else np.asarray(values, dtype=np.float64)
    member = sparse.csr_matrix((data, (codes, rows)), shape=(size, len(w)))
    return np.asarray(member @ w)


def _shrinkage(codes: np.ndarray, y: np.ndarray, n_codes: int) -> float:
    """Empirical-Bayes pseudo-rows for a value's mean: the noise within values over the spread between them
    (0 when each value fixes the target: then nothing needs shrinking)."""
    counts = np.bincount(codes, minlength=n_codes).astype(float)
    means = np.bincount(codes, weights=y, minlength=n_codes) / np.maximum(counts, 1)
    seen = counts > 0
    within = float(((y - means[codes]) ** 2).sum() / max(len(y) - seen.sum(), 1))
    between = float(np.average((means[seen] - y.mean()) ** 2, weights=counts[seen]))
    spread = between - within * float(seen.sum()) / len(y)  # less what noise alone spreads the means by
    return float(np.clip(within / spread, 0.0, 1e4)) if spread > 0 else 1e4


def _r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """R² of ``pred`` under each column of weights ``w`` (rows, resamples)."""
    sse = ((y - pred) ** 2) @ w
    sst = (y**2) @ w - (y @ w) ** 2 / np.maximum(w.sum(axis=0), 1e-12)
    with np.errstate(all="ignore"):
        return np.where(sst > 0, 1 - sse / sst, np.nan)


def _auc_many(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC per resample: row b has groups of rows that share a score, ``score[b]``, with ``pos[b]``
    and ``neg[b]`` their weight of positive and negative rows (all (B, G)). Equal scores tie (count half).
    Vectorised over resamples: sort each row, sum each run of equal scores, count the negatives below."""
    b, g = score.shape
    order = np.argsort(score, axis=1, kind="stable")
    s, p, q = (np.take_along_axis(a, order, axis=1) for a in (score, pos, neg))
    block = np.concatenate([np.zeros((b, 1), dtype=np.int64), np.cumsum(s[:, 1:] != s[:, :-1], axis=1)], axis=1)
    flat = (block + g * np.arange(b)[:, None]).ravel()
    pb = np.bincount(flat, weights=p.ravel(), minlength=b * g).reshape(b, g)
    qb = np.bincount(flat, weights=q.ravel(), minlength=b * g).reshape(b, g)
    wins = (pb * (np.cumsum(qb, axis=1) - qb + 0.5 * qb)).sum(axis=1)
    total = pb.sum(axis=1) * qb.sum(axis=1)
    with np.errstate(all="ignore"):
        return np.where(total > 0, wins / total, np.nan)
