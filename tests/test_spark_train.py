"""Training on a real local Spark session: an ordinary bundle comes out (it predicts, loads through MLflow
and needs no Spark), the models exported from MLlib and xgboost.spark are the models that were trained,
validation is computed on the cluster as the local metrics compute it, and the time budget stops boosting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from mlengineer.metrics import get_metric  # noqa: E402

from .spark_support import customers, spark_fixture, write_parts  # noqa: E402, F401

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def customers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parts(customers(5000), tmp_path_factory.mktemp("spark-train") / "customers", parts=4)


@pytest.fixture(scope="module")
def spark_churn_model(spark, customers_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                      tracking_uri: str) -> Path:
    """A churn model trained on Spark once for this module, tracked in MLflow."""
    from mlengineer.spark.train import train_spark

    out = tmp_path_factory.mktemp("spark-models") / "churn-spark"
    # a budget early stopping ends well within: both families train however busy the machine is
    train_spark(str(customers_dir), "churn", time_budget=400, out=out, tracking_uri=tracking_uri)
    return out


def _encoded(spark_session, df: pd.DataFrame, folder: Path, target: str):  # noqa: ANN202
    """The encoded table of ``df`` on the cluster, as train_spark builds it, and its driver sample."""
    from mlengineer.spark.prepare import encode_table, fit_preparation, split_column
    from mlengineer.spark.read import driver_sample, read_table
    from mlengineer.spark.stats import spark_schema, spark_task
    from mlengineer.training.config import TrainConfig

    frame = read_table(spark_session, str(write_parts(df, folder))).frame
    n = frame.count()
    sample = driver_sample(frame, n, 100_000)
    schema, stats = spark_schema(frame, sample, target)
    task = spark_task(frame, target, "auto", sample, stats)
    config = TrainConfig(target=target)
    plan, encoder = fit_preparation(sample, schema, config, [])
    valid, split = split_column(frame, config, n)
    table = encode_table(frame, plan, encoder, task, target, valid, split)
    X = encoder.transform(plan.apply(sample, training=True).drop(columns=[target]))
    return table, X


def test_spark_training_gives_an_ordinary_bundle(spark_churn_model: Path, customers_dir: Path) -> None:
    import mlengineer

    model = mlengineer.load(spark_churn_model)
    meta = model.metadata
    assert meta["engine"] == "spark" and meta["spark"]["rows"] == 5000 and meta.get("run_id")
    board = {r["model"]: r for r in meta["leaderboard"]}
    assert board["xgboost_spark"]["status"] == "ok" and board["xgboost_spark"]["family"] == "xgboost"
    assert board["linear_spark"]["status"] == "ok"
    assert meta["validation_score"] > 0.7 and "on Spark" in meta["split"]
    assert meta["data_fingerprint"]["rows"] == 5000
    requirements = (spark_churn_model / "requirements.txt").read_text()
    assert "pyspark" not in requirements
    df = pd.read_parquet(customers_dir)
    got = model.predict_frame(df.head(50), interval=0.9)
    assert set(got["prediction"]) <= {"yes", "no"} and "prediction_set" in got
    assert model.metadata["findings"] and any(f["column"] == "customer_id" for f in model.metadata["findings"])


def test_the_bundle_predicts_through_mlflow_without_spark(spark_churn_model: Path, customers_dir: Path,
                                                          tmp_path: Path) -> None:
    """In a fresh interpreter where importing pyspark fails, mlflow.pyfunc.load_model predicts as
    mlengineer.load does."""
    import mlengineer

    rows = pd.read_parquet(customers_dir).head(20).drop(columns=["churn"])
    rows.to_parquet(tmp_path / "rows.parquet")
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pyspark': raise ImportError('no spark here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import mlflow.pyfunc, pandas as pd\n"
        f"m = mlflow.pyfunc.load_model({str(spark_churn_model)!r})\n"
        f"out = m.predict(pd.read_parquet({str(tmp_path / 'rows.parquet')!r}))\n"
        f"out.to_parquet({str(tmp_path / 'out.parquet')!r})\n"
        "assert 'pyspark' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    expected = mlengineer.load(spark_churn_model).predict_frame(rows)
    got = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_allclose(got["proba_yes"], expected["proba_yes"], rtol=1e-9)


def test_cluster_metrics_equal_the_local_metrics(spark, tmp_path: Path) -> None:
    from mlengineer.spark.evaluate import metric_on_cluster, score_held_out
    from mlengineer.spark.xgb import train_xgboost

    table, _ = _encoded(spark, customers(3000, seed=3), tmp_path / "m", "churn")
    try:
        model = train_xgboost(table, params=None, seconds=60, num_workers=2, seed=0)
        scored = score_held_out(table, model)
        local = scored.toPandas()
        y, raw = local["__label"].to_numpy(), local[["p0", "p1"]].to_numpy()
        for name in ("roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "f1_macro", "brier"):
            metric = get_metric(name, "binary")
            assert metric_on_cluster(scored, metric, table.task) == pytest.approx(metric(y, raw), abs=1e-9), name
    finally:
        table.frame.unpersist()


def test_mllib_logistic_regression_is_exported_as_the_model_scikit_learn_would_fit(spark, tmp_path: Path) -> None:
    """The penalty and the one-hot vectors translated right: MLlib's fit, carried by the linear family's
    model, predicts what scikit-learn's LogisticRegression fitted on the same rows predicts."""
    from sklearn.linear_model import LogisticRegression

    from mlengineer.spark.linear import train_linear

    table, X_sample = _encoded(spark, customers(3000, seed=4), tmp_path / "l", "churn")
    try:
        model = train_linear(table, X_sample, max_iter=200)
        rows = table.frame.where("NOT __valid").toPandas()
    finally:
        table.frame.unpersist()
    prep = model.estimator[0]
    X = rows[table.feature_columns].to_numpy(dtype=np.float32)
    reference = LogisticRegression(C=1.0, max_iter=2000, tol=1e-10).fit(prep.transform(X), rows["__label"])
    np.testing.assert_allclose(model.predict_raw(X)[:, 1], reference.predict_proba(prep.transform(X))[:, 1],
                               atol=2e-3)


