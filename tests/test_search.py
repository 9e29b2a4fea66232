"""The search: validation schemes, ensemble selection, the latency limit, sampling of large data, Optuna
tuning, and what the trainer hands to later stages (out-of-fold predictions, the leaderboard)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.errors import ConfigError
from mlengineer.metrics import get_metric
from mlengineer.training.config import TrainConfig
from mlengineer.training.ensemble import select_ensemble
from mlengineer.training.selection import class_weights
from mlengineer.training.trainer import fit_pipeline
from mlengineer.training.validation import choose_validation, n_folds_for, search_sample


def _table(n: int = 600, seed: int = 0, kind: str = "binary") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    signal = df["a"] + (df["c"] == "x") + 0.3 * rng.normal(size=n)
    df["y"] = np.where(signal > 0.5, "pos", "neg") if kind == "binary" else 2 * signal
    return df


# -- validation ---------------------------------------------------------------------------------------------

def test_small_data_is_cross_validated_and_every_row_is_scored() -> None:
    y = np.arange(500) % 2
    v = choose_validation(y, budget=60, stratify=True)
    assert v.kind == "kfold" and len(v.folds) == 5
    assert np.array_equal(v.scored, np.arange(500))
    for tr, va in v.folds:
        assert not set(tr) & set(va)


def test_large_data_gets_one_holdout() -> None:
    y = np.arange(50_000) % 2
    v = choose_validation(y, budget=60, stratify=True)
    assert v.kind == "holdout" and 9_000 < len(v.scored) < 11_000
    assert n_folds_for(500, 60) == 5 and n_folds_for(5_000, 60) == 3 and n_folds_for(2_000, 5) == 1


def test_time_order_always_validates_on_the_latest_rows() -> None:
    y = np.arange(300) % 2
    order = np.arange(300)[::-1]  # the first rows are the latest
    v = choose_validation(y, budget=60, order=order)
    assert v.kind == "holdout" and v.scored.max() < 60


def test_search_sample_keeps_every_class() -> None:
    y = np.r_[np.zeros(9_990, dtype=int), np.ones(10, dtype=int)]
    rows = search_sample(y, 10, budget=60, stratify=True, seed=0, max_rows=1_000)
    assert rows is not None and len(rows) <= 1_100 and (y[rows] == 1).sum() == 10
    assert search_sample(y, 10, budget=60, stratify=True, seed=0, max_rows=20_000) is None


# -- ensemble selection -------------------------------------------------------------------------------------

def test_ensemble_selection_prefers_the_better_model_and_can_mix() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    good = y + rng.normal(0, 0.3, 400)
    other = y + rng.normal(0, 0.3, 400)  # as good, with independent errors: the mean beats either
    bad = rng.normal(size=400)
    metric = get_metric("rmse", "regression")
    w = select_ensemble({"good": good, "other": other, "bad": bad}, y, metric)
    assert w["good"] > 0.3 and w["other"] > 0.3 and w.get("bad", 0) < 0.1
    assert abs(sum(w.values()) - 1) < 1e-9


def test_ensemble_selection_keeps_the_latency_limit_as_a_whole() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    preds = {f"m{i}": y + rng.normal(0, 0.5, 300) for i in range(4)}
    metric = get_metric("rmse", "regression")
    cost = {"m0": 1.0, "m1": 1.0, "m2": 1.0, "m3": 5.0}
    w = select_ensemble(preds, y, metric, cost_ms=cost, max_ms=2.5)
    assert 1 <= len(w) <= 2 and "m3" not in w
    assert sum(cost[n] for n in w) <= 2.5


def test_ensemble_selection_keeps_at_most_max_members() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    preds = {f"m{i}": y + rng.normal(0, 0.3 + 0.05 * i, 300) for i in range(4)}  # m0 the best alone
    metric = get_metric("rmse", "regression")
    assert len(select_ensemble(preds, y, metric)) > 2  # independent errors: several join when free to
    assert select_ensemble(preds, y, metric, max_members=1) == {"m0": 1.0}
    two = select_ensemble(preds, y, metric, max_members=2)
    assert len(two) == 2 and "m0" in two and abs(sum(two.values()) - 1) < 1e-9


@pytest.mark.slow
def test_max_models_one_gives_a_bundle_of_the_best_single_model() -> None:
    config = TrainConfig(target="y", time_budget=5, families=["linear", "lightgbm"], max_models=1, tune=False)
    result = fit_pipeline(_table(), config)
    [(name, _, weight)] = result.predictor.members
    scored = [r for r in result.leaderboard[1:] if r["status"] == "ok"]
    assert weight == 1 and len(scored) > 1 and name == scored[0]["model"]  # the leaderboard's best by the metric
    with pytest.raises(ConfigError, match="max_models= must be at least 1"):
        TrainConfig.build(target="y", max_models=0)


def test_ensemble_weights_by_log_loss_keep_the_blend_calibrated() -> None:
    """Two sharp, calibrated models and one under-confident one whose ranks are as good: weights chosen by
    ROC AUC give the under-confident model most of the weight (its squeezed probabilities need it to count)
    and pull every probability towards the middle; weights chosen by log loss (what ``ensemble_metric``
    picks for ROC AUC) keep the blend honest, for a little of the ranking (here 0.008 of ROC AUC)."""
    from mlengineer.evaluation.calibration import expected_calibration_error
    from mlengineer.metrics import ensemble_metric

    rng = np.random.default_rng(0)
    n = 4000
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)

    def proba(score: np.ndarray, shrink: float = 1.0) -> np.ndarray:
        p = 0.5 + shrink * (1 / (1 + np.exp(-score)) - 0.5)
        return np.c_[1 - p, p]

    preds = {"sharp_1": proba(z + rng.normal(0, 0.8, n)), "sharp_2": proba(z + rng.normal(0, 0.8, n)),
             "timid": proba(z + rng.normal(0, 0.8, n), shrink=0.3)}
    auc = get_metric("roc_auc", "binary")
    by_auc = select_ensemble(preds, y, auc)
    by_ll = select_ensemble(preds, y, ensemble_metric(auc, None, "binary"))

    def blend(w: dict[str, float]) -> np.ndarray:
        return np.sum([preds[k] * v for k, v in w.items()], axis=0)

    assert by_auc.get("timid", 0) > 0.2 > by_ll.get("timid", 0)
    assert expected_calibration_error(y, blend(by_ll)) < 0.5 * expected_calibration_error(y, blend(by_auc))
    assert auc(y, blend(by_ll)) > auc(y, blend(by_auc)) - 0.01


def test_class_weights_balance_the_classes() -> None:
    y = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    w = class_weights(y, 2)
    assert np.isclose(w[y == 0].sum(), w[y == 1].sum()) and np.isclose(w.mean(), 1.0)


# -- the trainer --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_fit_pipeline_hands_out_of_fold_predictions_and_a_full_leaderboard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import pin_lightgbm_costs

    df = _table()
    events: list[str] = []
    config = TrainConfig(target="y", time_budget=10, families=["linear", "lightgbm"], validation="kfold")
    # the plan follows the measured costs, and a slow machine may plan no tuning in 10 s: a short run fills a
    # cost cache of this test's own, whose LightGBM costs are then pinned to values that leave room for it
    monkeypatch.setenv("MLENGINEER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLENGINEER_COST_CACHE", raising=False)
    fit_pipeline(df, config.model_copy(update={"time_budget": 2}))
    [stored] = (tmp_path / "cache").glob("costs/*.json")
    pin_lightgbm_costs(stored)
    result = fit_pipeline(df, config, progress=lambda event, **kw: events.append(event))
    assert "search_start" in events and "candidate" in events and "stage" in events
    assert "5-fold" in result.split_strategy
    # cross-validated: every row has a prediction from models that did not see it
    assert result.valid_y is not None and result.valid_pred is not None
    assert len(result.valid_y) == len(df) and result.valid_pred.shape == (len(df), 2)
    board = result.leaderboard
    assert board[0]["model"] == "ensemble"
    for row in board:
        assert {"score", "fit_s", "predict_ms_per_row", "predict_1row_ms", "status", "params"} <= set(row)
    assert result.validation_score > 0.8
    assert any(r["phase"] == "tuning" for r in board)  # Optuna took over after the short portfolio
    assert result.leaderboard[0]["params"]["refit_on_all_rows"] and result.n_train_rows == len(df)
    assert result.leaderboard[0]["params"]["weights_chosen_by"] == "log_loss"  # the metric, ROC AUC, only ranks


@pytest.mark.slow
def test_a_latency_limit_too_tight_for_anything_leaves_the_fastest_single_model() -> None:
    config = TrainConfig(target="y", time_budget=4, families=["linear", "lightgbm"], max_predict_ms_per_row=1e-6,
                         tune=False)
    result = fit_pipeline(_table(kind="regression"), config)
    assert len(result.predictor.members) == 1
    assert all(r["status"].startswith("too slow") for r in result.leaderboard[1:] if r["status"] != "ok")
    assert any(r["status"].startswith("too slow") for r in result.leaderboard[1:])


@pytest.mark.slow
def test_large_data_is_searched_on_a_sample_and_fitted_on_all_rows() -> None:
    df = _table(n=3000, kind="regression")
    config = TrainConfig(target="y", time_budget=8, families=["lightgbm"], max_search_rows=800, tune=False)
    result = fit_pipeline(df, config)
    assert "sample of 800 of 3,000 rows" in result.split_strategy
    assert result.n_train_rows == 3000
    assert result.leaderboard[0]["params"]["refit_on_all_rows"]  # the best member at least saw every row
    assert len(result.valid_y) <= 800  # out-of-fold rows of the sample only


@pytest.mark.slow
def test_a_class_rarer_than_the_folds_still_trains() -> None:
    df = _table(n=300)
    df.loc[:2, "y"] = "rare"  # three rows of a third class: fewer than the five folds
    result = fit_pipeline(df, TrainConfig(target="y", time_budget=4, families=["linear", "lightgbm"], tune=False))
    assert result.task.kind == "multiclass"
    assert result.valid_pred.shape[1] == 3 and np.allclose(result.valid_pred.sum(axis=1), 1)


@pytest.mark.slow
def test_balanced_metric_lifts_the_rare_class() -> None:
    rng = np.random.default_rng(3)
    n = 800
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["y"] = np.where(df["a"] + 0.8 * rng.normal(size=n) > 1.6, "rare", "common")  # about 8% rare
    plain = fit_pipeline(df, TrainConfig(target="y", time_budget=4, families=["linear"], metric="accuracy",
                                         tune=False))
    balanced = fit_pipeline(df, TrainConfig(target="y", time_budget=4, families=["linear"],
                                            metric="balanced_accuracy", tune=False))

    def rare_share(r: object) -> float:
        return float((r.valid_pred.argmax(axis=1) == r.task.classes.index("rare")).mean())  # type: ignore[attr-defined]

    assert rare_share(balanced) > rare_share(plain)


@pytest.mark.slow
def test_the_time_budget_is_kept_loosely() -> None:
    import time

    df = _table(n=2000)
    start = time.perf_counter()
    fit_pipeline(df, TrainConfig(target="y", time_budget=5))
    # loosely, never a strict timing: a search that ignored its budget would run for minutes
    assert time.perf_counter() - start < 5 * 3


def test_portfolio_skips_the_mlp_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from mlengineer.tasks import BinaryTask
    from mlengineer.training.models import get_family
    from mlengineer.training.search import portfolio

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert not get_family("mlp").available()
    families = {f for f, _ in portfolio(BinaryTask([0, 1]), 1000, 5)}
    assert "mlp" not in families and {"lightgbm", "catboost", "xgboost", "linear"} <= families


def test_a_bag_averages_its_fold_models() -> None:
    from mlengineer.tasks import RegressionTask
    from mlengineer.training.ensemble import Bag
    from mlengineer.training.models import FitContext, get_family

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = X[:, 0] * 2 + rng.normal(0, 0.1, 200)
    ctx = FitContext(task=RegressionTask(), n_jobs=1)
    fam = get_family("linear")
    models = [fam.fit(X[i::2], y[i::2], ctx, {"alpha": 1.0}) for i in range(2)]
    bag = Bag(models)
    want = (models[0].predict_raw(X[:5]) + models[1].predict_raw(X[:5])) / 2
    assert np.allclose(bag.predict_raw(X[:5]), want) and bag.of_family == "linear"


@pytest.mark.slow
def test_rows_kept_apart_for_calibration_are_scored_by_the_final_model_and_trained_on_by_none() -> None:
    df = _table(n=1000)
    config = TrainConfig(target="y", time_budget=5, families=["knn"], tune=False, validation="kfold",
                         calibration_fraction=0.2)
    result = fit_pipeline(df, config)
    cal = result.calibration_index
    assert cal is not None and 180 <= len(cal) <= 220 and result.n_train_rows == len(df) - len(cal)
    assert "kept apart from every fit" in result.split_strategy
    clean = result.plan.apply(df, training=True)
    X = result.encoder.transform(clean.drop(columns=["y"]))
    # the calibration rows' predictions come from the final (refit) model itself, not from fold models
    assert np.allclose(result.valid_pred, result.predictor.predict_raw(X[cal]))
    assert np.array_equal(result.valid_y, result.task.encode(clean["y"].iloc[cal]))
    # and the final fit saw only the other rows (k-NN keeps the rows it was fitted on)
    knn = [m for _, m, _ in result.predictor.members if m.family == "knn"]
    assert knn and knn[0].estimator[1].n_samples_fit_ == result.n_train_rows


def test_a_calibration_slice_never_takes_a_class_away_from_training() -> None:
    from mlengineer.tasks import make_task
    from mlengineer.training.trainer import calibration_slice

    y = np.r_[np.zeros(200, dtype=int), np.ones(200, dtype=int), [2]]  # class 2 has one row
    task = make_task(pd.Series(y), "multiclass")
    fit, cal = calibration_slice(y, TrainConfig(target="y", calibration_fraction=0.25), task, None, None)
    assert cal is not None and set(np.unique(y[fit])) == {0, 1, 2} and 2 not in set(y[cal])
    assert not set(fit) & set(cal) and len(fit) + len(cal) == len(y)
    fit, cal = calibration_slice(y, TrainConfig(target="y"), task, None, None)
    assert cal is None and len(fit) == len(y)


def test_with_several_classes_the_network_has_its_turn_before_catboost_and_with_many_first() -> None:
    from mlengineer.tasks import BinaryTask, MulticlassTask
    from mlengineer.training.search import portfolio

    def firsts(task: object, rows: int) -> list[str]:
        seen: list[str] = []
        for f, _ in portfolio(task, rows, 16):  # type: ignore[arg-type]
            if f not in seen:
                seen.append(f)
        return seen

    # boosters grow a tree per class a round; the network's cost hardly depends on the classes
    four = firsts(MulticlassTask(list("ABCD")), 16_000)
    assert four.index("mlp") < four.index("catboost") and four[0] == "lightgbm"
    binary = firsts(BinaryTask([0, 1]), 16_000)
    assert binary.index("catboost") < binary.index("mlp")
    # with ten classes or more the network goes first: it takes the first candidate's share of the search
    letters = firsts(MulticlassTask([chr(65 + i) for i in range(26)]), 16_000)
    assert letters[:2] == ["mlp", "lightgbm"]
    assert firsts(MulticlassTask(list(range(10))), 1_000)[0] == "mlp"
    assert firsts(MulticlassTask(list(range(9))), 1_000)[0] == "lightgbm"
    # a family for text keeps its first turn where the table has text (20 newsgroups: twenty classes)
    from mlengineer.training.search import portfolio as plan_for
    with_text = [f for f, _ in plan_for(MulticlassTask(list(range(20))), 1_000, 4,
                                        feature_names=["message__tfidf_s0", "message__words", "message__chars", "x"])]
    assert list(dict.fromkeys(with_text))[:3] == ["text", "mlp", "lightgbm"]
    # on large data the families' ``place_large`` rules, whatever the classes (poker hands: ten)
    assert firsts(MulticlassTask(list(range(10))), 80_000)[0] == "lightgbm"


@pytest.mark.long
@pytest.mark.slow
def test_a_network_of_several_members_is_trained_when_named_and_its_bundle_answers_alike(tmp_path: Path) -> None:
    """``families=["tabm"]`` trains networks of several members (a family out of the default portfolio); the
    saved bundle answers what the trained model answers (a few rows: the bag's stacked numpy pass), and that
    is the mean of each fold network's torch answer."""
    import mlengineer
    from mlengineer.training.ensemble import Bag
    from mlengineer.training.models import get_family

    df = _table(n=500)
    model = mlengineer.train(df, "y", time_budget=6, families=["tabm"], tune=False, track=False,
                             out=tmp_path / "tabm")
    [(name, member, weight)] = model.predictor.members  # type: ignore[attr-defined]
    assert name.startswith("tabm_") and isinstance(member, Bag) and weight == 1
    assert all(m.estimator["net"].members == 8 for m in member.estimator)
    assert get_family("tabm").place is None
    rows = df.drop(columns=["y"]).head(20)
    loaded = mlengineer.load(tmp_path / "tabm")
    np.testing.assert_allclose(loaded.predict_raw(rows), model.predict_raw(rows), rtol=0, atol=1e-9)
    X = model.encoder.transform(model.plan.apply(rows, training=False))  # type: ignore[attr-defined]
    each = np.mean([m.predict_raw(np.repeat(X, 4, axis=0))[::4] for m in member.estimator], axis=0)  # torch
    np.testing.assert_allclose(model.predict_raw(rows), each, rtol=0, atol=1e-6)


@pytest.mark.long
@pytest.mark.slow
def test_a_network_keeps_its_fold_models_and_the_bundle_answers_with_their_average(tmp_path: Path) -> None:
    """The MLP is bagged over the folds rather than refit (``ModelFamily.bag_folds``); saved and loaded, the
    bundle predicts the fold models' average. On a sample of the rows it is refit on all of them instead."""
    import mlengineer
    from mlengineer.training.ensemble import Bag

    df = _table(n=500)
    model = mlengineer.train(df, "y", time_budget=6, families=["mlp"], tune=False, track=False,
                             out=tmp_path / "bagged")
    [(name, member, weight)] = model.predictor.members  # type: ignore[attr-defined]
    assert isinstance(member, Bag) and member.of_family == "mlp" and weight == 1
    assert f"{len(member.estimator)}-fold" in model.metadata["split"]  # one network per fold
    assert model.metadata["leaderboard"][0]["params"]["refit_on_all_rows"] == []
    rows = df.drop(columns=["y"]).head(20)
    loaded = mlengineer.load(tmp_path / "bagged")
    assert np.allclose(loaded.predict_raw(rows), model.predict_raw(rows))
    X = model.encoder.transform(model.plan.apply(rows, training=False))  # type: ignore[attr-defined]
    assert np.allclose(model.predict_raw(rows), np.mean([m.predict_raw(X) for m in member.estimator], axis=0))

    sampled = fit_pipeline(_table(n=1500), TrainConfig(target="y", time_budget=6, families=["mlp"], tune=False,
                                                       max_search_rows=500))
    assert sampled.leaderboard[0]["params"]["refit_on_all_rows"] == ["mlp_1"]


def test_networks_are_bagged_only_within_the_latency_aim() -> None:
    from types import SimpleNamespace

    from mlengineer.training.selection import _bagged

    def cand(name: str, family: str, ms: float) -> SimpleNamespace:
        return SimpleNamespace(name=name, family=family, latency_ms=ms, models=[object()] * 5)

    def searched(limit: float, rows: int = 100) -> SimpleNamespace:
        return SimpleNamespace(rows=np.arange(rows), validation=SimpleNamespace(folds=[()] * 5), model_limit=limit,
                               overhead_ms=0.0, ok=[])

    chosen = [(cand("mlp_1", "mlp", 0.2), 0.6), (cand("lightgbm_1", "lightgbm", 0.1), 0.4)]
    assert _bagged(chosen, searched(2.0), 100) == {"mlp_1"}  # 5 x 0.2 + 0.1 within 2 ms
    assert _bagged(chosen, searched(1.0), 100) == set()  # 1.1 ms past the aim: refit
    assert _bagged(chosen, searched(2.0, rows=50), 100) == set()  # the search saw a sample


def test_a_refit_has_the_threads_its_search_fits_had(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refit's planned seconds are priced at the threads the search's fits had: a holdout's one fit has all
    of them, so does its refit (on one thread it took 2.3x its plan); folds fitted side by side have one each,
    so does the refit."""
    from mlengineer.training.models import get_family

    family_type = type(get_family("lightgbm"))
    original = family_type.fit
    seen: list[tuple[str, int]] = []

    def fit(self, X, y, ctx, params, X_val=None, y_val=None):  # type: ignore[no-untyped-def]
        seen.append(("refit" if X_val is None and ctx.max_units is None else "search", ctx.n_jobs))
        return original(self, X, y, ctx, params, X_val, y_val)

    monkeypatch.setattr(family_type, "fit", fit)
    for validation, threads in (("holdout", 2), ("kfold", 1)):
        seen.clear()
        result = fit_pipeline(_table(), TrainConfig(target="y", time_budget=12, families=["lightgbm"], tune=False,
                                                    n_jobs=2, validation=validation))
        assert result.leaderboard[0]["params"]["refit_on_all_rows"]
        assert {n for kind, n in seen if kind == "refit"} == {threads}, validation
        assert {n for kind, n in seen if kind == "search"} == {threads}, validation


def test_another_start_of_a_configuration_is_another_model_and_repeats() -> None:
    """``"start": n`` in a configuration's parameters fits it from the run's n-th other random start: a network
    other than the first start's, the same one every time."""
    from mlengineer.tasks import make_task
    from mlengineer.training.models import FitContext, get_family

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X[:, 0] + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=300)
    ctx = FitContext(task=make_task(pd.Series(y), "regression"), seed=3, n_jobs=1)
    params = {"hidden": 32, "layers": 2, "n_estimators": 5}
    family = get_family("mlp")

    def answers(**extra: int) -> np.ndarray:
        return family.fit(X, y, ctx, {**params, **extra}).predict_raw(X[:20])

    first, other = answers(), answers(start=1)
    assert not np.allclose(first, other)
    np.testing.assert_array_equal(other, answers(start=1))
    np.testing.assert_array_equal(first, answers(start=0))
    assert ctx.seed == 3  # the caller's context is left as it was


@pytest.mark.long
@pytest.mark.slow
def test_a_leading_network_is_fitted_again_from_other_starts_with_the_seconds_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a network that keeps its fold models leads a search that saw every row, the seconds left (with those
    after the search that no refit needs) fit its configuration again from other random starts; they join the
    ensemble as candidates of their own. A search on a sample of the rows does not (its members are refit).
    The planned seconds after the search are made plenty, so that a start surely fits whatever the costs."""
    from mlengineer.training import selection
    from mlengineer.training.phases import RESTARTS

    monkeypatch.setattr(selection, "REFIT_END", 1.2)
    result = fit_pipeline(_table(n=400), TrainConfig(target="y", time_budget=12, families=["mlp"], n_jobs=2))
    rows = {r["model"]: r for r in result.leaderboard if r["model"] != "ensemble"}
    restarts = [r for r in rows.values() if r["phase"] == "restart"]
    assert 1 <= len(restarts) <= RESTARTS
    assert sorted(r["params"]["start"] for r in restarts) == list(range(1, len(restarts) + 1))  # by loss
    leader = {k: v for k, v in restarts[0]["params"].items() if k != "start"}
    assert any(r["phase"] != "restart" and r["params"] == leader for r in rows.values())

    sampled = fit_pipeline(_table(n=1500), TrainConfig(target="y", time_budget=12, families=["mlp"], n_jobs=2,
                                                       max_search_rows=500))
    assert not any(r["phase"] == "restart" for r in sampled.leaderboard)


def test_the_learners_imports_come_before_the_plan_and_out_of_its_seconds(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A family's imports (torch's take about 2 s, in every new process) happen before the search is planned, so
    the plan's seconds are what is left after them: here an import made to take 1.5 s."""
    import time as clock

    from mlengineer.training.models import get_family

    monkeypatch.setenv("MLENGINEER_CACHE_DIR", str(tmp_path / "cache"))
    family_type = type(get_family("lightgbm"))
    imported: list[float] = []
    monkeypatch.setattr(family_type, "warm_up",  # once per process, as an import is
                        lambda self: imported or imported.append(clock.sleep(1.5) or 1.5))
    config = TrainConfig(target="y", time_budget=6, families=["lightgbm"], tune=False)
    plan = fit_pipeline(_table(), config).reproducibility["plan"]
    assert imported and plan["prepare_s"] >= 1.4
    monkeypatch.setattr(family_type, "warm_up", lambda self: None)
    assert fit_pipeline(_table(), config).reproducibility["plan"]["prepare_s"] == plan["prepare_s"]  # remembered
