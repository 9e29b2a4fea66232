"""Each family's one-row function (``row_function``, used by bundle/rowpath.py) answers what its
``predict_raw`` answers for that row: LightGBM through its single-row C API, linear models through their
formula written in place, the MLP by a numpy forward pass, k-NN by one matrix-vector product, CatBoost's
trees walked in numpy, forests by LightGBM's tree walker; a model without one falls back to ``predict_raw``."""

from __future__ import annotations

import numpy as np
import pytest

from mlengineer.bundle.rowpath import row_predictor
from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask
from mlengineer.training.ensemble import Bag, Ensemble
from mlengineer.training.models import FitContext, get_family


def data(kind: str, n: int = 600) -> tuple[np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 2] = rng.integers(0, 12, n)  # category codes, some unseen below
    X[rng.random(X.shape) < 0.08] = np.nan
    signal = np.nan_to_num(X[:, 0]) + (np.nan_to_num(X[:, 2]) % 3 == 1) + 0.5 * np.nan_to_num(X[:, 3])
    if kind == "binary":
        return X, (signal + rng.normal(0, 0.5, n) > 0.5).astype(np.int64), BinaryTask(["no", "yes"])
    if kind == "multiclass":
        return X, np.digitize(signal + rng.normal(0, 0.4, n), [0.0, 1.0]).astype(np.int64), MulticlassTask(["a", "b", "c"])
    return X, (25_000 * signal + rng.normal(0, 300, n)).astype(np.float64), RegressionTask()


def odd_rows(X: np.ndarray) -> np.ndarray:
    """Rows a server meets: all missing, unseen category codes, values far outside the training range."""
    extra = np.full((4, X.shape[1]), np.nan, dtype=np.float32)
    extra[1] = X[0]
    extra[1, 2] = 40  # a code the model never saw
    extra[2] = 1e6
    extra[3] = -1e6
    extra[2:, 2] = 1  # codes are never negative or huge: the encoder writes a known code, the rare one or NaN
    return np.vstack([X, extra])


def fitted(name: str, kind: str) -> tuple[object, np.ndarray]:
    X, y, task = data(kind)
    fam = get_family(name)
    ctx = FitContext(task=task, categorical=[2], cardinalities=[12], seed=0, n_jobs=1, time_limit=60)
    config = {**fam.default_configs(task, len(X), X.shape[1])[0], "n_estimators": 150}
    if fam.early_stopping:
        model = fam.fit(X[:450], y[:450], ctx, config, X[450:], y[450:])
    else:
        model = fam.fit(X[:450], y[:450], ctx, config)
    return model, odd_rows(X[450:])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["lightgbm", "linear"])
def test_row_function_equals_predict_raw(name: str, kind: str) -> None:
    model, rows = fitted(name, kind)
    row = model.row_function()
    assert row is not None
    for i in range(len(rows)):
        x = rows[i : i + 1]
        got, want = row(x), model.predict_raw(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 if kind != "regression" else 1e-6 * 25_000)
    if name == "lightgbm":  # the same C library and trees: not merely close
        np.testing.assert_array_equal(np.vstack([row(rows[i : i + 1]) for i in range(len(rows))]).ravel(),
                                      np.vstack([model.predict_raw(rows[i : i + 1]) for i in range(len(rows))]).ravel())


@pytest.mark.slow
def test_lightgbm_row_function_follows_a_reloaded_booster() -> None:
    """``prepare`` reloads the booster (a new handle): the single-row configuration is built again, never
    left pointing at the freed one."""
    model, rows = fitted("lightgbm", "binary")
    row = model.row_function()
    before = row(rows[:1])
    booster = model.estimator
    booster.model_from_string(booster.model_to_string())
    np.testing.assert_array_equal(row(rows[:1]), before)


@pytest.mark.slow
def test_ensemble_and_bag_rows_combine_members_as_predict_raw_does() -> None:
    lgb, rows = fitted("lightgbm", "multiclass")
    lin, _ = fitted("linear", "multiclass")
    fitted_forest, _ = fitted("random_forest", "multiclass")

    class Plain:  # a member without a row function: its own predict_raw answers
        predict_raw = staticmethod(fitted_forest.predict_raw)

    forest = Plain()
    ensemble = Ensemble([("lightgbm_1", Bag([lgb, lgb]), 0.5), ("linear_1", lin, 0.3), ("rf_1", forest, 0.2)])
    fn = row_predictor(ensemble)
    for i in range(0, len(rows), 7):
        np.testing.assert_allclose(fn(rows[i : i + 1]), ensemble.predict_raw(rows[i : i + 1]), rtol=0, atol=1e-9)


