"""Exact explanations: their form (``Attribution``, what a model's ``contributions`` answers), and what the tree
families share: the layout of a booster's own TreeSHAP output, and two
ways to explain a scikit-learn forest (the ``shap`` package's TreeSHAP, path attribution).

    values, base = split_bias(raw, n_features)     # a booster's pred_contrib output
    values, base = forest_shap(forest, X)          # exact; needs the ``shap`` package
    values, base = path_attribution(forest, X, k)  # fast, additive, an approximation of SHAP
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Attribution", "forest_shap", "path_attribution", "split_bias"]


class Attribution(NamedTuple):
    """A fitted model's additive explanation of n rows: ``base + values.sum(axis=1)`` is its output in
    ``space``: "margin" (log-odds, raw scores) or "output" (what ``predict_raw`` returns)."""

    values: np.ndarray  # (n, features, outputs)
    base: np.ndarray  # (n, outputs)
    space: str
    method: str  # how it was computed, for the reader: "TreeSHAP", "linear", ...


def split_bias(raw: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """TreeSHAP output laid out (n, f+1) or (n, outputs, f+1), the bias last, as values (n, f, outputs)
    and base (n, outputs)."""
    if raw.ndim == 3:
        raw = raw.transpose(0, 2, 1)
        return raw[:, :f, :], raw[:, f, :]
    return raw[:, :f, None], raw[:, f, None]


def forest_shap(est: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A scikit-learn forest's TreeSHAP values (n, f, outputs) and base (n, outputs), in its output space."""
    import shap

    explainer = shap.TreeExplainer(est)
    sv = explainer.shap_values(X, check_additivity=False)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    sv = np.stack(sv, axis=-1) if isinstance(sv, list) else np.asarray(sv, dtype=float)  # older shap: a list per class
    if sv.ndim == 2:
        sv = sv[:, :, None]
    return sv, np.broadcast_to(base, (len(X), len(base))).copy()


def path_attribution(est: Any, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each split credits its feature with the change in the node's value along the row's path (what
    shap calls approximate tree SHAP): additive and exact in sum, computed as one sparse product per tree."""
    from scipy import sparse

    n, f = X.shape
    outs = k if k >= 2 else 1
    trees = est.estimators_
    indicator, ptr = est.decision_path(X)  # every tree's nodes side by side, tree i at ptr[i]:ptr[i+1]
    indicator = indicator.tocsr()
    # credit only the nodes the rows pass through (the product reads no other): a deep forest has millions of
    # nodes, and crediting them all took seconds however few the rows (covertype's extra trees: 5.6 s for two)
    visited = np.unique(indicator.indices)
    rows_all, cols_all, vals_all = [], [], []
    base = np.zeros(outs)
    for i, tree in enumerate(trees):
        t = tree.tree_
        value = t.value[:, 0, :] if outs > 1 else t.value[:, 0, :1]
        if outs > 1:
            value = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-12)
        parent = np.full(t.node_count, -1)
        for side in (t.children_left, t.children_right):
            ok = side >= 0
            parent[side[ok]] = np.nonzero(ok)[0]
        mine = visited[(visited >= ptr[i]) & (visited < ptr[i + 1])] - ptr[i]
        child = mine[mine > 0]
        vals_all.append((value[child] - value[parent[child]]).ravel())
        cols_all.append((t.feature[parent[child]][:, None] * outs + np.arange(outs)[None, :]).ravel())
        rows_all.append(np.repeat(child + ptr[i], outs))
        base += value[0]
    credit = sparse.csr_matrix((np.concatenate(vals_all), (np.concatenate(rows_all), np.concatenate(cols_all))),
                               shape=(indicator.shape[1], f * outs))
    contrib = np.asarray((indicator @ credit).todense()) / len(trees)
    return contrib.reshape(n, f, outs), np.broadcast_to(base / len(trees), (n, outs)).copy()
