"""How well one column predicts the target on its own, measured on rows it did not learn from.

The same measure serves the profile ("relation to the target") and the leakage check ("predicts the target
almost perfectly on its own"). A column is learned on one half of a sample of labelled rows and scored on
the other half, and the other way round:

- a column of few distinct values (or any categories) predicts the most common class, or the mean target,
  of its value; a value not seen in the learning half predicts the overall answer, so an identifier learns
  nothing;
- a column of many numbers is split by a small decision tree.

The score is *skill*: 0 means no better than always answering the most common class (or the mean), 1
means no error at all. For classification it is ``1 - errors / baseline errors``; for regression, R².
Classification also gets a graded score, the Brier skill of the predicted class shares (``1 - Brier /
Brier of the overall shares``): a column that shifts the odds without ever changing the most likely class
scores 0 on errors but above 0 here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clock import numbers_of
from .schema import ColumnRole, category_key, numbers_from_text, parse_datetime

__all__ = ["Halves", "Skill", "column_as_codes", "column_as_numbers", "column_skill", "encode_target", "halves",
           "target_known"]

MAX_DISCRETE = 64  # a numeric column with at most this many distinct values is treated as categories
_BINS = 64


@dataclass(frozen=True)
class Halves:
    """Two disjoint halves of the sample rows (index arrays), for learning on one and scoring on the other."""

    a: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class Skill:
    """A column's out-of-sample skill at predicting the target alone, and how many rows were wrong."""

    score: float
    errors: int = 0  # classification: rows predicted wrongly, over both halves
    baseline_errors: int = 0  # classification: rows the most common class gets wrong
    n: int = 0
    method: str = ""
    brier: float | None = None  # classification: Brier skill of the class shares by value


def encode_target(y: pd.Series, kind: str) -> np.ndarray:
    """Class codes 0..k-1 (classification) or floats (regression). A row without a usable target gets -1
    (classification) or NaN (regression): callers keep ``target_known(codes, kind)`` rows only."""
    if kind == "regression":
        if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
            return y.to_numpy(dtype=float)
        return numbers_from_text(y).to_numpy(dtype=float)
    keys = pd.Series([category_key(v) for v in y.to_numpy(dtype=object)], dtype=object)
    codes, _ = pd.factorize(keys, sort=True)
    return codes.astype(np.int64)


def target_known(codes: np.ndarray, kind: str) -> np.ndarray:
    """Rows whose encoded target is usable."""
    return np.isfinite(codes) if kind == "regression" else codes >= 0


def halves(y: np.ndarray, kind: str, *, seed: int = 0) -> Halves:
    """Split rows in two, stratified by class for classification."""
    rng = np.random.default_rng(seed)
    n = len(y)
    if kind != "regression":
        order = np.lexsort((rng.random(n), y))  # by class, shuffled within each
        a, b = order[0::2], order[1::2]
    else:
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 :]
    return Halves(np.sort(a), np.sort(b))


def column_as_codes(s: pd.Series) -> np.ndarray:
    """Integer codes of a column's values, missing as a value of its own (the last code)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return _number_codes(s.to_numpy(dtype=float, na_value=np.nan))
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    codes[codes < 0] = len(uniques)
    return codes


def _number_codes(x: np.ndarray) -> np.ndarray:
    """Codes of numbers (NaN is one more value), with numpy alone: cheap enough to run per column of a wide table."""
    _, codes = np.unique(x, return_inverse=True, equal_nan=True)
    return codes.astype(np.int64).ravel()


def column_as_numbers(s: pd.Series, role: ColumnRole | str | None = None) -> np.ndarray | None:
    """A column as floats (dates as days), or None when it does not hold numbers."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(s) or role == ColumnRole.datetime:
        parsed = parse_datetime(s, None)  # stored dates too: a zoned column as UTC without its zone
        days = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
        return days.to_numpy(dtype=float, na_value=np.nan)
    if role == ColumnRole.numeric:  # times of day as seconds since midnight, as the cleaning plan reads them
        return numbers_of(s).to_numpy(dtype=float)
    return None


