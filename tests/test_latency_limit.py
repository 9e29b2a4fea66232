"""A latency limit cuts a booster to its first rounds instead of refusing it (training/latency.py), and the
search times one row over several rows in turn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask
from mlengineer.training.latency import cut_to_limit, latency_ms
from mlengineer.training.models import FitContext, get_family


def _data(kind: str, n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[:, 2] = rng.integers(0, 4, n)
    X[rng.random(X.shape) < 0.05] = np.nan
    signal = np.nan_to_num(X[:, 0]) + np.sin(3 * np.nan_to_num(X[:, 1])) + (X[:, 2] == 1)
    if kind == "binary":
        return X, (signal + rng.normal(0, 0.5, n) > 0.3).astype(np.int64), BinaryTask(["no", "yes"])
    if kind == "multiclass":
        return X, np.digitize(signal + rng.normal(0, 0.4, n), [-0.3, 0.6]).astype(np.int64), MulticlassTask(["a", "b", "c"])
    return X, np.exp(signal + rng.normal(0, 0.2, n)), RegressionTask()


def _fit(family: str, kind: str, **params: object):  # type: ignore[no-untyped-def]
    fam = get_family(family)
    if not fam.available():
        pytest.skip(fam.unavailable_reason())
    X, y, task = _data(kind)
    ctx = FitContext(task=task, categorical=[2], cardinalities=[4], seed=0, n_jobs=1, time_limit=30)
    config = {**fam.default_configs(task, len(X), X.shape[1])[0], "n_estimators": 120, **params}
    return fam.fit(X[:400], y[:400], ctx, config), X[400:]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_lightgbm_booster_cut_to_its_first_rounds_answers_as_those_rounds(kind: str) -> None:
    model, X = _fit("lightgbm", kind)
    full = model.best_iteration
    assert full and full > 40
    before = model.predict_raw(X)
    cut = model.with_rounds(30)
    assert cut.best_iteration == 30 and cut.estimator.current_iteration() == 30 and cut.packed is not None
    expected = model.estimator.predict(X, num_iteration=30)
    got = cut.predict_raw(X)
    if kind == "binary":
        np.testing.assert_allclose(got[:, 1], expected, rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # one row through the compiled walk of the cut trees, as the bundle will answer it
    row = cut.row_function()
    for i in range(5):
        np.testing.assert_allclose(np.ravel(row(X[i:i + 1])), np.ravel(got[i:i + 1]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.predict_raw(X), before)  # the model it was cut from is untouched
    assert model.with_rounds(10 * full).best_iteration == full  # more rounds than it has: all of them


def test_a_catboost_model_and_a_transformed_target_are_cut_alike() -> None:
    model, X = _fit("catboost", "multiclass")
    cut = model.with_rounds(25)
    assert cut.best_iteration == 25 and cut.estimator.tree_count_ == 25 and model.estimator.tree_count_ > 25
    from mlengineer.training.models.catboost import catboost_data

    expected = model.estimator.predict_proba(catboost_data(X, model.params["_categorical"]), ntree_end=25)
    np.testing.assert_allclose(cut.predict_raw(X), expected, rtol=0, atol=1e-9)

    logged, X = _fit("lightgbm", "regression", target_transform="log")
    cut = logged.with_rounds(20)
    assert type(cut).__name__ == "TransformedTargetModel" and cut.best_iteration == 20
    assert cut.fit_seconds == logged.fit_seconds > 0 and cut.family == "lightgbm" and logged.best_iteration > 20
    np.testing.assert_allclose(cut.predict_raw(X), np.exp(logged.inner.estimator.predict(X, num_iteration=20)),
                               rtol=1e-12)
    linear, _ = _fit("linear", "regression")
    assert linear.with_rounds(5) is None


def test_cut_to_limit_keeps_the_most_rounds_within_the_limit() -> None:
    folds = [_fit("lightgbm", "binary")[0] for _ in range(2)]
    asked: list[int] = []

    def measure(model, rounds: int) -> float:  # type: ignore[no-untyped-def]  # a fixed cost and 0.01 ms a tree
        asked.append(rounds)
        assert model.best_iteration == rounds
        return 0.02 + 0.01 * model.estimator.num_trees()

    full = max(m.best_iteration for m in folds)
    timed = 0.02 + 0.01 * full
    cut, ms, rounds = cut_to_limit(folds, 0.3, measure, timed)
    assert ms <= 0.3 and rounds <= 28 and rounds >= 20  # aimed at 90% of the limit, the fixed cost not shrinking
    assert asked[0] == int(full * 2 * 0.3 / timed) < full  # first as if the cut form answered twice as fast
    assert all(m.best_iteration <= rounds for m in cut)
    asked.clear()
    assert cut_to_limit(folds, 0.8 * timed, measure, timed)[2] < full and asked[0] == full  # that close: all first
    assert cut_to_limit(folds, 0.025, measure, timed) is None  # not even one round is fast enough
    assert cut_to_limit(folds, 100.0, measure, timed)[2] == full  # nothing to cut


def test_latency_is_the_median_over_rows_in_turn() -> None:
    seen: list[float] = []

    class Toy:
        def row_function(self):  # noqa: ANN202 - a toy model
            return lambda X: seen.append(float(X[0, 0])) or X[:, 0]

    rows = np.arange(16, dtype=np.float32).reshape(16, 1)
    assert latency_ms(Toy(), rows) >= 0
    assert seen == [0.0] + list(range(16))  # a warm-up call, then each row once, in turn


@pytest.mark.long
@pytest.mark.slow
def test_a_latency_limit_keeps_a_cut_booster_and_refits_it_with_no_more_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search's timing made exact (0.05 ms a tree) so the test asserts rounds, never a clock: with a 1 ms
    limit the boosters are cut to at most ~19 trees, scored again, kept, and the refit grows no more."""
    from mlengineer.training import evaluator
    from mlengineer.training.config import TrainConfig
    from mlengineer.training.trainer import fit_pipeline

    def trees_ms(model, rows, **_: object) -> float:  # type: ignore[no-untyped-def]
        inner = getattr(model, "inner", model)
        trees = inner.estimator.num_trees() if inner.family == "lightgbm" else 0
        best = inner.best_iteration or trees
        return 0.05 * min(trees, best)

    monkeypatch.setattr(evaluator, "latency_ms", trees_ms)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800), "c": rng.choice(list("xyz"), 800)})
    df["y"] = np.where(df["a"] + np.sin(3 * df["b"]) + (df["c"] == "x") + 0.3 * rng.normal(size=800) > 0.5, "p", "n")
    config = TrainConfig(target="y", time_budget=6, families=["lightgbm"], max_predict_ms_per_row=1.0, tune=False,
                         max_models=1)
    result = fit_pipeline(df, config)
    board = [r for r in result.leaderboard[1:] if r["status"] == "ok"]
    cut = [r for r in board if r["max_rounds"] is not None]
    assert cut and all(r["max_rounds"] <= 20 for r in cut)
    assert not any(r["status"].startswith("too slow") for r in result.leaderboard[1:])
    (_, member, _), = result.predictor.members
    assert member.estimator.num_trees() <= 20  # refit on all rows, no more rounds than the cut


