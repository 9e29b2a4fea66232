"""A regression ensemble keeps its members that follow a line past the training rows (a ridge, a network) near
what its trees answer for the same row, where that does better out of fold (``training/ensemble.py``'s
``Bounds`` and ``choose_bounds``): on every path that answers (a batch, one record, a saved bundle) and in the
explanations, which still add up to the prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.explain.contributions import column_contributions
from mlengineer.metrics import get_metric
from mlengineer.training.ensemble import BOUND_MARGINS, Bounds, Ensemble, choose_bounds


def _outputs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A truth that levels off at 3, a tree-like member that levels off with it, a line that does not."""
    rng = np.random.default_rng(seed)
    s = rng.normal(scale=2.0, size=n)
    y = np.minimum(s, 3.0) + 0.3 * rng.normal(size=n)
    tree = np.minimum(s, 3.0) + 0.5 * rng.normal(size=n)
    line = s + 0.5 * rng.normal(size=n)
    return y, tree, line


def test_a_line_past_the_trees_answers_is_kept_near_them_where_that_does_better() -> None:
    y, tree, line = _outputs()
    rmse = get_metric("rmse", "regression")
    bounds, answer, tried = choose_bounds([tree, line], [0.5, 0.5], ["within", "beyond"], y, rmse)
    assert bounds is not None and bounds.within == (0,) and bounds.capped == (1,)
    plain = 0.5 * tree + 0.5 * line
    assert rmse.loss(y, answer) < rmse.loss(y, plain)
    # the margin is one of the tried multiples of the plain ensemble's out-of-fold error
    scale = np.sqrt(np.mean((y - plain) ** 2))
    assert any(np.isclose(bounds.margin, k * scale) for k in BOUND_MARGINS)
    # every margin tried is on the record, the chosen one the lowest, and lower than none
    assert set(tried) == {"none", *map(str, BOUND_MARGINS)}
    assert min(tried, key=tried.__getitem__) != "none" and rmse.loss(y, answer) == pytest.approx(min(tried.values()))
    kept = bounds.apply([tree, line])
    assert np.all(kept[1] <= tree + bounds.margin + 1e-12) and np.all(kept[1] >= tree - bounds.margin - 1e-12)
    np.testing.assert_array_equal(kept[0], tree)  # the trees' own answers are left as they are
    np.testing.assert_allclose(answer, 0.5 * kept[0] + 0.5 * kept[1])


def test_no_bounds_where_the_line_is_right_past_the_trees() -> None:
    rng = np.random.default_rng(1)
    s = rng.normal(scale=2.0, size=400)
    y = s + 0.3 * rng.normal(size=400)  # the truth goes on along the line: the trees' leveling off is wrong
    tree, line = np.minimum(np.maximum(s, -2.0), 2.0), s + 0.3 * rng.normal(size=400)
    bounds, answer, _ = choose_bounds([tree, line], [0.4, 0.6], ["within", "beyond"], y, get_metric("rmse", "regression"))
    assert bounds is None
    np.testing.assert_array_equal(answer, 0.4 * tree + 0.6 * line)


@pytest.mark.parametrize("ranges", [["within", "within"], ["beyond", "beyond"], ["", "beyond"], ["", ""]])
def test_no_bounds_without_a_member_of_each_kind(ranges: list[str]) -> None:
    y, tree, line = _outputs()
    assert choose_bounds([tree, line], [0.5, 0.5], ranges, y, get_metric("rmse", "regression"))[0] is None


def test_an_ensemble_without_bounds_answers_as_before_and_old_bundles_have_none() -> None:
    class Const:
        def __init__(self, v: float) -> None:
            self.v = v

        def predict_raw(self, X: np.ndarray) -> np.ndarray:
            return np.full(len(X), self.v)

    X = np.zeros((3, 1))
    plain = Ensemble([("a", Const(1.0), 0.25), ("b", Const(9.0), 0.75)])
    np.testing.assert_array_equal(plain.predict_raw(X), np.full(3, 7.0))
    capped = Ensemble(plain.members, Bounds(within=(0,), capped=(1,), margin=2.0))
    np.testing.assert_array_equal(capped.predict_raw(X), np.full(3, 0.25 + 0.75 * 3.0))
    old = Ensemble.__new__(Ensemble)  # unpickled from a bundle saved before bounds: no attribute of its own
    old.__dict__.update({"members": plain.members})
    assert old.bounds is None and np.array_equal(old.predict_raw(X), plain.predict_raw(X))


def _table(n: int, seed: int) -> pd.DataFrame:
    """A value that levels off at 3 along a sum of eight columns (a ridge follows the sum past it, the trees
    do not), plus a step that only trees find."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(1, 11)})
    s = df[[f"x{j}" for j in range(1, 9)]].sum(axis=1)
    df["y"] = np.minimum(s, 3) + 3 * ((df["x9"] > 0) & (df["x10"] > 0)) + 0.2 * rng.normal(size=n)
    return df


@pytest.mark.long
@pytest.mark.slow
def test_a_trained_ensemble_keeps_its_ridge_near_its_trees_on_every_path(tmp_path: Path) -> None:
    model = mlengineer.train(_table(800, 0), "y", task="regression", time_budget=8, seed=0, track=False,
                             families=["lightgbm", "linear"], tune=False)
    bounds = model.predictor.bounds
    assert bounds is not None, model.metadata["leaderboard"][0]["params"]
    described = model.metadata["leaderboard"][0]["params"]["bounds"]
    names = model.predictor.names
    assert described["capped"] == [names[i] for i in bounds.capped] and described["margin"] == bounds.margin
    assert min(model.metadata["leaderboard"][0]["params"]["bounds_tried"].values()) < \
        model.metadata["leaderboard"][0]["params"]["bounds_tried"]["none"]
    assert all(n.startswith("linear") for n in described["capped"])
    test = _table(2000, 1)
    rows = test.drop(columns=["y"])
    kept = model.predict(rows)
    model.predictor.bounds = None
    plain = model.predict(rows)
    model.predictor.bounds = bounds
    # past the training rows' range of the sum, the ridge's line is the worse answer: kept near the trees
    assert np.sqrt(np.mean((kept - test["y"]) ** 2)) < np.sqrt(np.mean((plain - test["y"]) ** 2))
    changed = np.flatnonzero(kept != plain)[:5]
    assert len(changed)
    # one record through the row path, and the saved bundle, answer the same, rows the bounds changed among them
    for record in rows.iloc[np.r_[changed, 0:5]].to_dict(orient="records"):
        np.testing.assert_allclose(model.predict_record(record), model.predict_raw(pd.DataFrame([record])),
                                   rtol=1e-6)
    loaded = mlengineer.load(model.save(tmp_path / "bundle"))
    assert loaded.predictor.bounds == bounds
    np.testing.assert_allclose(loaded.predict(rows), kept, rtol=1e-9)
    # the explanations add up to the kept answer
    c = column_contributions(model, rows.iloc[changed])
    np.testing.assert_allclose(c.base[:, 0] + c.values.sum(axis=1)[:, 0], kept[changed], rtol=1e-6, atol=1e-6)
    # the report says so in words
    from mlengineer.report.html import render_report

    page = render_report(loaded)
    assert loaded.metadata["ensemble_bounds"]["capped"] == described["capped"]
    assert f"For each row, what {described['capped'][0]}" in page and "did better on the validation rows" in page
