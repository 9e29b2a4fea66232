"""One-hot categories and scaled numbers, for the families that need them (linear, k-NN, neural nets).

Works on ``FeatureEncoder`` output: the columns listed as categorical hold integer codes (NaN = missing),
every other column is a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["OneHotScaler", "scale_numbers"]


class OneHotScaler(TransformerMixin, BaseEstimator):
    """Codes to one-hot columns; numbers to median-imputed, clipped, standardised values plus a missing flag.

    Numbers are clipped to their ``clip``-(100 - ``clip``) percentile range first (0.1-99.9 by default), so
    that one outlier does not squash everything else for a linear model.
    """

    #: percent cut off each end of a number's range (a class default: scalers pickled before it was a parameter)
    clip: float = 0.1

    def __init__(self, categorical: list[int] | None = None, cardinalities: list[int] | None = None,
                 *, max_onehot: int = 200, onehot: bool = True, clip: float = 0.1) -> None:
        self.categorical = categorical
        self.clip = clip
        self.cardinalities = cardinalities
        self.max_onehot = max_onehot
        self.onehot = onehot  # False: numbers only (a neural net embeds the categories itself)

    def fit(self, X: np.ndarray, y: Any = None) -> OneHotScaler:
        X = np.asarray(X, dtype=np.float64)
        cat = list(self.categorical or [])
        card = list(self.cardinalities or [0] * len(cat))
        self.cat_ = [(j, int(min(c, self.max_onehot))) for j, c in zip(cat, card, strict=True)] if self.onehot else []
        self.num_ = [j for j in range(X.shape[1]) if j not in set(cat)]
        num = X[:, self.num_]
        with np.errstate(all="ignore"):
            lo = np.nanpercentile(num, self.clip, axis=0) if num.size else np.zeros(0)
            hi = np.nanpercentile(num, 100 - self.clip, axis=0) if num.size else np.zeros(0)
        self.lo_ = np.nan_to_num(lo)
        self.hi_ = np.nan_to_num(hi)
        clipped = np.clip(num, self.lo_, self.hi_)
        med = np.nanmedian(clipped, axis=0) if num.size else np.zeros(0)
        self.median_ = np.nan_to_num(med)
        filled = np.where(np.isnan(clipped), self.median_, clipped)
        self.mean_ = filled.mean(axis=0) if num.size else np.zeros(0)
        std = filled.std(axis=0) if num.size else np.zeros(0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.flag_ = [i for i, j in enumerate(self.num_) if np.isnan(num[:, i]).any()]
        self.n_features_out_ = len(self.num_) + len(self.flag_) + sum(c + 1 for _, c in self.cat_)
        #: the input column each output column comes from, in output order
        self.source_index_ = np.asarray(
            self.num_ + [self.num_[i] for i in self.flag_] + [j for j, c in self.cat_ for _ in range(c + 1)],
            dtype=np.int64)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "num_")
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        num = X[:, self.num_]
        missing = np.isnan(num)
        z = scale_numbers(num, missing, self.median_, self.lo_, self.hi_, self.mean_, self.scale_)
        blocks = [z.astype(np.float32), missing[:, self.flag_].astype(np.float32)]
        for j, c in self.cat_:
            codes = X[:, j]
            onehot = np.zeros((n, c + 1), dtype=np.float32)
            idx = np.where(np.isnan(codes), c, np.minimum(np.nan_to_num(codes, nan=c), c)).astype(np.int64)
            onehot[np.arange(n), idx] = 1.0
            blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((n, 0), dtype=np.float32)

    def row_writer(self) -> Callable[[np.ndarray], np.ndarray]:
        """``transform`` for a few rows (one, on the single-row path): the output's places decided once and
        each row written in place, rather than stacked from blocks per call; the same float32 values."""
        check_is_fitted(self, "num_")
        num, flag = np.asarray(self.num_, dtype=np.int64), np.asarray(self.flag_, dtype=np.int64)
        n_num, n_flag = len(num), len(flag)
        cat = np.asarray([j for j, _ in self.cat_], dtype=np.int64)
        width = np.asarray([c for _, c in self.cat_], dtype=np.float64)
        offset = n_num + n_flag + np.concatenate([[0], np.cumsum(width + 1)[:-1]]).astype(np.int64)
        median, lo, hi, mean, scale = self.median_, self.lo_, self.hi_, self.mean_, self.scale_
        d = self.n_features_out_

        def write(X: np.ndarray) -> np.ndarray:
            x = np.asarray(X, dtype=np.float64)
            v = x[:, num]
            missing = np.isnan(v)
            Z = np.zeros((len(x), d), dtype=np.float32)
            Z[:, :n_num] = scale_numbers(v, missing, median, lo, hi, mean, scale)
            Z[:, n_num : n_num + n_flag] = missing[:, flag]
            if len(cat):
                codes = x[:, cat]
                idx = np.where(np.isnan(codes), width, np.minimum(np.nan_to_num(codes, nan=0.0), width))
                Z[np.arange(len(x))[:, None], offset + idx.astype(np.int64)] = 1.0
            return Z

        return write


def scale_numbers(v: np.ndarray, missing: np.ndarray, median: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Numbers clipped, a missing one set to the median, then standardised: ``OneHotScaler``'s numbers, for
    ``transform``, its row writer, and a bag of networks whose scalers are stacked (broadcast on a first axis)."""
    return (np.where(missing, median, np.clip(v, lo, hi)) - mean) / scale
