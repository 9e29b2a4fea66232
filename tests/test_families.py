"""One check suite over every model family: shapes, probabilities, one row as in a batch, pickling, the
refit path (a fixed number of rounds, no validation rows), a class missing from training, the time limit."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask
from mlengineer.training.models import FitContext, get_family, load_all

# families that fit any table; those that need a text or picture column have their own tests
# (tests/test_text.py, tests/test_images_model.py)
FAMILIES = sorted(name for name in load_all() if not get_family(name).needs_column)
TASKS = ["binary", "multiclass", "regression"]


def _data(kind: str, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[:, 2] = rng.integers(0, 4, n)  # a categorical column of codes
    X[rng.random(X.shape) < 0.05] = np.nan
    signal = np.nan_to_num(X[:, 0]) + (np.nan_to_num(X[:, 2], nan=0) == 1)
    if kind == "binary":
        return X, (signal + rng.normal(0, 0.5, n) > 0.3).astype(np.int64), BinaryTask(["no", "yes"])
    if kind == "multiclass":
        return X, np.digitize(signal + rng.normal(0, 0.4, n), [-0.3, 0.6]).astype(np.int64), MulticlassTask(["a", "b", "c"])
    return X, (2 * signal + rng.normal(0, 0.3, n)).astype(np.float64), RegressionTask()


def _ctx(task: object, **kw: object) -> FitContext:
    return FitContext(**{"task": task, "categorical": [2], "cardinalities": [4], "seed": 0, "n_jobs": 1,
                         "time_limit": 30, **kw})


def _family(name: str):  # type: ignore[no-untyped-def]
    fam = get_family(name)
    if not fam.available():
        pytest.skip(fam.unavailable_reason())
    return fam


@pytest.mark.parametrize("kind", TASKS)
@pytest.mark.parametrize("name", FAMILIES)
def test_family_fits_and_predicts(name: str, kind: str) -> None:
    fam = _family(name)
    X, y, task = _data(kind)
    config = fam.default_configs(task, len(X), X.shape[1])[0]
    es = fam.early_stopping
    model = fam.fit(X[:300], y[:300], _ctx(task), config, X[300:] if es else None, y[300:] if es else None)
    assert model.family == name and model.fit_seconds > 0
    raw = model.predict_raw(X[300:])
    if task.is_classification:
        assert raw.shape == (100, len(task.classes))
        assert np.allclose(raw.sum(axis=1), 1.0, atol=1e-6) and (raw >= 0).all()
        # better than guessing the majority class
        assert (raw.argmax(axis=1) == y[300:]).mean() > np.bincount(y[300:]).max() / 100 - 0.05
    else:
        assert raw.shape == (100,) and np.isfinite(raw).all()
        assert np.corrcoef(raw, y[300:])[0, 1] > 0.5
    # one row alone goes through the small-batch paths; it must give the batch's answer
    for i in (0, 7):
        assert np.allclose(model.predict_raw(X[300 + i: 301 + i]), raw[i: i + 1], atol=1e-6)
    again = pickle.loads(pickle.dumps(model))
    assert np.allclose(again.predict_raw(X[300:310]), raw[:10], atol=1e-9)
    if es:
        assert model.best_iteration is not None and model.best_iteration >= 1


@pytest.mark.parametrize("name", FAMILIES)
def test_family_refits_without_validation_rows(name: str) -> None:
    fam = _family(name)
    X, y, task = _data("binary")
    params = fam.default_configs(task, len(X), X.shape[1])[0]
    if fam.early_stopping:
        params = {**params, "n_estimators": 20}
    model = fam.fit(X, y, _ctx(task), params)
    assert model.predict_raw(X[:3]).shape == (3, 2)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_gives_every_class_a_column_when_one_is_missing(name: str) -> None:
    fam = _family(name)
    X, y, task = _data("multiclass")
    keep = y != 2  # the third class is absent from training, as in a fold that missed a rare class
    es = fam.early_stopping
    model = fam.fit(X[keep][:250], y[keep][:250], _ctx(task), fam.default_configs(task, 250, 5)[0],
                    X[keep][250:] if es else None, y[keep][250:] if es else None)
    raw = model.predict_raw(X[:20])
    assert raw.shape == (20, 3) and np.allclose(raw.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_stops_near_its_time_limit(name: str) -> None:
    fam = _family(name)
    X, y, task = _data("regression", n=3000)
    params = fam.default_configs(task, len(X), X.shape[1])[0]
    start = time.perf_counter()
    model = fam.fit(X, y, _ctx(task, time_limit=0.5), {**params, "n_estimators": 100_000} if fam.early_stopping
                    else params, X[:200] if fam.early_stopping else None, y[:200] if fam.early_stopping else None)
    # loosely: a family that ignored its limit would run for minutes
    assert time.perf_counter() - start < 30
    assert model.predict_raw(X[:2]).shape == (2,)


def test_linear_formula_matches_scikit_learn() -> None:
    X, y, task = _data("multiclass")
    model = get_family("linear").fit(X, y, _ctx(task), {"C": 1.0})
    prep, est = model.estimator
    assert np.allclose(model.predict_raw(X), est.predict_proba(prep.transform(X)), atol=1e-6)
    X, y, task = _data("binary")
    model = get_family("linear").fit(X, y, _ctx(task), {"C": 1.0})
    prep, est = model.estimator
    assert np.allclose(model.predict_raw(X), est.predict_proba(prep.transform(X)), atol=1e-6)


def test_a_ridge_holds_its_answer_beyond_the_training_range_where_a_logistic_model_keeps_its_range() -> None:
    """A regression's numbers are clipped to their 1-99 percentile range (``REGRESSION_CLIP``): a row far
    beyond the training rows answers as a row at the 99th percentile does, not on the line's extension."""
    from mlengineer.training.models.linear import REGRESSION_CLIP, clip_percent

    X, y, task = _data("regression", n=1000)
    model = get_family("linear").fit(X, y, _ctx(task), {"alpha": 1.0})
    prep = model.estimator[0]
    assert prep.clip == REGRESSION_CLIP == clip_percent(task) == 1.0
    assert np.allclose(prep.hi_[0], np.nanpercentile(X[:, 0], 99)) and np.allclose(prep.lo_[0], np.nanpercentile(X[:, 0], 1))
    at_edge, far = X[:1].copy(), X[:1].copy()
    at_edge[0, 0], far[0, 0] = prep.hi_[0], 40.0
    assert model.predict_raw(far)[0] == pytest.approx(model.predict_raw(at_edge)[0])
    assert model.predict_raw(far)[0] == pytest.approx(model.row_function()(far)[0])  # the one-row path alike
    Xb, yb, btask = _data("binary", n=1000)
    assert get_family("linear").fit(Xb, yb, _ctx(btask), {"C": 1.0}).estimator[0].clip == 0.1
    # a scaler pickled before ``clip`` was a parameter still describes itself (scikit-learn's repr reads it)
    old = model.estimator[0]
    del old.__dict__["clip"]
    assert "OneHotScaler" in repr(pickle.loads(pickle.dumps(old)))


