"""Splits: stratified, grouped and time-ordered, as one holdout or k folds, deterministic and without
warnings even for classes rarer than the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.split import make_folds, make_holdout
from mlengineer.errors import DataError

rng = np.random.default_rng(1)


def test_stratified_holdout_keeps_class_shares() -> None:
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    s = make_holdout(y, fraction=0.2, stratify=True, seed=3)
    assert sorted(np.concatenate([s.train, s.valid]).tolist()) == list(range(1000))
    assert np.bincount(y[s.valid]).tolist() == [180, 18, 2]
    assert s.strategy.startswith("stratified holdout")
    again = make_holdout(y, fraction=0.2, stratify=True, seed=3)
    assert np.array_equal(s.valid, again.valid)


def test_classes_rarer_than_folds_spread_without_warnings() -> None:
    y = np.array(["a"] * 50 + ["b"] * 3 + ["c"])  # with warnings as errors, sklearn's splitter would fail here
    folds = make_folds(y, n_splits=5, stratify=True)
    valid = np.concatenate([va for _, va in folds])
    assert sorted(valid.tolist()) == list(range(len(y)))
    assert [int((y[va] == "b").sum()) for _, va in folds].count(1) == 3
    assert all(int((y[va] == "a").sum()) == 10 for _, va in folds)


def test_groups_never_straddle_a_split() -> None:
    n = 600
    groups = rng.integers(0, 40, n)
    y = rng.integers(0, 2, n)
    for tr, va in make_folds(y, n_splits=5, stratify=True, groups=groups):
        assert not set(groups[tr]) & set(groups[va])
    s = make_holdout(y, groups=groups, stratify=True)
    assert not set(groups[s.train]) & set(groups[s.valid]) and "grouped" in s.strategy
    with pytest.raises(DataError, match="3 groups"):
        make_folds(y, n_splits=5, groups=groups % 3)


def test_group_keys_may_be_text_with_missing_values() -> None:
    groups = np.array(["u1", "u2", None, "u3", "u4", "u5", None] * 20, dtype=object)
    y = np.arange(len(groups)) % 2
    for tr, va in make_folds(y, n_splits=3, groups=groups):  # a keyless row is a group of its own
        assert not {str(g) for g in groups[tr] if g} & {str(g) for g in groups[va] if g}


def test_time_ordered_holdout_validates_on_the_latest_rows() -> None:
    times = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.permutation(500), unit="h")
    y = rng.normal(size=500)
    s = make_holdout(y, fraction=0.2, order=times.to_numpy())
    assert times[s.train].max() < times[s.valid].min() and len(s.valid) == 100
    assert s.strategy.startswith("time-ordered holdout")


def test_one_moment_is_never_on_both_sides_and_untimed_rows_train() -> None:
    days = np.repeat(np.arange(10), 10).astype(float)  # ten rows per day
    days[[3, 57]] = np.nan
    s = make_holdout(np.zeros(100), fraction=0.25, order=days)
    assert not set(days[s.train][~np.isnan(days[s.train])]) & set(days[s.valid])
    assert {3, 57} <= set(s.train.tolist())
    text_dates = np.array([f"2024-03-{d + 1:02d}" for d in np.repeat(np.arange(10), 10)], dtype=object)
    s = make_holdout(np.zeros(100), fraction=0.2, order=text_dates)
    assert max(text_dates[s.train]) < min(text_dates[s.valid])


def test_time_ordered_folds_move_forward() -> None:
    order = rng.permutation(300)
    folds = make_folds(np.zeros(300), n_splits=4, order=order)
    assert len(folds) == 4
    for tr, va in folds:
        assert order[tr].max() < order[va].min()
    assert [len(tr) for tr, _ in folds] == sorted(len(tr) for tr, _ in folds)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"y": np.zeros(3)}, "Only 3 labelled rows"),
    ({"y": np.zeros(50), "order": np.ones(50)}, "same time"),
    ({"y": np.zeros(50), "fraction": 1.5}, "between 0 and 1"),
])
def test_holdout_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(DataError, match=words):
        make_holdout(**kwargs)


def test_grouped_stratified_folds_come_out_even() -> None:
    """Groups of three, a third of rows positive: five folds of about 300 rows each with about the same share of
    positives, and a grouped holdout of about 20% (folds once came out 393, 380, 327, 0 and 0 rows)."""
    rng = np.random.default_rng(4)
    n = 1500
    groups = np.arange(n) // 3
    y = (rng.random(n) < 0.33).astype(int)
    folds = make_folds(y, n_splits=5, stratify=True, groups=groups)
    sizes = [len(va) for _, va in folds]
    assert max(sizes) - min(sizes) <= 6, sizes
    shares = [y[va].mean() for _, va in folds]
    assert max(shares) - min(shares) < 0.03, shares
    s = make_holdout(y, groups=groups, stratify=True)
    assert 0.19 < len(s.valid) / n < 0.21 and s.strategy == "grouped holdout (20% of rows, whole groups)"


def test_rows_without_a_group_key_are_groups_of_their_own() -> None:
    groups = np.array([None] * 90 + ["a"] * 5 + ["b"] * 5, dtype=object)
    y = np.arange(100) % 2
    folds = make_folds(y, n_splits=5, groups=groups)
    assert [len(va) for _, va in folds] == [20] * 5  # 92 groups: 'a', 'b' and each keyless row
    with pytest.raises(DataError, match=r"has 2 groups; a grouped holdout of 20% needs at least 5, each held out "
                                        r"whole: pass a column with more groups, or leave --group-column out"):
        make_holdout(y, groups=np.array(["a", "b"] * 50, dtype=object))
