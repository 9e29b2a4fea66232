"""A scikit-learn forest explained by path attribution (``models/_attribution.py``): each split credits its
feature with the change in the node's value along a row's path, averaged over the trees. Checked against the
same credit walked node by node, one row and one tree at a time, and against the forest's own prediction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestRegressor

from mlengineer.training.models._attribution import path_attribution


def _walked(est: object, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The attribution the slow way: every row down every tree, node by node."""
    outs = k if k >= 2 else 1
    values = np.zeros((len(X), X.shape[1], outs))
    base = np.zeros(outs)
    trees = est.estimators_  # type: ignore[attr-defined]
    for tree in trees:
        t = tree.tree_
        value = t.value[:, 0, :outs]
        if outs > 1:
            value = value / value.sum(axis=1, keepdims=True)
        base += value[0]
        for r, x in enumerate(X):
            node = 0
            while t.children_left[node] >= 0:
                nxt = t.children_left[node] if x[t.feature[node]] <= t.threshold[node] else t.children_right[node]
                values[r, t.feature[node]] += value[nxt] - value[node]
                node = nxt
    return values / len(trees), np.broadcast_to(base / len(trees), (len(X), outs))


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_path_attribution_is_the_credit_along_each_rows_path(kind: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    if kind == "multiclass":
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
        est = ExtraTreesClassifier(n_estimators=12, random_state=0).fit(X, y)
        k, predicted = 3, est.predict_proba(X[:7])
    else:
        y = X[:, 0] * 2 + np.sin(X[:, 2]) + rng.normal(scale=0.1, size=400)
        est = RandomForestRegressor(n_estimators=12, random_state=0).fit(X, y)
        k, predicted = 1, est.predict(X[:7])[:, None]
    values, base = path_attribution(est, X[:7], k)
    walked_values, walked_base = _walked(est, X[:7], k)
    np.testing.assert_allclose(values, walked_values, atol=1e-12)
    np.testing.assert_allclose(base, walked_base, atol=1e-12)
    # additive and exact in sum: the base and the credits make the forest's own output
    np.testing.assert_allclose(base + values.sum(axis=1), predicted, atol=1e-9)
    # a row explained alone gets what it got among others (only the nodes on its path are credited)
    alone, _ = path_attribution(est, X[3:4], k)
    np.testing.assert_allclose(alone[0], values[3], atol=1e-12)
