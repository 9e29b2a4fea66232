"""Operating a served model, as an operator meets it (the ops exploration's findings 1-9): infinite numbers are
unreadable values for ``monitor``, not a traceback; a request id the log holds twice (a retry) joins its outcome
to one row; outcomes that match no row, and rows of other models, are counted in a note; ``retrain`` refuses
newest rows its metric cannot score before training, and a failure after training leaves no finished run and
no temporary folder; an OIP request's ``id`` keys the log; windows report their bounds, weeks from Monday;
reports name the registered model and version; the unseen-category counters name the model and count rows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import DataError
from mlengineer.monitoring.run import load_current, monitor_model

from .conftest import run_cli
from .test_monitoring_mends2 import _log, _rows
from .test_serve_basic import running_server

pytestmark = [pytest.mark.slow, pytest.mark.long]  # make test-long: CI time


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random forest (which refuses infinite inputs) on 1,500 rows of x1, x2, x3 and cat in {a, b, c}."""
    out = tmp_path_factory.mktemp("ops") / "ops-model"
    mlengineer.train(_rows(1500, 0), "y", out=out, track=False, time_budget=4, families=["random_forest"],
                     tune=False)
    return out


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict(orient="records")]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}


@pytest.fixture(scope="module")
def served(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real server's log: 40 requests of 2 rows (ids q0, q1, ...); q3 sent again as a retry (same rows);
    'shared' sent twice with other rows; two OIP requests, one keyed by its body id only, one by a header
    too; two requests of 10 rows, 3 of each holding the category 'zz' the model never saw."""
    folder = tmp_path_factory.mktemp("ops-served")
    rows = _rows(200, 7)[["x1", "x2", "x3", "cat"]]
    answers: dict[str, Any] = {}
    with running_server(model_dir, "--prediction-log", str(folder / "log"), cwd=folder) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as c:
        for i in range(40):
            r = c.post("/predict", json={"records": _records(rows.iloc[2 * i:2 * i + 2])}, headers={"x-request-id": f"q{i}"})
            assert r.status_code == 200, r.text
        assert c.post("/predict", json={"records": _records(rows.iloc[6:8])}, headers={"x-request-id": "q3"}).is_success
        for start in (100, 110):
            assert c.post("/predict", json={"records": _records(rows.iloc[start:start + 1])},
                          headers={"x-request-id": "shared"}).is_success
        meta = c.get("/v2/models/ops-model").json()
        one = rows.iloc[150]
        inputs = [{"name": i["name"], "shape": [1], "datatype": i["datatype"], "data": [one[i["name"]]]}
                  for i in meta["inputs"]]
        answers["oip"] = c.post("/v2/models/ops-model/infer", json={"id": "order-77", "inputs": inputs})
        answers["oip_header"] = c.post("/v2/models/ops-model/infer", json={"id": "body-9", "inputs": inputs},
                                       headers={"x-request-id": "hdr-9"})
        answers["oip_accent"] = c.post("/v2/models/ops-model/infer", json={"id": "commande-é", "inputs": inputs})
        for start in (160, 170):
            batch = rows.iloc[start:start + 10].copy()
            batch.iloc[:3, batch.columns.get_loc("cat")] = "zz"
            assert c.post("/predict", json={"records": _records(batch)}).is_success
        answers["metrics"] = c.get("/metrics").text
    return {"log": folder / "log", "rows": rows, "folder": folder, **answers}


# -- 1. infinite numbers ---------------------------------------------------------------------------------------
def test_infinite_numbers_are_unreadable_values_and_monitor_exits_0(model_dir: Path, tmp_path: Path) -> None:
    """Before: the forest's predict_proba raised "Input X contains infinity" through a traceback, exit 1 (the
    status --fail-on uses for an alarm)."""
    from mlengineer.monitoring.columns import conformed

    new = _rows(300, 8)
    new["x2"] = new["x2"].astype(float)
    new.loc[:4, "x2"] = [np.inf, -np.inf, np.inf, np.inf, np.inf]
    new.to_csv(tmp_path / "inf.csv", index=False)  # written 'inf', '-inf': read back as infinite floats
    model = mlengineer.load(model_dir)
    assert np.isfinite(conformed(model, new)["x2"].to_numpy()[5:]).all()
    assert np.isnan(conformed(model, new)["x2"].to_numpy()[:5]).all()
    r = run_cli("monitor", str(model_dir), "--data", str(tmp_path / "inf.csv"), "--json", "--fail-on", "drift")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    result = json.loads(r.stdout)
    x2 = next(c for c in result["quality"]["columns"] if c["column"] == "x2")
    assert x2["unreadable"] == 5
    assert any("x2" in p and "5 values cannot be read" in p for p in result["quality"]["problems"])


# -- 2 and 5. a retried request id; the OIP body's id ---------------------------------------------------------
def test_a_retried_request_joins_its_outcome_to_the_latest_row_only(model_dir: Path, served: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    """Before: one outcome of 'q3' was copied onto both logged rows of q3 (labelled 2,002 from 2,001)."""
    labels = pd.DataFrame({"request_id": [f"q{i // 2}" for i in range(80)] + ["shared", "order-77", "hdr-9"],
                           "row": [i % 2 for i in range(80)] + [0, 0, 0],
                           "y": [i % 2 for i in range(80)] + [1, 1, 0]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    model = mlengineer.load(model_dir)
    current = load_current(model, log=served["log"], labels=tmp_path / "labels.csv")
    ids = current.requests["_request_id"].to_numpy()
    q3 = np.flatnonzero(ids == "q3")
    assert len(q3) == 4 and current.labelled[q3].sum() == 2  # two rows, each logged twice: one outcome each
    assert not current.labelled[q3[:2]].any() and current.labelled[q3[2:]].all()  # the latest (the retry)
    assert not current.labelled[ids == "shared"].any()  # other rows under one id: nobody's for sure
    assert current.labelled[ids == "order-77"].all() and current.labelled[ids == "hdr-9"].all()
    assert int(current.labelled.sum()) == 80 + 2
    said = " ".join(current.notes)
    assert "the same inputs" in said and "'q3#0'" in said and "latest" in said, said
    assert "'shared#0'" in said and "different inputs" in said and "left out" in said, said


def test_the_oip_body_id_keys_the_log_and_the_answer_when_no_header_does(served: dict[str, Any]) -> None:
    """Before: the log held the server's own id, and 'order-77' was nowhere (tritonclient shows no headers)."""
    from mlengineer.monitoring.prediction_log import read_prediction_log

    oip = served["oip"]
    assert oip.status_code == 200 and oip.json()["id"] == "order-77"
    assert oip.headers["x-request-id"] == "order-77"
    assert served["oip_header"].headers["x-request-id"] == "hdr-9"  # a header wins
    accent = served["oip_accent"]
    assert accent.status_code == 200 and accent.headers["x-request-id"] == "commande-%C3%A9"
    logged = set(read_prediction_log(served["log"])["_request_id"].astype(str))
    assert {"order-77", "hdr-9", "commande-é"} <= logged and "body-9" not in logged


