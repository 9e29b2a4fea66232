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

The score is a familiar one: ROC AUC for classes (macro over classes for more than two; 0.5 is guessing, 1
ranks every row right) and R² for numbers (0 is guessing the mean, 1 is exact), computed on the pooled
out-of-fold predictions, with a 95% interval from a Poisson bootstrap of those rows. The sample is bounded
(the profile's 20,000 rows), so 400 rows and a million get the same method; on 400 rows the interval is
wider, and below 30 labelled rows there is no measure at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

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
        if len(self.y) < MIN_ROWS:
            return False
        return self.kind == "regression" or len(np.unique(self.y)) >= 2

    def measure(self, s: pd.Series, role: ColumnRole | str) -> AloneSkill | None:
        """The skill of column ``s`` (aligned with ``y``); None for identifiers, constants, or too few rows."""
        if not self.usable or role in (ColumnRole.identifier, ColumnRole.constant, ColumnRole.ignore):
            return None
        rows = np.arange(len(self.y))
        if role == ColumnRole.text:
            if len(rows) > TEXT_ROWS:
                rows = np.sort(np.random.default_rng(self.seed).choice(rows, TEXT_ROWS, replace=False))
            pred, method = self._text(s.iloc[rows], rows), "TF-IDF words into a linear model"
        else:
            numbers = column_as_numbers(s, role) if role not in (ColumnRole.categorical, ColumnRole.boolean) else None
            distinct = len(np.unique(numbers[np.isfinite(numbers)])) if numbers is not None else 0
            if numbers is not None and distinct > _bin_count(len(rows) * (FOLDS - 1) // FOLDS):
                pred, method = self._per_code(None, numbers), "mean target per quantile bin"
            else:
                pred, method = self._per_code(column_as_codes(s), None), "mean target per value"
        score, low, high = self._score(pred, rows)
        return AloneSkill(self.metric, score, low, high, len(rows), method)

    # -- the models, out of fold ---------------------------------------------------------------------------

    def _per_code(self, codes: np.ndarray | None, numbers: np.ndarray | None) -> np.ndarray:
        y, out = self.y, self._empty(len(self.y))
        for f in range(FOLDS):
            learn, score = self.folds != f, self.folds == f
            if numbers is not None:
                c = _bins(numbers, learn)
            else:
                assert codes is not None
                c = codes
            out[score] = self._fit_codes(c[learn], y[learn], c[score], int(c.max()) + 1)
        return out

    def _fit_codes(self, c_learn: np.ndarray, y_learn: np.ndarray, c_score: np.ndarray, n_codes: int) -> np.ndarray:
        counts = np.bincount(c_learn, minlength=n_codes).astype(float)
        if self.kind == "regression":
            overall = float(y_learn.mean())
            sums = np.bincount(c_learn, weights=y_learn, minlength=n_codes)
            means = sums / np.maximum(counts, 1)
            m = _shrinkage(c_learn, y_learn, means, counts)
            return ((sums + m * overall) / np.maximum(counts + m, 1e-12))[c_score]
        k = self.k
        table = np.bincount(c_learn * k + y_learn, minlength=n_codes * k).reshape(n_codes, k).astype(float)
        prior = np.bincount(y_learn, minlength=k) / max(len(y_learn), 1)
        shares = (table + _PSEUDO_ROWS * prior) / (counts[:, None] + _PSEUDO_ROWS)
        return shares[c_score]

    def _text(self, s: pd.Series, rows: np.ndarray) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression, Ridge

        text = s.fillna("").astype(str).to_numpy()
        y = self.y[rows]
        folds = self.folds if len(rows) == len(self.y) else _folds(y, self.kind, self.seed)
        out = self._empty(len(y))
        for f in range(FOLDS):
            learn, score = folds != f, folds == f
            vec = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=50_000)
            try:
                X = vec.fit_transform(text[learn])
            except ValueError:  # no word appears twice: nothing to learn from
                out[score] = self._fit_codes(np.zeros(learn.sum(), int), y[learn], np.zeros(score.sum(), int), 1)
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

    def _empty(self, n: int) -> np.ndarray:
        return np.zeros(n) if self.kind == "regression" else np.zeros((n, self.k))

    # -- the score and its interval ------------------------------------------------------------------------

    def _score(self, pred: np.ndarray, rows: np.ndarray) -> tuple[float, float, float]:
        y = self.y[rows]
        w = self._bootstrap(len(rows))
        if self.kind == "regression":
            point = _r2(y, pred, np.ones((1, len(y))))[0]
            boot = _r2(y, pred, w)
        else:
            classes = [c for c in range(self.k) if 0 < (y == c).sum() < len(y)]
            if self.k == 2:
                classes = [1]
            point = float(np.mean([_auc(pred[:, c], y == c, np.ones((1, len(y))))[0] for c in classes]))
            boot = np.mean([_auc(pred[:, c], y == c, w) for c in classes], axis=0)
        boot = boot[np.isfinite(boot)]
        low, high = (np.quantile(boot, [0.025, 0.975]) if len(boot) else (point, point))
        return float(point), float(low), float(high)

    def _bootstrap(self, n: int) -> np.ndarray:
        if n not in self._weights:
            b = BOOTSTRAP if self.kind == "regression" or self.k <= 5 else max(50, BOOTSTRAP * 5 // self.k)
            self._weights[n] = np.random.default_rng(self.seed + 1).poisson(1.0, (b, n)).astype(np.float32)
        return self._weights[n]


def _folds(y: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """Fold numbers 0..4 per row: stratified by class (each class spread evenly), or shuffled."""
    rng = np.random.default_rng(seed)
    n = len(y)
    order = np.lexsort((rng.random(n), y)) if kind != "regression" else rng.permutation(n)
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.arange(n) % FOLDS
    return folds


def _bins(x: np.ndarray, learn: np.ndarray) -> np.ndarray:
    """Codes of quantile bins cut on the learning rows (missing as one more code)."""
    finite = np.isfinite(x)
    fit = x[learn & finite]
    n_bins = _bin_count(len(fit))
    edges = np.unique(np.quantile(fit, np.linspace(0, 1, n_bins + 1)[1:-1])) if len(fit) else np.array([])
    codes = np.full(len(x), len(edges) + 1, dtype=np.int64)
    codes[finite] = np.searchsorted(edges, x[finite], side="right")
    return codes


def _bin_count(n_learn: int) -> int:
    return int(np.clip(n_learn // _ROWS_PER_BIN, 2, _MAX_BINS))


def _shrinkage(codes: np.ndarray, y: np.ndarray, means: np.ndarray, counts: np.ndarray) -> float:
    """Empirical-Bayes pseudo-rows for a value's mean: the noise within values over the spread between them
    (0 when each value fixes the target: then nothing needs shrinking)."""
    seen = counts > 0
    within = float(((y - means[codes]) ** 2).sum() / max(len(y) - seen.sum(), 1))
    between = float(np.average((means[seen] - y.mean()) ** 2, weights=counts[seen]))
    spread = between - within * float(seen.sum()) / len(y)  # less what noise alone spreads the means by
    return float(np.clip(within / spread, 0.0, 1e4)) if spread > 0 else 1e4


def _r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """R² of ``pred`` under each row of bootstrap weights ``w`` (B, n)."""
    total = w.sum(axis=1)
    sse = w @ (y - pred) ** 2
    sst = w @ (y**2) - (w @ y) ** 2 / np.maximum(total, 1e-12)
    with np.errstate(all="ignore"):
        return np.where(sst > 0, 1 - sse / sst, np.nan)


def _auc(score: np.ndarray, positive: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC of ``score`` for the ``positive`` rows under each row of weights ``w`` (B, n); ties count
    half. Rows are grouped by equal score once, so each resample costs two sparse products."""
    _, group = np.unique(score, return_inverse=True)
    group = group.ravel()
    n, g = len(score), int(group.max()) + 1
    member = sparse.csr_matrix((np.ones(n), (np.arange(n), group)), shape=(n, g))
    pos = np.asarray((w * positive) @ member)
    neg = np.asarray((w * ~positive) @ member)
    below = np.cumsum(neg, axis=1) - neg  # negatives with a lower score than each group
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(all="ignore"):
        return wins / (pos.sum(axis=1) * neg.sum(axis=1))
