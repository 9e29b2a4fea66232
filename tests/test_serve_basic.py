"""A real uvicorn server on 127.0.0.1, started by the real CLI: Open Inference Protocol v2 and /predict."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from .conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(churn_model_dir: Path) -> Iterator[str]:
    port = free_port()
    exe = Path(sys.executable).parent / "mlengineer"
    proc = subprocess.Popen([str(exe), "serve", str(churn_model_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read() if proc.stderr else "server exited")
    yield url
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def name(churn_model_dir: Path) -> str:
    import mlengineer

    return mlengineer.load(churn_model_dir).name


@pytest.fixture(scope="module")
def rows(churn_csv: Path) -> list[dict]:
    df = pd.read_csv(churn_csv).drop(columns=["churn"]).head(3)
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def test_health_and_metadata(server: str, name: str) -> None:
    assert httpx.get(f"{server}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{server}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{server}/v2/models/{name}").json()
    names = [i["name"] for i in meta["inputs"]]
    assert "plan" in names and "customer_id" not in names
    assert {o["name"] for o in meta["outputs"]} == {"prediction", "probabilities"}


def test_predict_records(server: str, rows: list[dict], churn_model_dir: Path) -> None:
    r = httpx.post(f"{server}/predict", json={"records": rows})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 3
    import mlengineer

    local = mlengineer.load(churn_model_dir).predict_frame(pd.DataFrame(rows))
    for p, (_, row) in zip(preds, local.iterrows(), strict=True):
        assert p["prediction"] == row["prediction"]
        assert abs(p["probabilities"]["yes"] - row["proba_yes"]) < 1e-9


def test_oip_infer(server: str, rows: list[dict], name: str) -> None:
    cols = rows[0].keys()
    inputs = [{"name": c, "shape": [len(rows)], "datatype": "BYTES" if isinstance(rows[0][c], str) else "FP64",
               "data": [r[c] for r in rows]} for c in cols]
    r = httpx.post(f"{server}/v2/models/{name}/infer", json={"id": "42", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "42" and body["model_name"] == name
    out = {o["name"]: o for o in body["outputs"]}
    assert out["prediction"]["shape"] == [3]
    assert out["probabilities"]["shape"] == [3, 2] and len(out["probabilities"]["data"]) == 6


def test_missing_column_is_a_422_naming_it(server: str, rows: list[dict]) -> None:
    bad = [{k: v for k, v in r.items() if k != "plan"} for r in rows]
    r = httpx.post(f"{server}/predict", json={"records": bad})
    assert r.status_code == 422
    assert "'plan'" in r.json()["error"]


def test_unknown_model_name_is_a_404(server: str, name: str) -> None:
    r = httpx.get(f"{server}/v2/models/other")
    assert r.status_code == 404 and name in r.json()["error"]


def test_malformed_body_is_a_422(server: str) -> None:
    r = httpx.post(f"{server}/predict", json={"rows": []})
    assert r.status_code == 422 and "records" in r.json()["error"]