def test_the_pipelines_share_of_a_row_is_timed_on_the_row_path(churn_model_dir, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The latency limit is the whole record's; the cleaning and encoding's share is taken off it as the
    bundle pays it: through the one-record path where the plan compiles to one (a table of 54 columns: 173 us
    by column arrays, 54 us by the row path), else by column arrays."""
    import mlengineer
    from mlengineer.data import row as row_module
    from mlengineer.training.trainer import pipeline_ms

    model = mlengineer.load(churn_model_dir)
    frame = pd.read_csv(Path(__file__).parent / "fixtures" / "churn_800.csv").drop(columns=["churn"]).iloc[:1]
    calls = []
    compile_row_cleaner = row_module.compile_row_cleaner

    def counted(plan):  # type: ignore[no-untyped-def]
        clean = compile_row_cleaner(plan)
        return None if clean is None else lambda record: calls.append(record) or clean(record)

    monkeypatch.setattr(row_module, "compile_row_cleaner", counted)
    assert pipeline_ms(model.plan, model.encoder, frame) > 0
    assert len(calls) == 6 and calls[0]["plan"] == frame["plan"].iloc[0]  # one try, five timed: the row path
    monkeypatch.setattr(row_module, "compile_row_cleaner", lambda plan: None)  # no row form: column arrays
    assert pipeline_ms(model.plan, model.encoder, frame) > 0
