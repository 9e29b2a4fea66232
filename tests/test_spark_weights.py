"""Row weights on Spark (``train_spark(..., weight_column=)``, ``--engine spark --weight-column``): the weights are
checked in the same words as in memory, both Spark learners fit with them, the held-out metrics count them as
``Metric(y, raw, weights)`` does, and the bundle never asks for the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from mlengineer.errors import DataError  # noqa: E402
from mlengineer.metrics import METRICS  # noqa: E402

from .spark_support import spark_fixture, write_parts  # noqa: E402, F401
from .test_weights import PROBE, _conflict, _slope  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _memory_error(df: pd.DataFrame, **options: object) -> str:
    """The one line in-memory training refuses ``df`` with (it fails before any model is fitted), in the words
    the commands share (``mlengineer.train``'s name its Python arguments instead)."""
    from mlengineer.pipeline.run import train

    with pytest.raises(ValueError) as e:
        train(df, "y", time_budget=3, families=["linear"], track=False, **{"weight_column": "w", **options})
    return str(e.value)


def _bad(case: str) -> pd.DataFrame:
    """A table of 60 rows in three parts whose weights are wrong one way, the first bad row in the second part."""
    df = _conflict(n=60)
    df.loc[1, "y"] = np.nan  # a row without a target: its weight is never read, whatever it holds
    if case == "text":
        df["w"] = df["w"].map(lambda v: f"{v:g}").astype(object)
        df.loc[[1, 25, 33], "w"] = ["rubbish", "heavy", "light"]
    elif case == "zero":
        df["w"] = 0.0
    else:
        df.loc[[1, 25, 33], "w"] = {"missing": np.nan, "infinite": np.inf, "negative": -1.0}[case]
    return df


def test_bad_weights_on_spark_are_the_same_line_as_in_memory(spark, tmp_path: Path) -> None:
    from mlengineer.data.clean import fit_cleaning_plan
    from mlengineer.data.schema import infer_schema
    from mlengineer.spark.prepare import check_weights
    from mlengineer.spark.read import read_table

    for case in ("text", "missing", "infinite", "negative", "zero"):
        df = _bad(case)
        frame = read_table(spark, str(write_parts(df, tmp_path / case, parts=3))).frame
        plan = fit_cleaning_plan(df, infer_schema(df, "y"))
        with pytest.raises(DataError) as e:
            check_weights(frame, "w", plan, "y")
        assert str(e.value) == _memory_error(df), case
    assert "(the first: row 26, 'heavy')" in _memory_error(_bad("text"))  # row 2 has no target
    good = _conflict(n=60).assign(w=lambda d: d["w"].map(lambda v: f" {v:g}"))  # numbers written as text
    frame = read_table(spark, str(write_parts(good, tmp_path / "good"))).frame
    plan = fit_cleaning_plan(good, infer_schema(good, "y"))
    got = frame.select(check_weights(frame, "w", plan, "y").alias("w")).toPandas()["w"]
    assert got.tolist() == good["w"].astype(float).tolist()


def test_spark_training_refuses_bad_weights_before_any_fit(spark, tmp_path: Path) -> None:
    from mlengineer.spark.train import train_spark

    df = _bad("missing")
    folder = str(write_parts(df, tmp_path / "rows", parts=3))
    out = tmp_path / "model"
    with pytest.raises(DataError) as e:
        train_spark(folder, "y", weight_column="w", time_budget=60, out=out, track=False)
    assert str(e.value) == _memory_error(df) and "no value in 2 of the 59 rows" in str(e.value)
    assert not out.exists()
    for column, words in (("nope", "is not in the data"), ("y", "is the target")):
        with pytest.raises(DataError, match=words) as e:
            train_spark(folder, "y", weight_column=column, time_budget=60, track=False)
        assert str(e.value) == _memory_error(df, weight_column=column)


def _scored(spark, task_kind: str, seed: int = 0):  # noqa: ANN202
    """Held-out rows as ``score_held_out`` gives them (label, weight, raw output), with their numpy forms."""
    from mlengineer.spark.prepare import LABEL, WEIGHT

    rng = np.random.default_rng(seed)
    n = 300
    w = np.where(rng.random(n) < 0.2, 0.0, rng.gamma(2.0, 1.0, n))
    if task_kind == "regression":
        y = rng.normal(3, 2, n)
        raw = y + rng.normal(0, 1, n) * np.where(w > 1, 0.2, 2.0)  # the heavy rows are the well predicted ones
        pdf = pd.DataFrame({LABEL: y, WEIGHT: w, "pred": raw})
    else:
        k = 2 if task_kind == "binary" else 3
        y = rng.integers(0, k, n)
        logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y] * (w > 1)[:, None]
        raw = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        pdf = pd.DataFrame({LABEL: y.astype(np.int32), WEIGHT: w, **{f"p{i}": raw[:, i] for i in range(k)}})
    return spark.createDataFrame(pdf), y, raw, w


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_held_out_metrics_on_spark_are_the_weighted_metrics(spark, kind: str) -> None:
    from mlengineer.spark.evaluate import metric_on_cluster
    from mlengineer.spark.prepare import WEIGHT
    from mlengineer.tasks import make_task

    scored, y, raw, w = _scored(spark, kind)
    task = make_task(pd.Series(y), kind)
    for name, metric in METRICS.items():
        if kind not in metric.tasks:
            continue
        weighted = metric_on_cluster(scored, metric, task)
        assert weighted == pytest.approx(metric(y, raw, w), rel=1e-9, abs=1e-12), name
        # the weights count: the same rows unweighted score otherwise
        assert weighted != pytest.approx(metric_on_cluster(scored.drop(WEIGHT), metric, task), rel=1e-3), name
    if kind == "regression":  # a mean of a billion beside a spread of 2: R²'s one pass loses nothing
        far = scored.withColumns({"__label": scored["__label"] + 1e9, "pred": scored["pred"] + 1e9})
        assert metric_on_cluster(far, METRICS["r2"], task) == pytest.approx(METRICS["r2"](y, raw, w), rel=1e-6)


