"""A CatBoost model's oblivious trees as flat arrays, for one row at a time in numpy.

    trees = ObliviousTrees.from_catboost(est)   # None when a split is not on a number (CTRs, one-hot)
    raw = trees.raw(x)                          # (outputs,) what CatBoost's "RawFormulaVal" gives

Every tree of depth d splits on the same d conditions at every level, so a row's leaf is d bits: one
gather and one comparison for every split of every tree, one product for the leaf numbers, one gather of
the leaf values. CatBoost's own ``predict`` builds a ``Pool`` per call (~150-500 us for one row); this
costs tens of microseconds, with the same float32 comparisons and double sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ObliviousTrees"]


class ObliviousTrees:
    """Split features and borders (trees, depth), leaf values (trees, 2**depth, outputs), scale and bias."""

    def __init__(self, feature: np.ndarray, border: np.ndarray, nan_true: np.ndarray, leaves: np.ndarray,
                 scale: float, bias: np.ndarray) -> None:
        self.feature, self.border, self.leaves = feature, border, leaves
        self.nan_true = nan_true  # per input column: whether a missing value is "above" every border
        self.scale, self.bias = scale, bias
        self.powers = (1 << np.arange(feature.shape[1], dtype=np.int64)) if feature.size else np.zeros(0, np.int64)
        self.tree_index = np.arange(feature.shape[0])

    @classmethod
    def from_catboost(cls, est: Any) -> ObliviousTrees | None:
        """The trees of a fitted CatBoost model, read through its own accessors (leaf values, borders, each
        tree's splits); None where a split is on anything but a number (target statistics of categories,
        one-hot categories), the trees are not oblivious, or a split's border cannot be told apart."""
        try:
            return cls._read(est)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):  # a CatBoost that reads otherwise
            return None

    @classmethod
    def _read(cls, est: Any) -> ObliviousTrees | None:
        model = est._object
        if not model._is_oblivious() or est.get_cat_feature_indices():
            return None
        n_trees = int(model._get_tree_count())
        counts = np.asarray(model._get_tree_leaf_counts(), dtype=np.int64)
        values = np.asarray(model._get_leaf_values(), dtype=np.float64)
        k = len(values) // int(counts.sum())
        borders = {int(f): np.asarray(b, dtype=np.float32) for f, b in est.get_borders().items()}
        # the split's text rounds its border (%g): find the one border of the column that prints as it does
        named = {f: {format(float(v), "g"): v for v in b} for f, b in borders.items()}
        if any(len(named[f]) != len(b) for f, b in borders.items()):
            return None
        splits = [model._get_tree_splits(i, None) for i in range(n_trees)]
        depth = max((len(t) for t in splits), default=0)
        feature = np.zeros((n_trees, depth), dtype=np.int64)
        border = np.full((n_trees, depth), np.inf, dtype=np.float32)  # a padded level: never above
        for i, tree in enumerate(splits):
            for j, text in enumerate(tree):
                column, _, value = text.partition(", bin=")
                feature[i, j] = int(column)
                border[i, j] = named[int(column)][format(float(value), "g")]
        leaves = np.zeros((n_trees, 1 << depth, k))
        start = 0
        for i, n in enumerate(counts):
            leaves[i, :n] = values[start : start + n * k].reshape(n, k)
            start += n * k
        n_columns = int(est.n_features_in_)
        nan_true = np.zeros(n_columns, dtype=bool)
        for f, how in model._get_nan_treatments().items():
            nan_true[int(f)] = how == "AsTrue"
        scale, bias = model._get_scale_and_bias()
        return cls(feature, border, nan_true, leaves, float(scale), np.asarray(bias, dtype=np.float64).reshape(-1))

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The model's raw sum for one row ``x`` (its input columns, any float dtype): (outputs,)."""
        x = np.asarray(x[: len(self.nan_true)], dtype=np.float32)
        if np.isnan(x).any():  # CatBoost compares a missing value as below (or above) every border
            x = np.where(np.isnan(x), np.where(self.nan_true, np.inf, -np.inf), x).astype(np.float32)
        above = x[self.feature] > self.border
        leaf = above @ self.powers
        total = self.leaves[self.tree_index, leaf].sum(axis=0)
        return total * self.scale + self.bias
