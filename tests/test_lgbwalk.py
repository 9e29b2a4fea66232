"""LightGBM's trees walked by the compiled loop (``training/models/_lgbwalk.py``) answer what LightGBM answers,
to the bit: numbers on every split threshold, within 1e-35 of zero, missing (learned as missing, or read as
zero), category sets of many codes, unseen, negative and missing codes; binary, multiclass and regression."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")
lgb = pytest.importorskip("lightgbm")

from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask  # noqa: E402
from mlengineer.training.models import FitContext, get_family, lightgbm  # noqa: E402
from mlengineer.training.models._lgbwalk import compiled_row, compiled_rows, pack  # noqa: E402
from mlengineer.training.models.lightgbm import FastRow  # noqa: E402

KINDS = {"binary": {"objective": "binary"}, "multiclass": {"objective": "multiclass", "num_class": 4},
         "regression": {"objective": "regression"}}


def _data(kind: str, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 3] = rng.integers(0, 40, n)  # a category of many codes: its sets take two 32-bit words
    X[:, 4] = np.where(rng.random(n) < 0.3, 0.0, X[:, 4])  # many zeros
    X[rng.random(X.shape) < 0.1] = np.nan
    signal = np.nan_to_num(X[:, 0]) + np.isin(X[:, 3], [1, 5, 9, 33]) - 0.5 * np.nan_to_num(X[:, 4])
    if kind == "binary":
        return X, (signal > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(signal, [-1.0, 0.0, 1.0])
    return X, 3 * signal + rng.normal(size=n)


def _hard_rows(packed: object, n_features: int, seed: int = 1) -> np.ndarray:
    """Rows on every split's threshold, near zero, missing, and codes never seen or negative."""
    rng = np.random.default_rng(seed)
    numeric = (packed.kind & 1) == 0  # type: ignore[attr-defined]
    thresholds, features = packed.threshold[numeric], packed.feature[numeric]  # type: ignore[attr-defined]
    T = rng.normal(size=(len(thresholds) + 80, n_features))
    T[np.arange(len(thresholds)), features] = thresholds
    T[-80:-60, 4] = rng.choice([0.0, 1e-36, -1e-36, 1e-35, -1e-35, 2e-35], 20)
    T[-60:-40, 3] = rng.choice([-3.0, -1.0, 40.0, 63.0, 64.0, 1000.0, np.nan], 20)
    T[-40:, :][rng.random((40, n_features)) < 0.5] = np.nan
    T[:, 3] = np.where(np.isnan(T[:, 3]) | (np.arange(len(T)) >= len(T) - 60), T[:, 3], np.abs(np.round(T[:, 3] * 10)))
    return T.astype(np.float32)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_the_walk_answers_as_lightgbm_to_the_bit(kind: str, zero_as_missing: bool) -> None:
    X, y = _data(kind)
    params = {**KINDS[kind], "verbose": -1, "num_leaves": 15, "min_data_in_leaf": 5, "max_cat_to_onehot": 4,
              "cat_smooth": 1.0, "zero_as_missing": zero_as_missing}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=40)
    packed = pack(booster.model_to_string())
    assert packed is not None and len(packed.cat_bounds) > 1  # category sets were learned
    walk = compiled_row(packed)
    assert walk is not None
    rows = _hard_rows(packed, X.shape[1])
    k = params.get("num_class", 1)
    native = FastRow(booster, None)
    for i in range(len(rows)):
        assert np.array_equal(walk(rows[i:i + 1]), native.predict(rows[i:i + 1], k)), rows[i]
    # fewer rounds: only those trees
    short = pack(booster.model_to_string(), 7)
    assert short is not None and len(short.root) == 7 * k
    np.testing.assert_array_equal(compiled_row(short)(rows[:1]), FastRow(booster, 7).predict(rows[:1], k))


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_walk_of_many_rows_answers_as_lightgbm_to_the_bit(kind: str) -> None:
    X, y = _data(kind)
    params = {**KINDS[kind], "verbose": -1, "num_leaves": 15, "min_data_in_leaf": 5, "max_cat_to_onehot": 4,
              "cat_smooth": 1.0}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=40)
    packed = pack(booster.model_to_string())
    hard = _hard_rows(packed, X.shape[1])
    rows = np.concatenate([hard, X[:1500].astype(np.float32)])  # more than two threads' blocks, and a ragged end
    k = params.get("num_class", 1)
    for threads in (1, 3):
        walk = compiled_rows(packed, threads)
        assert walk is not None
        for dtype in (np.float32, np.float64):
            got, native = walk(rows.astype(dtype)), booster.predict(rows.astype(dtype))
            assert got.shape == (len(rows), k)
            np.testing.assert_array_equal(got if k > 1 else got[:, 0], native)
    np.testing.assert_array_equal(compiled_rows(packed)(rows[:3]), np.concatenate(
        [compiled_row(packed)(rows[i:i + 1]).reshape(1, k) for i in range(3)]))  # as a row at a time