# -- the families whose row function is new in issue 16: each against the member's own batch prediction --

def scale(kind: str) -> float:
    """Tolerance 1e-6 of the output's scale: probabilities, or the regression target (~25,000 here)."""
    return 1e-6 * (25_000 if kind == "regression" else 1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["mlp", "knn", "catboost", "random_forest", "extra_trees"])
def test_new_row_functions_equal_the_batch_prediction(name: str, kind: str) -> None:
    """One row at a time through ``row_function`` against ``predict_raw`` on all the rows at once (the
    batch path: torch on a batch, scikit-learn's search and forest, CatBoost on a frame), odd rows included."""
    model, rows = fitted(name, kind)
    row = model.row_function()
    assert row is not None
    got = [row(rows[i : i + 1]) for i in range(len(rows))]
    assert all(g.shape == ((1, 3 if kind == "multiclass" else 2) if kind != "regression" else (1,)) for g in got)
    np.testing.assert_allclose(np.concatenate(got), model.predict_raw(rows), rtol=0, atol=scale(kind))
    if name in ("random_forest", "extra_trees"):  # the same splits and the same mean: to the last bit
        np.testing.assert_array_equal(np.concatenate(got), np.concatenate(
            [model.predict_raw(rows[i : i + 1]) for i in range(len(rows))]))