@pytest.mark.parametrize("name", ["random_forest", "extra_trees"])
@pytest.mark.parametrize("kind", TASKS)
def test_packed_trees_match_scikit_learn(name: str, kind: str) -> None:
    X, y, task = _data(kind)
    model = get_family(name).fit(X, y, _ctx(task), {"min_samples_leaf": 1, "n_estimators": 40})
    est = model.estimator
    want = est.predict_proba(X[:12]) if task.is_classification else est.predict(X[:12])
    got = np.vstack([model.predict_raw(X[i:i + 1]) for i in range(12)]) if task.is_classification else \
        np.concatenate([model.predict_raw(X[i:i + 1]) for i in range(12)])
    assert np.allclose(got, want, atol=1e-9)


def test_knn_few_rows_match_scikit_learn() -> None:
    for kind in TASKS:
        X, y, task = _data(kind)
        for weights in ("uniform", "distance"):
            model = get_family("knn").fit(X, y, _ctx(task), {"n_neighbors": 7, "weights": weights})
            prep, est = model.estimator
            Z = prep.transform(X[:5])
            want = est.predict_proba(Z) if task.is_classification else est.predict(Z)
            got = model.predict_raw(X[:5])  # a few rows go one at a time through the row function
            want = model._proba(want, est.classes_) if task.is_classification else want
            assert np.allclose(got, want, atol=1e-9)


def test_mlp_is_skipped_with_a_clear_message_without_torch() -> None:
    fam = get_family("mlp")
    assert "pip install 'mlengineer[deep]'" in fam.unavailable_reason()


def test_unknown_family_names_the_known_ones() -> None:
    from mlengineer.errors import ConfigError

    with pytest.raises(ConfigError, match="lightgbm"):
        get_family("gradient_magic")
