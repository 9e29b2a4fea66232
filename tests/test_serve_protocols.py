"""The protocols against a real server: Open Inference Protocol v2 in full, MLflow's /invocations (with
MLflow's own client), /predict, /metrics, the JSON access log and the prediction log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def srv(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cwd = tmp_path_factory.mktemp("serve-protocols")
    with running_server(churn_model_dir, "--prediction-log", str(cwd / "plog"), cwd=cwd) as s:
        yield s


@pytest.fixture(scope="module")
def model(churn_model_dir: Path):  # type: ignore[no-untyped-def]
    import mlengineer

    return mlengineer.load(churn_model_dir)


@pytest.fixture(scope="module")
def frame(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv).drop(columns=["churn", "customer_id"]).iloc[10:15].reset_index(drop=True)


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def test_server_metadata_and_model_versions(srv: ServerProcess, model) -> None:  # type: ignore[no-untyped-def]
    meta = httpx.get(f"{srv.url}/v2").json()
    assert meta["name"] == "mlengineer" and meta["version"]
    m = httpx.get(f"{srv.url}/v2/models/{model.name}/versions/1").json()
    assert m["versions"] == ["1"] and m["platform"] == "mlengineer"
    assert {i["name"]: i["datatype"] for i in m["inputs"]} == {
        "age": "FP64", "plan": "BYTES", "monthly_fee": "FP64", "tenure_months": "FP64", "signup_date": "BYTES"}
    assert httpx.get(f"{srv.url}/v2/models/{model.name}/ready").json() == {"name": model.name, "ready": True}
    assert httpx.get(f"{srv.url}/v2/models/{model.name}/versions/1/ready").json()["ready"] is True
    r = httpx.get(f"{srv.url}/v2/models/{model.name}/versions/7")
    assert r.status_code == 404 and "version" in r.json()["error"]


def test_oip_infer_with_every_datatype(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    n = len(frame)
    inputs = [
        {"name": "age", "shape": [n], "datatype": "INT64", "data": [int(v) for v in frame["age"]]},
        {"name": "plan", "shape": [n, 1], "datatype": "BYTES", "data": [[v] for v in frame["plan"]]},
        {"name": "monthly_fee", "shape": [n], "datatype": "FP64",
         "data": [None if pd.isna(v) else float(v) for v in frame["monthly_fee"]]},
        {"name": "tenure_months", "shape": [n], "datatype": "FP32", "data": [float(v) for v in frame["tenure_months"]]},
        {"name": "signup_date", "shape": [n], "datatype": "BYTES", "data": list(frame["signup_date"])},
    ]
    r = httpx.post(f"{srv.url}/v2/models/{model.name}/versions/1/infer", json={"id": "a1", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "1" and body["id"] == "a1"
    out = {o["name"]: o for o in body["outputs"]}
    local = model.predict_frame(frame)
    assert out["prediction"]["datatype"] == "BYTES" and out["prediction"]["data"] == list(local["prediction"])
    probs = np.array(out["probabilities"]["data"]).reshape(out["probabilities"]["shape"])
    assert out["probabilities"]["parameters"]["classes"] == ["no", "yes"]
    np.testing.assert_allclose(probs[:, 1], local["proba_yes"], atol=1e-6)
    # only the outputs asked for
    r = httpx.post(f"{srv.url}/v2/models/{model.name}/infer",
                   json={"inputs": inputs, "outputs": [{"name": "probabilities"}]})
    assert [o["name"] for o in r.json()["outputs"]] == ["probabilities"]


def test_oip_tensor_of_the_wrong_kind_for_the_column(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    inputs = [{"name": c, "shape": [1], "datatype": "BYTES", "data": [str(frame[c][0])]} for c in frame.columns]
    inputs[0] = {"name": "age", "shape": [1], "datatype": "BOOL", "data": [True]}
    r = httpx.post(f"{srv.url}/v2/models/{model.name}/infer", json={"inputs": inputs})
    assert r.status_code == 422 and "'age'" in r.json()["error"] and "number" in r.json()["error"]


@pytest.mark.parametrize("key", ["dataframe_split", "dataframe_records", "instances", "inputs", "columnar"])
def test_invocations_every_json_format(srv: ServerProcess, model, frame: pd.DataFrame, key: str) -> None:  # type: ignore[no-untyped-def]
    recs = _records(frame)
    body = {
        "dataframe_split": {"dataframe_split": json.loads(frame.to_json(orient="split"))},
        "dataframe_records": {"dataframe_records": recs},
        "instances": {"instances": recs},
        "inputs": {"inputs": recs},
        "columnar": {"inputs": {c: [r[c] for r in recs] for c in recs[0]}},
    }[key]
    r = httpx.post(f"{srv.url}/invocations", json=body)
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json()["predictions"])
    local = model.predict_frame(frame)
    assert list(got.columns) == ["prediction", "proba_no", "proba_yes"]
    assert list(got["prediction"]) == list(local["prediction"])
    np.testing.assert_allclose(got["proba_yes"], local["proba_yes"], atol=1e-6)


def test_invocations_csv(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{srv.url}/invocations", content=frame.to_csv(index=False), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert [p["prediction"] for p in r.json()["predictions"]] == list(model.predict_frame(frame)["prediction"])


def test_mlflows_own_client_works_unchanged(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = srv.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    with_missing = frame.copy()
    with_missing.loc[0, "monthly_fee"] = np.nan  # pandas' missing value: MLflow's client sends NaN
    got = client.invoke(with_missing).get_predictions()
    local = model.predict_frame(with_missing)
    assert list(got["prediction"]) == list(local["prediction"])
    np.testing.assert_allclose(got["proba_yes"], local["proba_yes"], atol=1e-6)


def test_mlflow_health_endpoints(srv: ServerProcess) -> None:
    assert httpx.get(f"{srv.url}/ping").status_code == 200
    assert httpx.get(f"{srv.url}/health").status_code == 200
    assert httpx.get(f"{srv.url}/version").json()


def test_every_answer_carries_request_and_model_ids(srv: ServerProcess, frame: pd.DataFrame) -> None:
    r = httpx.post(f"{srv.url}/predict", json={"records": _records(frame)}, headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123" and r.headers["x-model-version"] == "1"
    assert r.json()["model_version"] == "1"


def test_openapi_docs_list_the_models_columns(srv: ServerProcess) -> None:
    doc = httpx.get(f"{srv.url}/openapi.json").json()
    record = doc["components"]["schemas"]["Record"]
    assert set(record["required"]) == {"age", "plan", "monthly_fee", "tenure_months", "signup_date"}
    assert record["properties"]["signup_date"]["format"] == "date"
    paths = set(doc["paths"])
    assert {"/v2/models/{model_name}/infer", "/invocations", "/predict", "/metrics"} <= paths
    assert httpx.get(f"{srv.url}/docs").status_code == 200


def test_metrics_count_requests_errors_and_predictions(srv: ServerProcess, frame: pd.DataFrame) -> None:
    for _ in range(3):
        httpx.post(f"{srv.url}/predict", json={"records": _records(frame)})
    httpx.post(f"{srv.url}/predict", json={"records": [{"age": "old"}]})
    unseen = _records(frame.head(1))
    unseen[0]["plan"] = "platinum"
    assert httpx.post(f"{srv.url}/predict", json={"records": unseen}).json()["warnings"]
    text = httpx.get(f"{srv.url}/metrics").text
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}

    def total(name: str, **labels: str) -> float:
        return sum(v for (n, lab), v in samples.items()
                   if n == name and all((k, val) in lab for k, val in labels.items()))

    assert total("mlengineer_requests_total", endpoint="/predict", status="200") >= 3
    assert total("mlengineer_request_errors_total", endpoint="/predict", reason="invalid_input") >= 1
    assert total("mlengineer_request_duration_seconds_count", endpoint="/predict") >= 4
    assert total("mlengineer_predicted_rows_total") >= 15
    assert total("mlengineer_predicted_class_total", label="no") + total("mlengineer_predicted_class_total",
                                                                         label="yes") >= 15
    assert total("mlengineer_prediction_confidence_count") >= 15
    assert total("mlengineer_model_info", version="1") == 1
    assert total("mlengineer_unseen_categories_total", column="plan") >= 1


def test_access_log_is_one_json_object_per_request(srv: ServerProcess) -> None:
    httpx.get(f"{srv.url}/v2/health/live", headers={"x-request-id": "log-me"})
    import time

    deadline = time.time() + 5
    while time.time() < deadline:
        lines = [json.loads(line) for line in srv.output().splitlines() if line.startswith("{")]
        hit = [x for x in lines if x.get("request_id") == "log-me"]
        if hit:
            break
        time.sleep(0.1)
    assert hit and hit[0]["logger"] == "mlengineer.access" and hit[0]["status"] == 200
    assert hit[0]["path"] == "/v2/health/live" and hit[0]["ms"] >= 0


def test_prediction_log_holds_every_predicted_row(churn_model_dir: Path, tmp_path: Path, frame: pd.DataFrame) -> None:
    from mlengineer.monitoring.prediction_log import read_prediction_log

    plog = tmp_path / "plog"
    with running_server(churn_model_dir, "--prediction-log", str(plog), cwd=tmp_path) as s:
        for i in range(4):
            r = httpx.post(f"{s.url}/predict", json={"records": _records(frame)}, headers={"x-request-id": f"r{i}"})
            assert r.status_code == 200
        httpx.post(f"{s.url}/invocations", json={"dataframe_records": _records(frame.head(2))})
        assert s.stop() == 0  # the log is flushed on the way out
    log = read_prediction_log(plog)
    assert len(log) == 4 * len(frame) + 2
    assert set(log["_request_id"].head(20)) == {"r0", "r1", "r2", "r3"}
    assert set(log["_endpoint"]) == {"predict", "invocations"}
    first = log[log["_request_id"] == "r0"].reset_index(drop=True)
    assert list(first["plan"]) == list(frame["plan"])
    np.testing.assert_allclose(first["age"], frame["age"].astype(float))
    assert {"prediction", "proba_no", "proba_yes", "_ts", "_model", "_version"} <= set(log.columns)
