"""Several worker processes on one port, and a graceful stop: a request in flight when SIGTERM arrives is
answered, its rows reach the prediction log, and the server exits with status 0."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from .test_serve_basic import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows(churn_csv: Path) -> list[dict[str, Any]]:
    df = pd.read_csv(churn_csv).drop(columns=["churn"]).head(300)
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def test_two_workers_share_the_port_and_one_metrics_page(churn_model_dir: Path, rows: list[dict[str, Any]],
                                                         tmp_path: Path) -> None:
    with running_server(churn_model_dir, "--workers", "2", "--no-prediction-log", cwd=tmp_path) as srv:
        def serving_pids() -> set[int]:
            return {json.loads(line)["pid"] for line in srv.output().splitlines()
                    if line.startswith("{") and '"event":"serving"' in line}

        # the server answers as soon as one worker is up; the other may still be loading the model
        deadline = time.monotonic() + 120
        while len(serving_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(serving_pids()) == 2, srv.output()[-2000:]

        def call(i: int) -> int:
            with httpx.Client(base_url=srv.url, timeout=60) as c:  # a connection each: both workers get some
                return c.post("/predict", json={"records": rows[i:i + 1]}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(call, range(40)))
        assert codes == [200] * 40
        text = httpx.get(f"{srv.url}/metrics").text
        total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith('mlengineer_requests_total{') and 'endpoint="/predict"' in line
                    and 'status="200"' in line)
        assert total == 40  # counted across both workers, whichever answers the scrape


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_the_request_in_flight(churn_model_dir: Path, rows: list[dict[str, Any]],
                                                tmp_path: Path, workers: str) -> None:
    from mlengineer.monitoring.prediction_log import read_prediction_log

    body = json.dumps({"records": rows}).encode()
    half = len(body) // 2
    first_half_sent = threading.Event()
    go_on = threading.Event()

    def slow_upload() -> Iterator[bytes]:  # the request is in flight, half received, when SIGTERM arrives
        yield body[:half]
        first_half_sent.set()
        go_on.wait(30)
        yield body[half:]

    answer: dict[str, Any] = {}
    plog = tmp_path / "plog"
    with running_server(churn_model_dir, "--workers", workers, "--prediction-log", str(plog), cwd=tmp_path) as srv:
        def send() -> None:
            try:
                answer["r"] = httpx.post(f"{srv.url}/predict", content=slow_upload(), timeout=60,
                                         headers={"content-type": "application/json", "x-request-id": "in-flight"})
            except httpx.HTTPError as e:
                answer["error"] = e

        t = threading.Thread(target=send)
        t.start()
        assert first_half_sent.wait(30)
        time.sleep(0.5)
        srv.proc.send_signal(15)
        time.sleep(1.0)  # the server is shutting down now: the listener is closed
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/v2/health/live", timeout=5)
        go_on.set()
        t.join(60)
        assert srv.proc.wait(60) == 0, srv.output()
    assert "error" not in answer, answer.get("error")
    r = answer["r"]
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == len(rows)
    log = read_prediction_log(plog)
    assert (log["_request_id"] == "in-flight").sum() == len(rows)
