"""What new users found in the eighth round, mended: a regression target written as people write money
('$52,551', '120,000', '18.1%') is read as numbers at training and at evaluation, as a feature column is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import DataError
from mlengineer.evaluation.evaluate import evaluate
from mlengineer.tasks import infer_task_kind, make_task


def test_a_target_written_with_currency_or_thousands_separators_is_a_regression() -> None:
    values = [50_000 + 997 * i for i in range(30)]
    for written, unit in (([f"${v:,}" for v in values], " (with $)"), ([f"{v:,}" for v in values], ""),
                          ([f"{v / 1000:.1f}%" for v in values], " (with %)")):
        y = pd.Series(written, dtype=object)
        assert infer_task_kind(y) == ("regression", "the target holds numbers written as text" + unit)
        task = make_task(y)
        assert task.kind == "regression"
        expected = np.asarray(values, dtype=float) / (1000 if unit == " (with %)" else 1)
        np.testing.assert_allclose(task.encode(y), np.round(expected, 1))
    # a text that is no number is named, not a bare "it holds text"
    with pytest.raises(DataError, match=r"text such as 'about 50k'"):
        make_task(pd.Series(["$1,000"] * 5 + ["$2,000"] * 5), "regression").encode(pd.Series(["$1,000", "about 50k"]))


def test_a_model_of_a_dollar_target_trains_and_is_evaluated_on_the_same_writing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    salary = 60_000 + 9_000 * x + rng.normal(size=300) * 6_000
    frame = pd.DataFrame({"x": x, "salary": [f"${v:,.0f}" for v in salary]})
    frame.to_csv(tmp_path / "pay.csv", index=False)
    model = mlengineer.train(str(tmp_path / "pay.csv"), "salary", time_budget=2, families=["linear"], track=False)
    assert model.task.kind == "regression"
    result = evaluate(model, pd.read_csv(tmp_path / "pay.csv"), n_boot=20)
    rmse = float(np.sqrt(np.mean((np.asarray(model.predict(frame)) - np.round(salary)) ** 2)))
    assert result["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-6)


def test_ranges_and_sets_of_few_calibration_rows_are_graded_at_what_they_can_promise() -> None:
    """Ten calibration rows cannot promise 90% ranges (at most 9/11): evaluate graded the widest error seen as
    if it were the 90% quantile. It now grades them at the most they promise, rounded down (81%)."""
    from mlengineer.evaluation.evaluate import evaluate_predictions
    from mlengineer.evaluation.intervals import ConformalClassifier, ConformalRegressor
    from mlengineer.tasks import RegressionTask

    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=10), rng.normal(size=10)
    conformal = ConformalRegressor().fit(y, pred)
    result = evaluate_predictions(RegressionTask(), y, pred, n_boot=10, conformal=conformal)
    assert result["uncertainty"]["coverage_target"] == 0.81
    many = ConformalRegressor().fit(rng.normal(size=40), rng.normal(size=40))
    assert evaluate_predictions(RegressionTask(), y, pred, n_boot=10, conformal=many)["uncertainty"][
        "coverage_target"] == 0.9
    task = make_task(pd.Series(["a", "b", "c"] * 3))
    labels = np.array([0, 1, 2, 0, 1])
    proba = rng.dirichlet(np.ones(3), size=5)
    sets = ConformalClassifier().fit(labels, proba)  # 5 rows promise sets of at most 5/6
    assert evaluate_predictions(task, labels, proba, n_boot=10, conformal=sets)["uncertainty"][
        "coverage_target"] == 0.83
    one = ConformalRegressor().fit(y[:1], pred[:1])  # one row promises nothing: not graded
    assert "uncertainty" not in evaluate_predictions(RegressionTask(), y, pred, n_boot=10, conformal=one)


def test_monitoring_reads_times_of_day_as_training_does_and_never_as_today() -> None:
    """A monitored feed's times of day are their seconds since midnight, as the cleaning plan reads them (they
    counted as unreadable), and a --time-column of times alone is refused, not completed with today's date."""
    from mlengineer.data.clock import TIME_OF_DAY
    from mlengineer.monitoring.columns import prepare
    from mlengineer.monitoring.current import as_times

    prepared = prepare(pd.Series(["08:30:00", "8:30", None, "23:59:59"]), "numeric", TIME_OF_DAY, name="tod")
    np.testing.assert_array_equal(prepared.values[[0, 1, 3]], [30600.0, 30600.0, 86399.0])
    assert np.isnan(prepared.values[2])
    with pytest.raises(DataError, match="does not hold dates or times"):
        as_times(pd.Series(["08:30:00", "09:00:00", "10:15:00"]), "tod", "feed.csv")
    stamps = as_times(pd.Series(["2026-11-01 08:30:00", "09:00:00", "2026-11-02 10:15:00"]), "ts", "feed.csv")
    assert stamps.isna().tolist() == [False, True, False]


def test_infinity_at_prediction_is_refused_on_every_door_as_the_server_refuses_it(tmp_path: Path) -> None:
    """A file with 'inf' in a number column crashed predict with scikit-learn's traceback (exit 1) for a forest,
    and the Python API answered for it; the server refused it with a 422. Now every door refuses it in one line."""
    from mlengineer.errors import SchemaError
    from mlengineer.serving.batch import predict_to_file

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    frame["y"] = 3 * frame["x"] + (frame["c"] == "a") + rng.normal(size=200) * 0.1
    model = mlengineer.train(frame, "y", time_budget=2, families=["linear"], track=False)
    rows = frame.drop(columns="y").head(5).assign(x=[0.5, np.inf, 1.0, -np.inf, 2.0])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(SchemaError, match=r"Column 'x' holds infinity in 2 rows: send a finite number"):
        predict_to_file(model, tmp_path / "rows.csv", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    for sent in ({"x": float("inf"), "c": "a"}, [{"x": "-inf", "c": "b"}], rows.iloc[[1]]):
        with pytest.raises(SchemaError, match="holds infinity"):
            model.predict(sent)
    assert np.isfinite(model.predict(rows.iloc[[0, 2, 4]])).all()


@pytest.mark.long
def test_every_command_that_takes_a_model_takes_a_run_id_or_a_registered_name(
        churn_model_dir: Path, churn_csv: Path, tracking_uri: str, tmp_path: Path) -> None:
    """predict, evaluate, explain and report took only a folder (a run id was 'Model ... does not exist'), while
    compare and monitor took run ids: one opener now serves them all, the registry's digest checked."""
    from mlengineer.tracking.registry import register

    from .conftest import run_cli

    run_id = mlengineer.load(churn_model_dir).metadata["run_id"]
    register(churn_model_dir, "churn-any-door", tracking_uri=tracking_uri)
    rows = pd.read_csv(churn_csv).head(40)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    for spec in (run_id, "models:/churn-any-door/1"):
        r = run_cli("predict", spec, str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv"),
                    "--tracking-uri", tracking_uri)
        assert r.returncode == 0, r.stdout + r.stderr
        assert len(pd.read_csv(tmp_path / "p.csv")) == 40
    r = run_cli("evaluate", "models:/churn-any-door/1", str(tmp_path / "rows.csv"), "--json", "--tracking-uri",
                tracking_uri)
    assert r.returncode == 0 and '"n_rows": 40' in r.stdout, r.stdout + r.stderr
    r = run_cli("calibrate", run_id, "--tracking-uri", tracking_uri)  # the store's copy is never changed
    assert r.returncode == 2 and "pass --out FOLDER" in r.stderr, r.stdout + r.stderr