def test_the_time_budget_stops_boosting(spark, tmp_path: Path) -> None:
    from mlengineer.spark.xgb import MIN_ROUNDS, train_xgboost

    table, _ = _encoded(spark, customers(2000, seed=5), tmp_path / "t", "churn")
    try:
        model = train_xgboost(table, params={"eta": 0.001, "max_depth": 3}, seconds=0.0, num_workers=2, seed=0)
    finally:
        table.frame.unpersist()
    assert model.stopped_by_time and model.rounds_run == MIN_ROUNDS


def test_regression_on_spark_with_ranges(spark, tmp_path: Path, salaries_csv: Path) -> None:
    from mlengineer.spark.train import train_spark

    model = train_spark(str(salaries_csv), "salary_in_usd", time_budget=400, track=False,
                        drop=["salary", "salary_currency"])
    assert model.task.kind == "regression" and model.metadata["metric"] == "rmse"
    scores = {r["model"]: r["score"] for r in model.metadata["leaderboard"]}
    assert all(s > 0 for s in scores.values()) and model.metadata["validation_score"] == min(scores.values())
    out = model.predict_frame(pd.read_csv(salaries_csv).head(100), interval=0.8)
    assert (out["lower"] <= out["prediction"]).all() and (out["prediction"] <= out["upper"]).all()


def test_plan_counts_come_from_every_row(spark, tmp_path: Path) -> None:
    """Values unreadable as numbers and rows without a target are counted over all rows, by the plan's own
    steps, even when the driver's sample held none of them."""
    from mlengineer.data.clean import fit_cleaning_plan
    from mlengineer.spark.prepare import plan_counts
    from mlengineer.spark.read import read_table

    df = customers(1000)
    df["monthly_fee"] = df["monthly_fee"].map(lambda v: None if v != v else f"{v:,.2f}").astype(object)
    df.loc[990:, "monthly_fee"] = "n/a?"
    df.loc[980:985, "churn"] = None
    frame = read_table(spark, str(write_parts(df, tmp_path / "p"))).frame
    sample = df.iloc[:900]
    schema = infer_schema_of(sample)
    plan = fit_cleaning_plan(sample, schema)
    plan_counts(frame, plan, "churn")
    local = fit_cleaning_plan(df, infer_schema_of(df))
    assert plan.describe()[0]["rows_changed"] == local.describe()[0]["rows_changed"] == 6
    assert plan.describe()[-1]["details"] == local.describe()[-1]["details"] == {"monthly_fee": 10}


def infer_schema_of(df: pd.DataFrame):  # noqa: ANN201
    from mlengineer.data.schema import infer_schema

    return infer_schema(df, "churn")


def test_a_large_table_is_described_from_a_sample_within_the_budget(spark, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Over STATS_ROWS rows, the statistics and the audit come from a random sample of the table (said in a
    finding, repeats not counted) while what a sample cannot give is counted over every row: the rows,
    the data fingerprint, the rows without a target, the target's classes, even one seen in 2 rows."""
    import mlengineer.spark.train as spark_train
    from mlengineer.spark.read import driver_sample, read_table
    from mlengineer.spark.stats import spark_schema

    df = customers(3000, seed=11)
    df["monthly_fee"] = df["monthly_fee"].map(lambda v: None if v != v else f"{v:.2f}").astype(object)
    df.loc[2900:, "monthly_fee"] = "n/a?"
    df.loc[10:32, "churn"] = None
    df.loc[40:41, "churn"] = "paused"  # a class a 20% sample may well miss
    folder = write_parts(df, tmp_path / "big", parts=3)
    monkeypatch.setattr(spark_train, "STATS_ROWS", 600)
    model = spark_train.train_spark(str(folder), "churn", time_budget=60, track=False, families=["linear"])
    meta = model.metadata
    assert meta["spark"]["rows"] == 3000 and 300 < meta["spark"]["statistics_rows"] < 1000
    checks = {f["check"]: f for f in meta["findings"]}
    assert "sampled_audit" in checks and "of the 3,000 rows" in checks["sampled_audit"]["message"]
    assert "duplicate_rows" not in checks
    assert checks["missing_target"]["value"] == 23
    steps = {s["step"]: s for s in model.plan.describe()}
    assert steps["drop_missing_target"]["rows_changed"] == 23
    assert 40 <= steps["conform"]["details"]["monthly_fee"] <= 200 and "about" in steps["conform"]["summary"]
    assert set(model.task.classes) == {"no", "yes", "paused"}
    frame = read_table(spark, str(folder)).frame
    _, every = spark_schema(frame, driver_sample(frame, 3000, 3000), "churn", fingerprint=True)
    assert meta["data_fingerprint"] == every.data_fingerprint(list(frame.columns))
