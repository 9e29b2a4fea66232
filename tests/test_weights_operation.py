"""Operating a model trained with ``--weight-column``: the server and monitoring never treat the weight column as
an input, and monitoring's realised metrics count each labelled row by its weight where the rows (or their
outcomes) hold the column, as ``evaluate`` does (``--no-weights``: each row once); the estimates, the reference
and the alarms count every row once, like for like."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from .conftest import run_cli
from .test_errors import assert_clean_failure
from .test_weights import _conflict


@pytest.fixture(scope="module")
def weighted_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bundle trained with --weight-column w, and a labelled table of new rows that holds the weights."""
    import mlengineer

    folder = tmp_path_factory.mktemp("weights-operation")
    _conflict(light=0.1).to_csv(folder / "rows.csv", index=False)
    # trained in process, as `train --weight-column w` does (that command's own tests: test_weights.py)
    mlengineer.train(folder / "rows.csv", "y", weight_column="w", track=False, out=folder / "heavy-model",
                     time_budget=4, families=["linear"])
    test = _conflict(n=300, light=0.1, seed=9)
    test.insert(0, "id", np.arange(len(test)))
    test.to_csv(folder / "test.csv", index=False)
    return folder / "heavy-model", folder / "test.csv"


def test_realised_metrics_take_row_weights() -> None:
    """Each realised metric with weights is scikit-learn's weighted metric; without them, as it always was."""
    from mlengineer.monitoring.estimate import realised

    rng = np.random.default_rng(3)
    n = 300
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0.01, 0.99)
    raw = np.column_stack([1 - p1, p1])
    d = (p1 >= 0.5).astype(np.int64)
    w = rng.exponential(size=n) * (rng.uniform(size=n) > 0.2)
    expected = {"accuracy": skm.accuracy_score(y, d, sample_weight=w),
                "roc_auc": skm.roc_auc_score(y, p1, sample_weight=w), "log_loss": skm.log_loss(y, raw, sample_weight=w),
                "brier": skm.brier_score_loss(y, p1, sample_weight=w), "f1": skm.f1_score(y, d, sample_weight=w),
                "balanced_accuracy": skm.balanced_accuracy_score(y, d, sample_weight=w),
                "f1_macro": skm.f1_score(y, d, average="macro", sample_weight=w)}
    for name, value in expected.items():
        got = realised(name, y, raw, d=d, weights=w)
        assert got.value == pytest.approx(value, rel=1e-9), name
        assert got.low <= got.value <= got.high and "weights" in got.method
        assert realised(name, y, raw, d=d).value != pytest.approx(value, rel=1e-6), name  # the weights count
    t = rng.normal(3, 1, n)
    pred = t + rng.normal(0, 0.5, n)
    assert realised("rmse", t, pred, weights=w).value == pytest.approx(
        np.sqrt(skm.mean_squared_error(t, pred, sample_weight=w)))
    assert realised("mae", t, pred, weights=w).value == pytest.approx(skm.mean_absolute_error(t, pred, sample_weight=w))
    assert realised("r2", t, pred, weights=w).value == pytest.approx(skm.r2_score(t, pred, sample_weight=w))