def _encoded(spark, df: pd.DataFrame, folder: Path, weight: str | None):  # noqa: ANN202
    """The encoded table of ``df`` as train_spark builds it (weights checked and carried), and its driver sample."""
    from mlengineer.spark.prepare import check_weights, encode_table, fit_preparation, split_column
    from mlengineer.spark.read import driver_sample, read_table
    from mlengineer.spark.stats import spark_schema, spark_task
    from mlengineer.training.config import TrainConfig

    frame = read_table(spark, str(write_parts(df, folder))).frame
    n = frame.count()
    sample = driver_sample(frame, n, 100_000)
    schema, stats = spark_schema(frame, sample, "y")
    task = spark_task(frame, "y", "auto", sample, stats)
    config = TrainConfig(target="y", weight_column=weight)
    plan, encoder = fit_preparation(sample, schema, config, [])
    if weight is not None:
        frame = frame.withColumn(weight, check_weights(frame, weight, plan, "y"))
    valid, split = split_column(frame, config, n)
    table = encode_table(frame, plan, encoder, task, "y", valid, split, weight=weight)
    X = encoder.transform(plan.apply(sample, training=True).drop(columns=["y"]))
    return table, X, encoder


def _fall(model: object, probe: np.ndarray) -> float:
    """As ``_slope``, for a fitted family's model on the encoded probe rows."""
    pred = np.asarray(model.predict_raw(probe), dtype=float)  # type: ignore[attr-defined]
    return float(pred[0] - pred[1])