# -- 3, 8. outcomes that match no row; the registered name and version -----------------------------------------
def test_outcomes_that_match_no_row_are_counted_everywhere_and_the_version_is_named(
        model_dir: Path, tmp_path: Path) -> None:
    """Before: 90% of the outcomes could miss with notes [] and nothing said; the headers named the bundle's
    training folder, not the registered model the operator runs."""
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(model_dir, "opsreg", tracking_uri=uri)
    promote("opsreg", "1", tracking_uri=uri)
    new = _rows(400, 9, start=10_000)
    new.drop(columns=["y"]).to_csv(tmp_path / "new.csv", index=False)
    outcomes = new[["id", "y"]].copy()
    outcomes.loc[::2, "id"] += 500_000  # half the keys shifted: they match nothing
    outcomes.to_csv(tmp_path / "half.csv", index=False)
    r = run_cli("monitor", "models:/opsreg@champion", "--data", str(tmp_path / "new.csv"), "--labels",
                str(tmp_path / "half.csv"), "--key", "id", "--tracking-uri", uri, "--out", str(tmp_path / "m.html"))
    assert r.returncode == 0, r.stderr
    note = "200 of the 400 outcomes in"
    said = " ".join(r.stdout.split())
    assert note in said and "match no monitored row by 'id' (for example '510000')" in said, said
    assert "opsreg (version 1): 400 live rows" in said, said
    html = (tmp_path / "m.html").read_text()
    assert note in html and "<title>opsreg (version 1): monitoring report</title>" in html
    assert "(bundle ops-model)" in html
    _, result = monitor_model("models:/opsreg@champion", data=tmp_path / "new.csv", labels=tmp_path / "half.csv",
                              key="id", tracking_uri=uri)
    assert result["model"]["name"] == "opsreg" and result["model"]["version"] == "1"
    assert result["model"]["bundle"] == "ops-model" and result["current"]["labelled"] == 200
    assert any(n.startswith(note) for n in result["current"]["notes"])
    _, plain = monitor_model(str(model_dir), data=tmp_path / "new.csv")
    assert plain["model"]["name"] == "ops-model" and plain["model"]["version"] is None
    # retrain learns from what joined, and says what did not
    r = run_cli("retrain", str(model_dir), "--data", str(tmp_path / "new.csv"), "--labels", str(tmp_path / "half.csv"),
                "--key", "id", "--time-budget", "3", "--out", str(tmp_path / "challenger"), "--tracking-uri", uri)
    assert r.returncode == 0, r.stderr
    assert note in " ".join(r.stdout.split()), r.stdout


