"""The server with the clients people use for the Open Inference Protocol, as installed from the registry:
tritonclient's HTTP client in its default binary tensor mode and in JSON, and KServe's v2 REST client (in a
virtual environment of its own: kserve pins pandas, protobuf and more against mlengineer's own). Also the
binary extension's errors, and /predict taking a bare JSON list of records as other servers do."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow

KSERVE = "kserve==0.21.0"
CLIENTS = Path(__file__).parent / "clients"


@pytest.fixture(scope="module")
def srv(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cwd = tmp_path_factory.mktemp("serve-clients")
    with running_server(churn_model_dir, "--no-prediction-log", cwd=cwd) as s:
        yield s


@pytest.fixture(scope="module")
def model(churn_model_dir: Path):  # type: ignore[no-untyped-def]
    import mlengineer

    return mlengineer.load(churn_model_dir)


@pytest.fixture(scope="module")
def frame(churn_csv: Path) -> pd.DataFrame:
    """Rows with a missing monthly fee among them."""
    df = pd.read_csv(churn_csv).drop(columns=["churn", "customer_id"])
    rows = pd.concat([df.loc[df["monthly_fee"].isna()].head(2), df.head(6)])
    assert rows["monthly_fee"].isna().sum() == 2
    return rows.reset_index(drop=True)


def _triton_inputs(frame: pd.DataFrame, metadata: dict, *, binary: bool) -> list:
    import tritonclient.http as th

    out = []
    for spec in metadata["inputs"]:
        col = frame[spec["name"]]
        arr = col.to_numpy(dtype=np.float64) if spec["datatype"] == "FP64" else col.astype(object).to_numpy()
        tensor = th.InferInput(spec["name"], [len(frame)], spec["datatype"])
        tensor.set_data_from_numpy(arr, binary_data=binary)  # NaN: a missing value, the only way in binary
        out.append(tensor)
    return out


def _text(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()]


def test_tritonclient_in_its_default_binary_mode(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    import tritonclient.http as th

    client = th.InferenceServerClient(url=srv.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model.name)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(model.name)
    result = client.infer(model.name, _triton_inputs(frame, metadata, binary=True))  # outputs binary too
    response = result.get_response()
    assert all("binary_data_size" in o["parameters"] and "data" not in o for o in response["outputs"])
    local = model.predict_frame(frame)
    assert _text(result.as_numpy("prediction")) == list(local["prediction"])
    np.testing.assert_allclose(result.as_numpy("probabilities")[:, 1], local["proba_yes"], atol=1e-9)


def test_tritonclient_in_json_and_mixed(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    import tritonclient.http as th

    client = th.InferenceServerClient(url=srv.url.removeprefix("http://"))
    metadata = client.get_model_metadata(model.name, model_version="1")
    local = model.predict_frame(frame)
    for binary_in in (False, True):
        outputs = [th.InferRequestedOutput("prediction", binary_data=False),
                   th.InferRequestedOutput("probabilities", binary_data=True)]
        result = client.infer(model.name, _triton_inputs(frame, metadata, binary=binary_in), outputs=outputs,
                              model_version="1", request_id="r1")
        response = result.get_response()
        by_name = {o["name"]: o for o in response["outputs"]}
        assert response["id"] == "r1" and "data" in by_name["prediction"]
        assert "binary_data_size" in by_name["probabilities"]["parameters"]
        assert _text(result.as_numpy("prediction")) == list(local["prediction"])
        np.testing.assert_allclose(result.as_numpy("probabilities")[:, 0], local["proba_no"], atol=1e-9)


def _binary_request(n: int, header: dict, tensors: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + tensors, {"Inference-Header-Content-Length": str(len(head)),
                            "Content-Type": "application/octet-stream"}


def test_binary_requests_that_do_not_add_up_get_one_clear_line(srv: ServerProcess, model) -> None:  # type: ignore[no-untyped-def]
    url = f"{srv.url}/v2/models/{model.name}/infer"
    inputs = [{"name": "age", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}]
    body, headers = _binary_request(2, {"inputs": inputs}, struct.pack("<d", 40.0))  # 8 bytes of 16
    r = httpx.post(url, content=body, headers=headers)
    assert r.status_code == 422 and "'age'" in r.json()["error"] and "binary_data_size 16" in r.json()["error"]
    r = httpx.post(url, content=body, headers={**headers, "Inference-Header-Content-Length": "99999"})
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]
    body, headers = _binary_request(2, {"inputs": inputs}, struct.pack("<3d", 1.0, 2.0, 3.0))
    r = httpx.post(url, content=body, headers=headers)
    assert r.status_code == 422 and "8 bytes of tensor data" in r.json()["error"]


def test_predict_takes_a_bare_list_of_records(srv: ServerProcess, model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    bare = httpx.post(f"{srv.url}/predict", json=records)
    wrapped = httpx.post(f"{srv.url}/predict", json={"records": records})
    assert bare.status_code == 200, bare.text
    assert bare.json()["predictions"] == wrapped.json()["predictions"]
    assert [p["prediction"] for p in bare.json()["predictions"]] == list(model.predict_frame(frame)["prediction"])
    r = httpx.post(f"{srv.url}/predict", json=[1, 2])
    assert r.status_code == 422 and "records[0]" in r.json()["error"]
    r = httpx.post(f"{srv.url}/predict", json="rows")
    assert r.status_code == 422 and "JSON list of rows" in r.json()["error"]
    doc = httpx.get(f"{srv.url}/openapi.json").json()
    shapes = doc["components"]["requestBodies"]["Predict"]["content"]["application/json"]["schema"]["oneOf"]
    assert {s["type"] for s in shapes} == {"object", "array"}  # both shapes documented


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """Python of a virtual environment with KServe's client, made once and kept between runs."""
    home = Path(os.environ.get("MLENGINEER_TEST_CACHE", Path.home() / ".cache" / "mlengineer-tests"))
    venv = home / KSERVE.replace("==", "-")
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", KSERVE], capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, f"pip install {KSERVE} failed:\n{r.stderr[-3000:]}"
        (venv / ".complete").touch()
    return python


def test_kserves_v2_rest_client(srv: ServerProcess, model, frame: pd.DataFrame, kserve_python: Path,  # type: ignore[no-untyped-def]
                                tmp_path: Path) -> None:
    types = {i["name"]: i["datatype"] for i in httpx.get(f"{srv.url}/v2/models/{model.name}").json()["inputs"]}
    columns = {c: [None if pd.isna(v) else (float(v) if types[c] == "FP64" else str(v)) for v in frame[c]]
               for c in frame.columns}
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"columns": columns, "types": types}))
    r = subprocess.run([str(kserve_python), str(CLIENTS / "kserve_v2.py"), srv.url, model.name, str(rows)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    assert got["live"] is True and got["ready"] is True
    local = model.predict_frame(frame)
    for mode in ("json", "binary"):
        answer = got[mode]
        assert answer["id"] == f"kserve-{mode}" and answer["model_name"] == model.name
        assert [str(p) for p in answer["outputs"]["prediction"]] == list(local["prediction"])
        np.testing.assert_allclose(np.array(answer["outputs"]["probabilities"])[:, 1], local["proba_yes"], atol=1e-9)
