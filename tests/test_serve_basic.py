"""A real uvicorn server on 127.0.0.1, started by the real CLI: Open Inference Protocol v2 and /predict.

``running_server`` (used by every test_serve* module) starts ``mlengineer serve`` as a user would, waits
until it answers, and stops it with SIGTERM, writing its output to a file rather than a pipe nobody reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from .conftest import free_port

pytestmark = pytest.mark.slow


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    cwd: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise


def wait_answering(url: str, proc: subprocess.Popen[bytes], output: Callable[[], str], timeout: float) -> None:
    """Return once ``url`` answers 200; fail with the process's ``output`` if it exits or ``timeout`` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{output()}")
        if time.time() > deadline:
            raise RuntimeError(f"the server did not start in {timeout} s:\n{output()}")
        time.sleep(0.2)


@contextmanager
def running_server(model: str | Path, *args: str, cwd: Path, env: dict[str, str] | None = None,
                   start_timeout: float = 120) -> Iterator[ServerProcess]:
    """``mlengineer serve MODEL ARGS`` on a free port of 127.0.0.1, stopped (SIGTERM) when the block ends."""
    port = free_port()
    exe = Path(sys.executable).parent / "mlengineer"
    log = cwd / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "serve", str(model), "--port", str(port), *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **(env or {})})
    server = ServerProcess(f"http://127.0.0.1:{port}", proc, log, cwd)
    try:
        wait_answering(f"{server.url}/v2/health/ready", proc, server.output, start_timeout)
        yield server
    finally:
        if proc.poll() is None:
            server.stop()


@pytest.fixture(scope="module")
def server(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(churn_model_dir, cwd=tmp_path_factory.mktemp("serve-basic")) as s:
        yield s.url


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
        assert abs(p["probabilities"]["yes"] - row["proba_yes"]) < 1e-6


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