# -- 4. retrain: checked before training, nothing left behind after a failure -----------------------------------
def _runs(uri: str) -> list[Any]:
    from mlengineer.tracking.store import mlflow_client

    client = mlflow_client(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids)) if ids else []


def test_retrain_refuses_newest_rows_of_one_class_before_training(model_dir: Path, tmp_path: Path) -> None:
    """Before: the search ran, a challenger run stayed FINISHED and its temporary folder stayed, then an error
    named a --metric option retrain does not have."""
    from mlengineer.monitoring.retrain import retrain
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(model_dir, "onecls", tracking_uri=uri)
    promote("onecls", "1", tracking_uri=uri)
    new = _rows(300, 10).assign(ts=pd.date_range("2026-01-01", periods=300, freq="h"))
    new.loc[210:, "y"] = 0  # the newest 30% (90 rows) hold one class
    new.to_csv(tmp_path / "newest.csv", index=False)
    before = len(_runs(uri))
    (tmp_path / "tmp").mkdir()
    r = run_cli("retrain", "models:/onecls@champion", "--data", str(tmp_path / "newest.csv"), "--time-column", "ts",
                "--time-budget", "3", "--tracking-uri", uri, cwd=tmp_path, env={"TMPDIR": str(tmp_path / "tmp")})
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "roc_auc cannot be computed on the 90 newest rows" in err and "--test-fraction" in err, err
    assert "--metric" not in err and "all '0'" in err, err
    assert len(_runs(uri)) == before and not list((tmp_path / "tmp").iterdir())
    with pytest.raises(DataError, match="every new row with an outcome is '0'. Pass labelled rows of every class"):
        retrain("models:/onecls@champion", data=new.assign(y=0), time_budget=3, tracking_uri=uri)