@pytest.mark.long
@pytest.mark.slow
def test_monitor_weighs_realised_metrics_as_evaluate_does(weighted_model: tuple[Path, Path], tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.evaluation.evaluate import evaluate
    from mlengineer.monitoring.run import monitor_model

    path, test = weighted_model
    rows = pd.read_csv(test)
    model = mlengineer.load(path)
    weighted = evaluate(model, rows.drop(columns=["id"]))["metrics"]["rmse"]
    plain = evaluate(model, rows.drop(columns=["id"]), weights=False)["metrics"]["rmse"]
    _, result = monitor_model(model, data=str(test))
    perf = result["performance"]
    assert perf["weighted_by"] == "w"
    assert perf["metrics"]["rmse"]["realised"]["value"] == pytest.approx(weighted)
    assert perf["metrics"]["rmse"]["realised_every_row"]["value"] == pytest.approx(plain)
    # the weight column is no input: not tested for drift, not an unknown column
    assert "w" not in [c["column"] for c in result["drift"]["columns"]]
    assert result["quality"]["unknown_columns"] == ["id"]  # the key is unknown; the weight column is not
    assert "w" not in [c["column"] for c in result["quality"]["columns"]]
    # the weights may come with the outcomes (--labels) rather than with the rows
    rows.drop(columns=["y", "w"]).to_csv(tmp_path / "new.csv", index=False)
    rows[["id", "y", "w"]].to_csv(tmp_path / "outcomes.csv", index=False)
    _, joined = monitor_model(model, data=str(tmp_path / "new.csv"), labels=str(tmp_path / "outcomes.csv"), key="id")
    assert joined["performance"]["weighted_by"] == "w"
    assert joined["performance"]["metrics"]["rmse"]["realised"]["value"] == pytest.approx(weighted)
    # rows and outcomes without the column: every row once, and said so
    rows.drop(columns=["w"]).to_csv(tmp_path / "unweighed.csv", index=False)
    _, bare = monitor_model(model, data=str(tmp_path / "unweighed.csv"))
    assert bare["performance"]["weighted_by"] is None
    assert bare["performance"]["metrics"]["rmse"]["realised"]["value"] == pytest.approx(plain)
    assert "realised_every_row" not in bare["performance"]["metrics"]["rmse"]

    shown = " ".join(run_cli("monitor", str(path), "--data", str(test)).stdout.split())
    assert "counted by its weight in 'w'" in shown and "realised (weighted by 'w')" in shown
    r = run_cli("monitor", str(path), "--data", str(test), "--no-weights", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["performance"]["metrics"]["rmse"]["realised"]["value"] == pytest.approx(plain)
    rows.loc[4, "w"] = -1.0
    rows.to_csv(tmp_path / "bad.csv", index=False)
    assert_clean_failure(run_cli("monitor", str(path), "--data", str(tmp_path / "bad.csv")),
                         "'w'", "negative", "--no-weights")


@pytest.mark.slow
def test_served_rows_with_the_weight_column_are_neither_refused_nor_logged(weighted_model: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    """Every route answers the same with and without the weight column; the schema, the log and /metrics never
    name it. (This worked before; kept so it stays so.)"""
    import httpx

    from .test_serve_basic import running_server

    path, test = weighted_model
    rows = pd.read_csv(test).head(40).drop(columns=["y", "id"])
    answers: list[list[object]] = []
    with running_server(path, "--prediction-log", str(tmp_path / "log"), cwd=tmp_path) as server:
        for frame in (rows.drop(columns=["w"]), rows):
            recs = frame.to_dict(orient="records")
            got = [httpx.post(f"{server.url}/predict", json={"records": recs}),
                   httpx.post(f"{server.url}/invocations", json={"dataframe_records": recs}),
                   httpx.post(f"{server.url}/v2/models/{path.name}/infer", json={"inputs": [
                       {"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
                       for c in frame.columns]})]
            assert [a.status_code for a in got] == [200, 200, 200], [a.text for a in got]
            answers.append([a.json().get("predictions") or a.json()["outputs"][0]["data"] for a in got])
        assert '"w"' not in httpx.get(f"{server.url}/openapi.json").text
        assert [i["name"] for i in httpx.get(f"{server.url}/v2/models/{path.name}").json()["inputs"]] == ["x", "z"]
        assert 'column="w"' not in httpx.get(f"{server.url}/metrics").text
    assert answers[0] == answers[1]
    logged = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "log").rglob("*.parquet"))])
    assert len(logged) == 6 * len(rows) and "w" not in logged.columns


def test_a_window_whose_labelled_rows_all_weigh_0_counts_them_once(weighted_model: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.monitoring.run import monitor_model

    path, test = weighted_model
    rows = pd.read_csv(test)
    rows["day"] = np.where(np.arange(len(rows)) < 150, "2026-01-01", "2026-01-02")
    rows.loc[:149, "w"] = 0.0  # the first day's rows weigh nothing
    rows.to_csv(tmp_path / "days.csv", index=False)
    _, result = monitor_model(mlengineer.load(path), data=str(tmp_path / "days.csv"), time_column="day", window="1d")
    first, second = (w["performance"] for w in result["windows"])
    assert first["weighted_by"] is None and "realised_every_row" not in first["metrics"]["rmse"]
    assert np.isfinite(first["metrics"]["rmse"]["realised"]["value"])
    assert second["weighted_by"] == "w" and result["performance"]["weighted_by"] == "w"
