"""The support-vector family (``models/svm.py``): its classes and values on small tables, its own one-row
arithmetic against libsvm's, its probabilities where a fold misses a class, its row limit in the portfolio
and no place on two-class tables, the cost bound that fits a large table on a sample of each class, BLAS on
one thread while folds fit side by side, and a bundle of an SVM saved, loaded and answering as before."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ConfigError
from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask
from mlengineer.training.models import FitContext, get_family, svm
from mlengineer.training.models.svm import (
    MAX_CLASSES,
    MAX_ROWS,
    decision_weights,
    fit_rows,
    out_of_fold,
    row_sample,
)
from mlengineer.training.search import portfolio


def _table(kind: str, n: int = 360, seed: int = 0) -> tuple[np.ndarray, np.ndarray, object]:
    """Two numbers that decide the answer on a curve (a kernel's strength), a category of 4 codes that
    shifts it, and missing values in every column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[:, 2] = rng.integers(0, 4, n)
    signal = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - 1 + 0.8 * (X[:, 2] == 1)
    X[rng.random(X.shape) < 0.05] = np.nan
    if kind == "binary":
        return X, (signal + rng.normal(0, 0.3, n) > 0).astype(np.int64), BinaryTask(["no", "yes"])
    if kind == "multiclass":
        y = np.digitize(signal + rng.normal(0, 0.3, n), [-0.5, 0.2, 0.9]).astype(np.int64)
        return X, y, MulticlassTask(["a", "b", "c", "d"])
    return X, 3 * signal + rng.normal(0, 0.2, n), RegressionTask()


def _ctx(task: object) -> FitContext:
    return FitContext(task=task, categorical=[2], cardinalities=[4], seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_it_learns_a_curved_boundary_and_answers_one_row_as_a_batch(kind: str) -> None:
    fam = get_family("svm")
    X, y, task = _table(kind)
    model = fam.fit(X[:260], y[:260], _ctx(task), fam.default_configs(task, 260, 4)[0])
    raw = model.predict_raw(X[260:])
    if task.is_classification:  # type: ignore[attr-defined]
        assert raw.shape == (100, len(task.classes)) and np.allclose(raw.sum(axis=1), 1.0)  # type: ignore[attr-defined]
        linear = get_family("linear").fit(X[:260], y[:260], _ctx(task), {"C": 1.0}).predict_raw(X[260:])
        # a curve a straight boundary cannot follow: the kernel's log loss is well below the linear model's
        picked = lambda p: -np.mean(np.log(np.clip(p[np.arange(100), y[260:]], 1e-15, 1)))  # noqa: E731
        assert picked(raw) < 0.8 * picked(linear)
    else:
        assert raw.shape == (100,)
        assert np.sqrt(np.mean((raw - y[260:]) ** 2)) < 0.5 * np.std(y[260:])
    # a few rows go through the family's own numpy arithmetic; libsvm answers a batch
    for i in (0, 5, 99):
        assert np.allclose(model.predict_raw(X[260 + i : 261 + i]), raw[i : i + 1], rtol=0, atol=1e-9)
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict_raw(X[260:]), raw)
    assert np.allclose(again.predict_raw(X[260:263]), raw[:3], rtol=0, atol=1e-9)


def test_the_pairs_weights_give_libsvms_decision_values() -> None:
    from sklearn.metrics.pairwise import rbf_kernel

    X, y, task = _table("multiclass")
    model = get_family("svm").fit(X, y, _ctx(task), {"C": 30.0, "gamma": 1.0})
    prep, est, _ = model.estimator
    Z = prep.transform(X[:50]).astype(np.float64)
    weights, bias = decision_weights(est, True)
    assert weights.shape == (len(est.support_vectors_), 6)
    ours = rbf_kernel(Z, est.support_vectors_, gamma=est.gamma) @ weights + bias
    assert np.allclose(ours, est.decision_function(Z), rtol=0, atol=1e-9)


def test_a_class_too_rare_for_every_fold_still_gets_its_probability() -> None:
    X, y, task = _table("multiclass")
    y = y.copy()
    y[:] = np.where(y == 3, 2, y)
    y[3] = 3  # one row of class "d": the calibration's fold that holds it out trains without the class
    model = get_family("svm").fit(X, y, _ctx(task), {"C": 30.0, "gamma": 1.0})
    raw = model.predict_raw(X)
    assert raw.shape == (len(X), 4) and np.allclose(raw.sum(axis=1), 1.0) and (raw[:, 3] > 0).all()
    # the out-of-fold values of the fold without class "d" leave its pairs, (a, d) (b, d) (c, d), undecided (0)
    prep, est, _ = model.estimator
    D = out_of_fold(prep.transform(X).astype(np.float64), y, None, est.classes_, model.params, 0)
    assert D.shape == (len(X), 6) and (D[:, [0, 1, 3]] != 0).all()
    undecided = (D[:, [2, 4, 5]] == 0).all(axis=1)
    assert undecided[3] and 100 < undecided.sum() < 140 and (D[~undecided][:, [2, 4, 5]] != 0).all()


def test_a_class_missing_from_the_fit_gets_a_column_of_zeros() -> None:
    X, y, task = _table("multiclass")
    keep = y != 0
    model = get_family("svm").fit(X[keep], y[keep], _ctx(task), {"C": 3.0, "gamma": 0.3})
    raw = model.predict_raw(X[:20])
    assert raw.shape == (20, 4) and (raw[:, 0] == 0).all() and np.allclose(raw.sum(axis=1), 1.0)
    one = model.predict_raw(X[:1])
    assert one.shape == (1, 4) and np.allclose(one, raw[:1], rtol=0, atol=1e-9)


def test_missing_numbers_and_unseen_categories_are_answered() -> None:
    X, y, task = _table("binary")
    model = get_family("svm").fit(X, y, _ctx(task), {"C": 3.0, "gamma": 0.3})
    odd = np.array([[np.nan, np.nan, np.nan, np.nan], [0.1, 0.2, 9.0, -1.0], [1e6, -1e6, 2.0, 0.0]])
    raw = model.predict_raw(odd)
    assert raw.shape == (3, 2) and np.isfinite(raw).all() and np.allclose(raw.sum(axis=1), 1.0)
    assert np.allclose(np.concatenate([model.predict_raw(odd[i : i + 1]) for i in range(3)]), raw, atol=1e-9)


def test_the_row_limit_keeps_it_to_small_tables() -> None:
    task = MulticlassTask(["a", "b", "c"])
    assert "svm" in {f for f, _ in portfolio(task, MAX_ROWS, 10)}
    assert "svm" not in {f for f, _ in portfolio(task, MAX_ROWS + 1, 10)}
    with pytest.raises(ConfigError, match="None of the model families svm suits this table"):
        portfolio(task, MAX_ROWS + 1, 10, ["svm"])
    # at most MAX_CLASSES classes: one decision value a pair of classes (25 classes' 300 ran for minutes)
    assert "svm" in {f for f, _ in portfolio(MulticlassTask([f"c{i}" for i in range(MAX_CLASSES)]), 500, 4)}
    assert "svm" not in {f for f, _ in portfolio(MulticlassTask([f"c{i}" for i in range(MAX_CLASSES + 1)]), 500, 4)}
    # the first configuration where it did best: the larger C for several classes
    assert portfolio(task, 500, 4, ["svm"])[0][1]["C"] == 30.0
    assert portfolio(RegressionTask(), 500, 4, ["svm"])[0][1]["C"] == 10.0


def test_it_is_offered_for_several_classes_and_values_not_two_classes() -> None:
    assert "svm" in {f for f, _ in portfolio(MulticlassTask(["a", "b", "c"]), 800, 10)}
    assert "svm" in {f for f, _ in portfolio(RegressionTask(), 800, 10)}
    # two classes: it never joined an ensemble on the bench's seven two-class tables
    assert "svm" not in {f for f, _ in portfolio(BinaryTask(["no", "yes"]), 800, 10)}
    with pytest.raises(ConfigError, match="None of the model families svm suits this table \\(binary"):
        portfolio(BinaryTask(["no", "yes"]), 800, 10, ["svm"])


def test_a_fit_past_the_cost_bound_learns_from_a_sample_of_each_class(monkeypatch: pytest.MonkeyPatch) -> None:
    # the bound at the family's limits: 5,000 rows of 10 encoded columns kept whole, 30 or 60 columns sampled
    assert fit_rows(10, True) >= MAX_ROWS > fit_rows(30, True) > fit_rows(60, True) > 2_000
    assert fit_rows(30, False) > fit_rows(30, True)  # a regression fits one SVR, no calibration's folds
    X, y, task = _table("multiclass")
    y = y.copy()
    y[:4] = 3  # at least four rows of the last class, however the rest falls
    fam = get_family("svm")
    whole = fam.fit(X, y, _ctx(task), {"C": 30.0, "gamma": 1.0})
    assert whole.params["_rows"] == len(X)
    columns = whole.estimator[0].transform(X[:1]).shape[1]
    monkeypatch.setattr(svm, "MAX_FIT_COST", 120.0**2 * (columns + svm.COLUMN_COST))  # a bound of 120 rows
    sampled = fam.fit(X, y, _ctx(task), {"C": 30.0, "gamma": 1.0})
    assert 110 <= sampled.params["_rows"] <= 130
    _, est, _ = sampled.estimator
    assert list(est.classes_) == [0, 1, 2, 3] and len(est.support_) <= 130  # every class, from the sample
    raw = sampled.predict_raw(X)
    assert raw.shape == (len(X), 4) and np.allclose(raw.sum(axis=1), 1.0)
    # the rows kept: each class's share, at least the calibration's folds of a rare one, the same for a seed
    kept = row_sample(y, 120, 0, True)
    assert kept is not None and np.array_equal(kept, row_sample(y, 120, 0, True))
    counts, whole_counts = np.bincount(y[kept], minlength=4), np.bincount(y, minlength=4)
    assert (counts >= np.minimum(whole_counts, svm.CALIBRATION_FOLDS)).all()
    assert np.allclose(counts / counts.sum(), whole_counts / whole_counts.sum(), atol=0.03)
    assert row_sample(y, len(y), 0, True) is None and len(row_sample(y, 50, 1, False)) == 50  # type: ignore[arg-type]


def test_its_fits_run_the_numerical_libraries_on_one_thread_and_give_them_back() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    def most() -> int:
        return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    seen: dict[str, int] = {}
    both_in, first_out = threading.Barrier(2), threading.Event()

    def fold(i: int) -> None:  # two folds fitted side by side, the second done last
        with svm.one_thread():
            both_in.wait(timeout=10)
            seen[f"in {i}"] = most()
            if i == 1:
                first_out.wait(timeout=10)
        if i == 0:
            seen["first done"] = most()
            first_out.set()

    with threadpool_limits(2, user_api="blas"):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(fold, [0, 1]))
        seen["both done"] = most()
    assert seen == {"in 0": 1, "in 1": 1, "first done": 1, "both done": 2}


def test_a_bundle_of_an_svm_saves_loads_and_answers_the_same(tmp_path: Path) -> None:
    X, y, task = _table("multiclass", n=300)
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "kind": X[:, 2], "noise": X[:, 3],
                          "label": np.asarray(task.classes)[y]})  # type: ignore[attr-defined]
    out = tmp_path / "svm-model"
    model = mlengineer.train(frame, "label", time_budget=6, out=out, track=False, families=["svm"], tune=False)
    members = [e["model"] for e in model.metadata["ensemble"]]
    assert members and all(m.startswith("svm_") for m in members)
    rows = frame.drop(columns=["label"]).head(40)
    loaded = mlengineer.load(out)
    before, after = model.predict_proba(rows), loaded.predict_proba(rows)
    assert before.shape == (40, 4)
    assert np.allclose(before.to_numpy(dtype=float), after.to_numpy(dtype=float), rtol=0, atol=1e-12)
    record = rows.iloc[3].to_dict()
    assert np.allclose(loaded.predict_record(record), before.to_numpy(dtype=float)[3], rtol=0, atol=1e-9)
