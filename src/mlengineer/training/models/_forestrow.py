"""One row through a scikit-learn forest by LightGBM's tree walker.

    row = forest_row(forest, n_outputs)   # None where LightGBM's single-row API is missing
    out = row(x)                          # (1, outputs): the mean of the trees' leaf values

The forest's splits are written as a LightGBM model (the same ``x <= threshold`` in double precision, the
same side for a missing value at every node); LightGBM's single-row C call answers which leaf each tree
ends in, and the mean of those leaves' values is taken in numpy, as ``TreePack`` takes it. A deep forest of
300 trees answers in a few hundred microseconds instead of ``TreePack``'s milliseconds, with the same numbers.
Writing the model costs about a second for a million nodes, once, on the first row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._treepack import TreePack
from .lightgbm import FastRow

__all__ = ["forest_row"]


def _numbers(a: np.ndarray) -> str:
    return " ".join(map(repr, a.tolist()))  # repr: the shortest text that reads back to the same double


def _lightgbm_text(forest: Any) -> tuple[str, list[np.ndarray]]:
    """The forest as a LightGBM model (text), and each tree's leaves as node ids in LightGBM's leaf order."""
    n_features = int(forest.n_features_in_)
    trees, leaves_of = [], []
    for i, est in enumerate(forest.estimators_):
        t = est.tree_
        left, right = t.children_left, t.children_right
        inner, leaves = np.flatnonzero(left >= 0), np.flatnonzero(left < 0)
        leaves_of.append(leaves)
        if not len(inner):
            trees.append(f"Tree={i}\nnum_leaves=1\nnum_cat=0\nleaf_value=0\nshrinkage=1\n\n")
            continue
        # LightGBM numbers inner nodes 0.. and leaves ~0, ~1, ...
        slot = np.empty(t.node_count, dtype=np.int64)
        slot[inner] = np.arange(len(inner))
        slot[leaves] = -np.arange(1, len(leaves) + 1)
        miss = getattr(t, "missing_go_to_left", None)
        nan_left = np.zeros(t.node_count, bool) if miss is None else np.asarray(miss, dtype=bool)
        kind = 8 + 2 * nan_left[inner].astype(np.int64)  # missing type "NaN" (8), its side left (+2)
        trees.append(f"Tree={i}\nnum_leaves={len(leaves)}\nnum_cat=0\nsplit_feature={_numbers(t.feature[inner])}\n"
                     f"threshold={_numbers(t.threshold[inner])}\ndecision_type={_numbers(kind)}\n"
                     f"left_child={_numbers(slot[left[inner]])}\nright_child={_numbers(slot[right[inner]])}\n"
                     f"leaf_value={' '.join(['0'] * len(leaves))}\nshrinkage=1\n\n")
    head = (f"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
            f"max_feature_idx={n_features - 1}\nobjective=regression\n"
            f"feature_names={' '.join(f'f{j}' for j in range(n_features))}\n"
            f"feature_infos={' '.join(['none'] * n_features)}\n\n")
    return head + "".join(trees) + "end of trees\n", leaves_of


def forest_row(forest: Any, n_outputs: int, pack: TreePack | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function of one row (1, features) giving the forest's mean leaf value (1, outputs); None where
    this LightGBM has no single-row API. ``pack``: the forest's ``TreePack`` where the model has built one
    (its leaves' values are what the mean is taken of; packing a deep forest takes about as long as writing
    it for LightGBM)."""
    import lightgbm as lgb

    if not FastRow.available():
        return None
    pack = TreePack(forest, n_outputs) if pack is None else pack
    text, leaves_of = _lightgbm_text(forest)
    walker = FastRow(lgb.Booster(model_str=text), None, leaves=True)  # it holds the booster and its config
    node_of_leaf = np.concatenate([pack.roots[i] + leaves for i, leaves in enumerate(leaves_of)])
    first_leaf = np.cumsum([0] + [len(leaves) for leaves in leaves_of])[:-1]
    n_trees, value = len(leaves_of), pack.value

    def row(X: np.ndarray) -> np.ndarray:
        leaf = walker.predict(X, n_trees).astype(np.int64)
        return value[node_of_leaf[first_leaf + leaf]].mean(axis=0)[None, :]

    return row