def test_both_spark_learners_fit_by_the_weights(spark, tmp_path: Path) -> None:
    """The heavy half says y = -x, the other half (weight 0) y = +x: weighted, both learners follow the heavy
    half, and the booster, watching the held-out rows' weighted loss, runs many rounds (watching the unweighted
    loss, it stops after a round or two); unweighted, the linear model answers about 0 everywhere."""
    from mlengineer.spark.linear import train_linear
    from mlengineer.spark.xgb import train_xgboost

    df = _conflict()
    table, X, encoder = _encoded(spark, df, tmp_path / "weighted", "w")
    try:
        assert "w" not in encoder.feature_names_ and table.weight_train + table.weight_valid == pytest.approx(
            df["w"].sum())
        probe = encoder.transform(PROBE)
        assert _fall(train_linear(table, X), probe) > 1.1
        booster = train_xgboost(table, params=None, seconds=60, num_workers=1, seed=0)
        assert _fall(booster, probe) > 1.0 and booster.best_iteration >= 10, booster.best_iteration
    finally:
        table.frame.unpersist()
    plain, X, encoder = _encoded(spark, df.drop(columns=["w"]), tmp_path / "plain", None)
    try:
        probe = encoder.transform(PROBE)
        assert abs(_fall(train_linear(plain, X), probe)) < 0.3
    finally:
        plain.frame.unpersist()


def test_spark_training_with_weights_gives_a_weighted_bundle(spark, tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.spark.train import train_spark

    df = _conflict(light=1 / 9)
    folder = str(write_parts(df, tmp_path / "rows", parts=2))
    out = tmp_path / "model"
    train_spark(folder, "y", weight_column="w", time_budget=120, out=out, track=False)
    model = mlengineer.load(out)
    meta = model.metadata
    assert meta["weight_column"] == "w" and meta["engine"] == "spark"
    assert "on Spark" in meta["split"] and meta["split"].endswith("; rows and scores weighted by 'w'")
    assert meta["leaderboard"][0]["params"]["weighted_by"] == "w"
    assert "w" not in model.feature_names and not any(f["column"] == "w" for f in meta["findings"])
    assert model.validation["weight"].shape == model.validation["y"].shape
    assert set(np.unique(model.validation["weight"])) <= {1.0, 1 / 9}
    assert _slope(model) > 1.0  # predicts without the column, following the heavy rows
    got = model.predict_frame(df.head(5))  # rows that hold the column: ignored
    assert len(got) == 5


def _rare(n: int = 2000) -> pd.DataFrame:
    """One positive row in about eight, more likely as x grows; weights 1 or 3 on a second column."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=n)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-(2 * x - 3))), "yes", "no")
    return pd.DataFrame({"x": x, "w": rng.choice([1.0, 3.0], n), "y": y})


def test_a_balanced_metric_makes_the_spark_fits_weigh_each_class_alike(spark, tmp_path: Path) -> None:
    """As in memory (``training.weights.class_weights``): each training row's weight (or 1) times its class's factor,
    so that a linear model fitted for balanced accuracy puts the rare class's rows at about even odds."""
    import mlengineer
    from mlengineer.spark.linear import train_linear
    from mlengineer.spark.prepare import FIT_WEIGHT, LABEL, VALID, WEIGHT, balance_classes
    from mlengineer.spark.train import train_spark
    from mlengineer.training.weights import class_weights

    df = _rare()
    rare_rows = df.loc[df["y"] == "yes"].drop(columns=["y", "w"])
    for weight in ("w", None):
        table, X, encoder = _encoded(spark, df if weight else df.drop(columns=["w"]), tmp_path / str(weight), weight)
        try:
            plain = train_linear(table, X)
            factors = balance_classes(table)
            got = table.frame.where(~table.frame[VALID]).select(LABEL, FIT_WEIGHT, *([WEIGHT] if weight else [])
                                                               ).toPandas()
            y = got[LABEL].to_numpy()
            user = got[WEIGHT].to_numpy() if weight else None
            np.testing.assert_allclose(got[FIT_WEIGHT], class_weights(y, 2, user))
            assert factors[1] > 3 * factors[0]
            balanced = train_linear(table, X)
            probe = encoder.transform(rare_rows)
            assert plain.predict_raw(probe)[:, 1].mean() < 0.4 < balanced.predict_raw(probe)[:, 1].mean()
        finally:
            table.release()
    out = tmp_path / "model"
    train_spark(str(write_parts(df.drop(columns=["w"]), tmp_path / "rows")), "y", metric="balanced_accuracy",
                families=["linear"], time_budget=60, out=out, track=False)
    assert mlengineer.load(out).predict_proba(rare_rows)["yes"].mean() > 0.4