def test_what_the_walk_cannot_answer_is_left_to_lightgbm() -> None:
    X, y = _data("regression", n=500)
    for params in ({"objective": "huber"}, {"objective": "regression", "linear_tree": True},
                   {"objective": "regression", "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.5}):
        booster = lgb.train({**params, "verbose": -1, "num_leaves": 7}, lgb.Dataset(X, y), num_boost_round=5)
        assert pack(booster.model_to_string()) is None, params
    # a tree of one leaf (nothing to split on) is a constant
    booster = lgb.train({"objective": "regression", "verbose": -1, "min_data_in_leaf": 1000}, lgb.Dataset(X, y),
                        num_boost_round=3)
    packed = pack(booster.model_to_string())
    assert packed is not None and (packed.root < 0).all()
    assert compiled_row(packed)(X[:1].astype(np.float32))[0] == pytest.approx(booster.predict(X[:1])[0], abs=0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_lightgbm_member_answers_one_row_through_the_walk_as_predict_raw(kind: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data(kind, n=800)
    task = {"binary": BinaryTask([0, 1]), "multiclass": MulticlassTask([0, 1, 2, 3]), "regression": RegressionTask()}[kind]
    ctx = FitContext(task=task, categorical=[3], cardinalities=[40], seed=0, n_jobs=1, time_limit=30)
    model = get_family("lightgbm").fit(X.astype(np.float32), y, ctx, {"learning_rate": 0.1, "num_leaves": 15})
    rows = X[:60].astype(np.float32)
    model.prepare()  # a kept member: its trees packed for the walk
    assert model.packed is not None
    assert compiled_row(pack(model.estimator.model_to_string())) is not None  # the walk, not a fallback
    walked = model.row_function()
    monkeypatch.setenv("MLENGINEER_TREE_WALK", "0")
    native = model.row_function()
    for i in range(len(rows)):
        np.testing.assert_array_equal(walked(rows[i:i + 1]), native(rows[i:i + 1]))
        np.testing.assert_allclose(walked(rows[i:i + 1]), model.predict_raw(rows[i:i + 1]), rtol=0, atol=1e-12)


def _kept_member() -> tuple[Any, np.ndarray]:
    """A multiclass LightGBM member prepared as a bundle keeps it (its trees packed), and its 1,500 rows."""
    X, y = _data("multiclass", n=1500)
    ctx = FitContext(task=MulticlassTask([0, 1, 2, 3]), categorical=[3], cardinalities=[40], seed=0, n_jobs=1,
                     time_limit=30)
    model = get_family("lightgbm").fit(X.astype(np.float32), y, ctx, {"learning_rate": 0.1, "num_leaves": 15})
    model.prepare()
    return model, X.astype(np.float32)


def test_a_member_answers_a_large_batch_through_the_walk_as_lightgbm_would(monkeypatch: pytest.MonkeyPatch) -> None:
    model, rows = _kept_member()
    assert model._walked_rows(len(rows)) is None  # a small batch: LightGBM's own call
    monkeypatch.setattr(lightgbm, "BATCH_WORK", 1000)
    assert model._walked_rows(len(rows)) is not None
    walked = model.predict_raw(rows)
    monkeypatch.setenv("MLENGINEER_TREE_WALK", "0")
    assert model._walked_rows(len(rows)) is None
    np.testing.assert_array_equal(walked, model.predict_raw(rows))


def test_a_member_answers_a_few_rows_through_the_walk_as_lightgbm_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's small batches (up to ``SMALL_BATCH`` rows) through the walk, LightGBM's numbers to the bit."""
    model, rows = _kept_member()
    sizes = (2, 8, lightgbm.SMALL_BATCH)
    assert all(model._walked_rows(n) is not None for n in sizes)
    assert model._walked_rows(lightgbm.SMALL_BATCH + 1) is None
    walked = [model.predict_raw(rows[:n]) for n in sizes]
    monkeypatch.setenv("MLENGINEER_TREE_WALK", "0")
    assert model._walked_rows(8) is None
    for n, got in zip(sizes, walked, strict=True):
        np.testing.assert_array_equal(got, model.predict_raw(rows[:n]))


def test_the_walk_takes_as_many_threads_as_lightgbm_would(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.training.models._lgbwalk import _omp_threads

    for value, threads in (("3", 3), ("2,1", 2), ("many", 0), ("", 0)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert _omp_threads() == threads