def numeric_catboost(kind: str) -> tuple[object, np.ndarray]:
    X, y, task = data(kind)
    X[:, 2] += 0.25  # no categories: every split is on a number, so the trees are walked in numpy
    fam = get_family("catboost")
    ctx = FitContext(task=task, seed=0, n_jobs=1, time_limit=60)
    config = {**fam.default_configs(task, len(X), X.shape[1])[0], "n_estimators": 150}
    return fam.fit(X[:450], y[:450], ctx, config, X[450:], y[450:]), odd_rows(X[450:])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_catboost_trees_walked_in_numpy_equal_catboost(kind: str) -> None:
    from mlengineer.training.models._oblivious import ObliviousTrees

    model, rows = numeric_catboost(kind)
    assert ObliviousTrees.from_catboost(model.estimator) is not None
    row = model.row_function()
    got = np.concatenate([row(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_allclose(got, model.predict_raw(rows), rtol=1e-12, atol=1e-12)
    categorical, _ = fitted("catboost", "binary")  # target statistics: CatBoost's own evaluator answers
    assert ObliviousTrees.from_catboost(categorical.estimator) is None


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("card", [5, 20])  # a k-d tree (few features) and the brute search (many)
def test_knn_row_breaks_ties_as_scikit_learn(weights: str, card: int) -> None:
    """Rows on a small grid: every query has many neighbours at the same distance, with different labels."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(400, 4)).astype(np.float32)
    X[:, 3] = rng.integers(0, card, 400)
    y = rng.integers(0, 3, 400)
    for task, target in [(MulticlassTask(["a", "b", "c"]), y), (RegressionTask(), y * 10.0 + rng.normal(0, 1, 400))]:
        ctx = FitContext(task=task, categorical=[3], cardinalities=[card], seed=0, n_jobs=1)
        model = get_family("knn").fit(X[:300], target[:300], ctx, {"n_neighbors": 15, "weights": weights})
        row = model.row_function()
        got = np.concatenate([row(X[i : i + 1]) for i in range(300, 400)])
        np.testing.assert_allclose(got, model.predict_raw(X[300:]), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_ensemble_of_new_families_through_the_row_path_equals_the_batch_path() -> None:
    members = [fitted(name, "multiclass")[0] for name in ("mlp", "knn", "catboost", "extra_trees")]
    lgb, rows = fitted("lightgbm", "multiclass")
    ensemble = Ensemble([("lightgbm_1", lgb, 0.3), ("mlp_1", members[0], 0.2), ("knn_1", members[1], 0.2),
                         ("catboost_1", Bag([members[2], members[2]]), 0.2), ("extra_trees_1", members[3], 0.1)])
    fn = row_predictor(ensemble)
    got = np.concatenate([fn(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_allclose(got, ensemble.predict_raw(rows), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_forest_pickles_without_its_walker_and_builds_it_again() -> None:
    import pickle

    model, rows = fitted("random_forest", "binary")
    before = model.row_function()(rows[:1])
    again = pickle.loads(pickle.dumps(model))
    assert again._row is None
    np.testing.assert_array_equal(again.row_function()(rows[:1]), before)


def test_search_latency_counts_the_row_function() -> None:
    """The ensemble's latency aim adds members' costs as the row path pays them: ``latency_ms`` times a
    model's row function where it has one (here ``predict_raw`` would fail)."""
    from mlengineer.training.latency import latency_ms

    class RowOnly:
        calls = 0

        def row_function(self):  # noqa: ANN202 - a toy model
            def row(X: np.ndarray) -> np.ndarray:
                RowOnly.calls += 1
                return X.sum(axis=1)

            return row

        def predict_raw(self, X: np.ndarray) -> np.ndarray:
            raise AssertionError("the row function should answer")

    assert latency_ms(RowOnly(), np.zeros((1, 3), dtype=np.float32), repeats=3) >= 0
    assert RowOnly.calls == 4  # a warm-up and three timed calls


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_mlp_small_batches_go_through_numpy_and_answer_as_torch(kind: str) -> None:
    """Up to ``NUMPY_ROWS`` rows the MLP's ``predict_raw`` is its numpy forward pass (torch's per-call cost is
    most of a small batch's); what it answers equals torch's answer for the same rows within 1e-6, in the
    same shape, and a pickled model builds its numpy copy again."""
    import pickle

    from mlengineer.training.models.mlp import NUMPY_ROWS

    model, rows = fitted("mlp", kind)
    assert len(rows) > NUMPY_ROWS
    torch_answer = model.predict_raw(rows)  # more rows than NUMPY_ROWS: torch
    assert model._numpy is None
    for k in (1, 7, NUMPY_ROWS):
        got = model.predict_raw(rows[:k])
        assert got.shape == torch_answer[:k].shape
        np.testing.assert_allclose(got, torch_answer[:k], rtol=0, atol=scale(kind))
    assert model._numpy is not None and model._numpy[0] is not None
    again = pickle.loads(pickle.dumps(model))
    assert again._numpy is None
    np.testing.assert_array_equal(again.predict_raw(rows[:5]), model.predict_raw(rows[:5]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_bag_of_networks_forwards_them_at_once_as_each_alone(kind: str) -> None:
    """A bag of MLPs fitted on different rows (each its own scaler, missing flags and weights) answers a few
    rows through one stacked pass (``MLPModel.stacked_function``): the mean of each network's own answer,
    within 1e-6, through ``predict_raw`` and the row path alike; more rows go network by network."""
    import pickle

    from mlengineer.training.models.mlp import NUMPY_ROWS

    X, y, task = data(kind)
    X[:150, 4] = np.where(np.isnan(X[:150, 4]), 0.0, X[:150, 4])  # a fold without missing values in a column
    fam = get_family("mlp")
    ctx = FitContext(task=task, categorical=[2], cardinalities=[12], seed=0, n_jobs=1, time_limit=60)
    config = {**fam.default_configs(task, len(X), X.shape[1])[0], "n_estimators": 20}
    folds = [fam.fit(X[rows], y[rows], ctx, dict(config)) for rows in (slice(0, 150), slice(100, 300), slice(250, 450))]
    bag = Bag(folds)
    rows = odd_rows(X[450:])
    alone = np.mean([m.predict_raw(rows) for m in folds], axis=0)  # 154 rows: torch, network by network
    assert bag.row_function() is not None
    for k in (1, 9, NUMPY_ROWS):
        got = bag.predict_raw(rows[:k])
        assert got.shape == alone[:k].shape
        np.testing.assert_allclose(got, alone[:k], rtol=0, atol=scale(kind))
    one = row_predictor(bag)
    np.testing.assert_allclose(np.concatenate([one(rows[i : i + 1]) for i in range(len(rows))]), alone, rtol=0,
                               atol=scale(kind))
    np.testing.assert_array_equal(bag.predict_raw(rows), alone)
    again = pickle.loads(pickle.dumps(bag))
    assert again._stacked is None
    np.testing.assert_array_equal(again.predict_raw(rows[:5]), bag.predict_raw(rows[:5]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_network_of_several_members_answers_their_mean(kind: str) -> None:
    """A network of k members (TabM-mini: each member's own multipliers on the input, shared hidden layers,
    each its own output layer) answers the mean of its members, each worked out here by hand from the torch
    weights: probabilities averaged for classes, values for a target. Its numpy pass (a few rows, the row path)
    answers the same within 1e-6; the members learned apart (different multipliers and output layers)."""
    import torch

    from mlengineer.training.models.mlp import NUMPY_ROWS

    X, y, task = data(kind)
    fam = get_family("mlp")
    ctx = FitContext(task=task, categorical=[2], cardinalities=[12], seed=0, n_jobs=1, time_limit=60)
    config = {**fam.default_configs(task, len(X), X.shape[1])[0], "members": 4, "n_estimators": 30}
    model = fam.fit(X[:450], y[:450], ctx, config, X[450:], y[450:])
    net = model.estimator["net"]
    assert net.members == 4 and net.head_weight.shape[0] == 4
    assert not torch.equal(net.head_weight[0], net.head_weight[1]) and not torch.equal(net.adapter[0], net.adapter[1])
    rows = odd_rows(X[450:])
    num, cat = model._inputs(rows)
    with torch.inference_mode():
        x = torch.cat([num] + [emb(cat[:, i]) for i, emb in enumerate(net.embeddings)], dim=1)
        each = [net.body(x * net.adapter[i]) @ net.head_weight[i] + net.head_bias[i] for i in range(4)]
    if task.is_classification:
        by_hand = np.mean([torch.softmax(z.double(), dim=1).numpy() for z in each], axis=0)
    else:
        by_hand = np.mean([z[:, 0].double().numpy() for z in each], axis=0) * model.params["_y_scale"] + model.params["_y_mean"]
    answer = model.predict_raw(rows)  # more rows than NUMPY_ROWS: torch
    assert answer.shape == by_hand.shape
    np.testing.assert_allclose(answer, by_hand, rtol=0, atol=scale(kind))
    for k in (1, NUMPY_ROWS):
        np.testing.assert_allclose(model.predict_raw(rows[:k]), answer[:k], rtol=0, atol=scale(kind))
    one = row_predictor(model)
    np.testing.assert_allclose(np.concatenate([one(rows[i : i + 1]) for i in range(len(rows))]), answer, rtol=0,
                               atol=scale(kind))
    # a bag of such networks stacks their members: the mean of the networks' own answers
    other = fam.fit(X[100:550], y[100:550], ctx, {**config, "n_estimators": 10})
    bag, alone = Bag([model, other]), (answer + other.predict_raw(rows)) / 2
    assert bag.row_function() is not None
    for k in (1, NUMPY_ROWS):
        np.testing.assert_allclose(bag.predict_raw(rows[:k]), alone[:k], rtol=0, atol=scale(kind))
    one = row_predictor(bag)
    np.testing.assert_allclose(one(rows[:1]), alone[:1], rtol=0, atol=scale(kind))


def test_an_ensembles_latency_is_timed_through_its_members_row_functions() -> None:
    """The leaderboard's one-row time of the ensemble is what the bundle's row path pays: the members' row
    functions (here their ``predict_raw`` would fail), weighted as ``Ensemble.predict_raw`` weighs them."""
    from mlengineer.training.ensemble import Ensemble
    from mlengineer.training.latency import latency_ms

    class RowOnly:
        def __init__(self, scale: float) -> None:
            self.scale = scale

        def row_function(self):  # noqa: ANN202 - a toy model
            return lambda X: X.sum(axis=1) * self.scale

        def predict_raw(self, X: np.ndarray) -> np.ndarray:
            raise AssertionError("the row function should answer")

    ensemble = Ensemble([("a", RowOnly(1.0), 0.25), ("b", RowOnly(3.0), 0.75)])
    rows = np.arange(32, dtype=np.float32).reshape(16, 2)
    assert latency_ms(ensemble, rows) >= 0
    np.testing.assert_allclose(ensemble.row_function()(rows[3:4]), [(6 + 7) * (0.25 + 2.25)])