def _discrete_skill(codes: np.ndarray, y: np.ndarray, kind: str, h: Halves) -> Skill:
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    if kind == "regression":
        sse = sst = 0.0
        for learn, score in ((h.a, h.b), (h.b, h.a)):
            sums = np.bincount(codes[learn], weights=y[learn], minlength=n_codes)
            counts = np.bincount(codes[learn], minlength=n_codes)
            overall = y[learn].mean()
            means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
            pred = means[codes[score]]
            sse += float(((y[score] - pred) ** 2).sum())
            sst += float(((y[score] - y[score].mean()) ** 2).sum())
        return Skill(score=1 - sse / sst if sst > 0 else 0.0, n=len(y), method="mean target per value")
    k = int(y.max()) + 1
    errors = baseline = 0
    brier = brier0 = 0.0
    for learn, score in ((h.a, h.b), (h.b, h.a)):
        table = np.bincount(codes[learn] * k + y[learn], minlength=n_codes * k).reshape(n_codes, k)
        prior = np.bincount(y[learn], minlength=k) / max(len(learn), 1)
        overall = int(prior.argmax())
        seen = table.sum(axis=1) > 0
        majority = np.where(seen, table.argmax(axis=1), overall)
        errors += int((majority[codes[score]] != y[score]).sum())
        baseline += int((y[score] != overall).sum())
        shares = (table + prior) / (table.sum(axis=1, keepdims=True) + 1.0)  # shrunk towards the overall shares
        onehot = np.eye(k)[y[score]]
        brier += float(((shares[codes[score]] - onehot) ** 2).sum())
        brier0 += float(((prior - onehot) ** 2).sum())
    return _class_skill(errors, baseline, len(y), "most common class per value",
                        brier=1 - brier / brier0 if brier0 > 0 else 0.0)


def _class_skill(errors: int, baseline: int, n: int, method: str, brier: float | None = None) -> Skill:
    score = 1 - errors / baseline if baseline else 0.0
    return Skill(score=score, errors=errors, baseline_errors=baseline, n=n, method=method, brier=brier)


def _binned(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    codes = np.full(len(x), _BINS, dtype=np.int64)
    if finite.any():
        edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, _BINS + 1)[1:-1]))
        codes[finite] = np.searchsorted(edges, x[finite], side="right")
    return codes


def _tree_skill(x: np.ndarray, y: np.ndarray, kind: str, h: Halves) -> Skill:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X = x.reshape(-1, 1)
    X = np.where(np.isfinite(X), X, np.nan)
    leaf = max(3, len(y) // 2000)
    if kind == "regression":
        sse = sst = 0.0
        for learn, score in ((h.a, h.b), (h.b, h.a)):
            reg = DecisionTreeRegressor(max_leaf_nodes=256, min_samples_leaf=leaf, random_state=0)
            pred = reg.fit(X[learn], y[learn]).predict(X[score])
            sse += float(((y[score] - pred) ** 2).sum())
            sst += float(((y[score] - y[score].mean()) ** 2).sum())
        return Skill(score=1 - sse / sst if sst > 0 else 0.0, n=len(y), method="decision tree on the values")
    errors = baseline = 0
    k = int(y.max()) + 1
    for learn, score in ((h.a, h.b), (h.b, h.a)):
        clf = DecisionTreeClassifier(max_leaf_nodes=max(8, 4 * k), min_samples_leaf=leaf, random_state=0)
        pred = clf.fit(X[learn], y[learn]).predict(X[score])
        overall = int(np.bincount(y[learn], minlength=k).argmax())
        errors += int((pred != y[score]).sum())
        baseline += int((y[score] != overall).sum())
    return _class_skill(errors, baseline, len(y), "decision tree on the values")


def column_skill(s: pd.Series, y: np.ndarray, kind: str, h: Halves, *, role: ColumnRole | str | None = None,
                 refine_above: float = 0.5) -> Skill:
    """Out-of-sample skill of column ``s`` (sample rows, aligned with ``y``) at predicting the target alone.

    Numbers with many distinct values are first scored cheaply on quantile bins; the decision tree runs
    only when that score reaches ``refine_above`` (it can only matter for the strong columns).
    """
    if len(y) < 4:
        return Skill(score=0.0, n=len(y))
    numbers = column_as_numbers(s, role) if role not in (ColumnRole.categorical, ColumnRole.text) else None
    if numbers is None:
        return _discrete_skill(column_as_codes(s), y, kind, h)
    codes = _number_codes(numbers)
    if codes.max(initial=0) < MAX_DISCRETE:  # few distinct values (missing counts as one more)
        return _discrete_skill(codes, y, kind, h)
    screen = _discrete_skill(_binned(numbers), y, kind, h)
    if screen.score < refine_above:
        return screen
    tree = _tree_skill(numbers, y, kind, h)
    best = tree if tree.score >= screen.score else screen
    return Skill(score=best.score, errors=best.errors, baseline_errors=best.baseline_errors, n=best.n,
                 method=best.method, brier=screen.brier)