def test_a_retrain_that_fails_after_training_marks_its_run_failed_and_leaves_no_folder(
        model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    import mlengineer.evaluation.compare as compare
    from mlengineer.monitoring.retrain import retrain
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(model_dir, "fails", tracking_uri=uri)
    promote("fails", "1", tracking_uri=uri)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the comparison broke")

    monkeypatch.setattr(compare, "compare_predictions", broken)
    before = {r.info.run_id for r in _runs(uri)}
    with pytest.raises(RuntimeError, match="the comparison broke"):
        retrain("models:/fails@champion", data=_rows(300, 11), time_budget=3, tracking_uri=uri)
    # the training run (its candidates' runs, nested under it, did finish; 'mlengineer runs' lists top-level runs)
    new = [r for r in _runs(uri) if r.info.run_id not in before and "mlflow.parentRunId" not in r.data.tags]
    assert len(new) == 1 and new[0].info.status == "FAILED", [(r.info.run_name, r.info.status) for r in new]
    assert "the comparison broke" in new[0].data.tags["mlengineer.failure"]
    assert not list((tmp_path / "tmp").glob("mlengineer-challenger-*"))


# -- 6. rows of other models ------------------------------------------------------------------------------------
def test_rows_of_other_models_in_a_shared_log_are_counted_in_a_note(model_dir: Path, served: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    import shutil

    model = mlengineer.load(model_dir)
    shutil.copytree(served["log"], tmp_path / "mixed")
    _log(tmp_path / "mixed", model, _rows(60, 12)[model.feature_names], name="adult-model")
    _, result = monitor_model(str(model_dir), log=tmp_path / "mixed")
    notes = " ".join(result["current"]["notes"])
    assert "60 rows of 'adult-model' in the prediction log in" in notes and "--log-model" in notes, notes
    assert result["current"]["rows"] == len(pd.concat(map(pd.read_parquet, sorted(served["log"].glob("*.parquet")))))


# -- 7. windows ---------------------------------------------------------------------------------------------------
def test_windows_report_their_bounds_and_weeks_start_on_monday(model_dir: Path) -> None:
    """Before: a tested window's start/end were its first and last rows (end included), an untested one's its
    bounds; weeks ran Thursday to Wednesday."""
    from mlengineer.monitoring.windows import split_windows

    # every 37 minutes from Sunday 2026-11-01 00:06 to Thursday 2026-11-19 00:23 (that day: one row, untested)
    rows = _rows(702, 13).assign(ts=pd.date_range("2026-11-01 00:06", periods=702, freq="37min", tz="UTC"))
    _, daily = monitor_model(str(model_dir), data=rows, time_column="ts", window="1d")
    tested = [w for w in daily["windows"] if w["tested"]]
    assert tested and len(tested) < len(daily["windows"])  # the last day holds a few rows only
    for w in daily["windows"]:
        start, end = pd.Timestamp(w["start"]), pd.Timestamp(w["end"])
        assert start.hour == start.minute == 0 and end - start == pd.Timedelta(days=1), w
        assert start <= pd.Timestamp(w["first_row"]) <= pd.Timestamp(w["last_row"]) < end, w
    assert daily["windows"][0]["first_row"] == "2026-11-01T00:06:00+00:00"
    _, weekly = monitor_model(str(model_dir), data=rows, time_column="ts", window="1w")
    starts = [pd.Timestamp(w["start"]) for w in weekly["windows"]]
    assert all(s.dayofweek == 0 and s.hour == 0 for s in starts), starts  # Mondays, 00:00 UTC
    assert [w["label"] for w in weekly["windows"]][:2] == ["2026-10-26", "2026-11-02"]
    times = pd.Series(pd.to_datetime(["2026-11-04", "2026-11-10", "2026-11-17"], utc=True))
    two = split_windows(times, None, window=pd.Timedelta(weeks=2), by_version=False)
    assert all(w.start is not None and w.start.dayofweek == 0 for w in two)


# -- 9. unseen categories by model and version, in rows ------------------------------------------------------------
def test_unseen_category_counters_name_the_model_and_count_rows(served: dict[str, Any]) -> None:
    """Before: mlengineer_unseen_categories_total{column="cat"} counted requests, with no model or version."""
    samples = _samples(served["metrics"])
    key = (("column", "cat"), ("model", "ops-model"), ("version", "1"))
    assert samples[("mlengineer_unseen_categories_total", key)] == 2  # requests, as before
    assert samples[("mlengineer_unseen_category_rows_total", key)] == 6  # rows: 3 of each 10


def test_unseen_category_rows_add_up_across_workers(model_dir: Path, tmp_path: Path) -> None:
    rows = _rows(40, 14)[["x1", "x2", "x3", "cat"]].assign(cat="zz")
    with running_server(model_dir, "--workers", "2", "--no-prediction-log", cwd=tmp_path) as srv:
        for i in range(8):  # a connection each: both workers get some
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                assert c.post("/predict", json={"records": _records(rows.iloc[5 * i:5 * i + 5])}).is_success
        text = httpx.get(f"{srv.url}/metrics").text
    found = {name: v for (name, labels), v in _samples(text).items() if dict(labels).get("column") == "cat"
             and dict(labels).get("model") == "ops-model"}
    assert found == {"mlengineer_unseen_categories_total": 8, "mlengineer_unseen_category_rows_total": 40}, found
    assert re.search(r'mlengineer_unseen_category_rows_total\{[^}]*version="1"', text)
