"""A server following an alias of an ``mlflow server`` registry notices in seconds that the registry went down
(MLflow alone would try each look-up again for about 4 minutes): ``/health`` says "degraded" with
``registry.reachable`` false and ``mlengineer_registry_lookup_failing`` reads 1, while the version it has still
answers; once the registry is back, "ok" and 0. The bounds on MLflow's requests are the watcher's, after the
model is loaded, and leave alone what a user set."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import FIXTURES, free_port
from .test_health_refusal import wait_until
from .test_serve_basic import running_server, wait_answering


class MlflowServer:
    """``mlflow server`` on ``port`` of 127.0.0.1, its store and artifacts in ``home``: ``start`` returns once it
    answers, ``stop`` ends all its processes."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).parent / "mlflow"
        log = self.home / f"mlflow-{time.time_ns()}.log"
        with open(log, "wb") as out:
            self.proc = proc = subprocess.Popen(
                [str(exe), "server", "--backend-store-uri", f"sqlite:///{self.home / 'mlflow.db'}",
                 "--artifacts-destination", str(self.home / "artifacts"), "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, cwd=self.home,
                start_new_session=True,  # without its job runner's processes: it starts in half the time
                env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        wait_answering(f"http://127.0.0.1:{self.port}/health", proc, lambda: log.read_text(errors="replace")[-3000:],
                       90)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _gauges(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The ``mlengineer_registry_lookup_*`` series at ``/metrics``: name -> labels -> value."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("mlengineer_registry_lookup"):
                out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


@pytest.mark.slow
def test_a_registry_server_gone_down_shows_in_seconds_and_ok_once_back(churn_model_dir: Path,
                                                                        tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register

    home = tmp_path / "registry"
    home.mkdir()
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    row = pd.read_csv(FIXTURES / "churn_800.csv").drop(columns=["churn"]).iloc[:1].to_dict(orient="records")[0]
    record = {k: (None if pd.isna(v) else v) for k, v in row.items()}
    model = (("model", "churn"),)
    registry = MlflowServer(home, port)
    registry.start()
    try:
        register(churn_model_dir, "churn", tracking_uri=uri)
        promote("churn", "1", tracking_uri=uri)
        with running_server("models:/churn@champion", "--tracking-uri", uri, "--poll-interval", "0.5",
                            "--prediction-log", str(tmp_path / "log"), cwd=tmp_path,
                            env={"MLENGINEER_CACHE_DIR": str(tmp_path / "cache")}) as srv:
            def health() -> dict[str, Any]:
                r = httpx.get(f"{srv.url}/health", timeout=10)
                assert r.status_code == 200, r.text
                return dict(r.json())

            assert health() == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
            assert _gauges(srv.url) == {"mlengineer_registry_lookup_failing": {model: 0.0}}

            # the registry server stops: within a few polls, degraded and the gauge at 1
            stopping = time.time()
            registry.stop()
            wait_until(srv, lambda: "registry" in health(), timeout=30)
            said = health()
            assert said["status"] == "degraded" and said["registry"]["reachable"] is False, said
            gauges = _gauges(srv.url)
            assert gauges["mlengineer_registry_lookup_failing"] == {model: 1.0}
            since = gauges["mlengineer_registry_lookup_failing_since_seconds"][model]
            assert int(stopping) <= since <= time.time()
            predicted = httpx.post(f"{srv.url}/predict", json={"records": [record]}, timeout=10)
            assert predicted.status_code == 200 and predicted.headers["x-model-version"] == "1"

            # back on the same port: ok, the gauge at 0 and the time gone
            registry.start()
            wait_until(srv, lambda: health()["status"] == "ok", timeout=30)
            assert health() == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
            assert _gauges(srv.url) == {"mlengineer_registry_lookup_failing": {model: 0.0}}
            output = srv.output()
            assert "registry look-up failed" in output and output.count("registry look-up works again") == 1
    finally:
        registry.stop()


def test_the_watcher_bounds_mlflow_requests_to_a_server_and_keeps_what_a_user_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.serving.settings import ServeSettings
    from mlengineer.serving.watcher import ModelWatcher, http_bounds

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    assert http_bounds("sqlite:///reg.db", 10) == {}  # a database answers or fails at once
    assert http_bounds("https://registry.example", 0.5)["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert http_bounds("http://registry.example", 12.5)["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "13"
    assert http_bounds("http://registry.example", 600)["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")  # the user's own
    settings = ServeSettings(model="models:/churn@champion", tracking_uri="http://127.0.0.1:9", poll_interval=60)
    seen: list[Any] = []
    watcher = ModelWatcher(settings, get=lambda: None, swap=lambda new: None)  # type: ignore[arg-type,return-value]
    watcher.on_lookup = seen.append

    async def watch() -> dict[str, str | None]:
        watcher.start()
        during = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                                                 "MLFLOW_HTTP_REQUEST_TIMEOUT")}
        await watcher.stop()
        return during

    assert asyncio.run(watch()) == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "9", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    assert seen == [None]  # the gauge reads 0 from the start
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ and "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" not in os.environ


_WORKER = """
import sys
from mlengineer.serving.metrics import Metrics
m = Metrics()
assert m.multiprocess
m.set_model(model="m", version="1", previous=None)
m.registry_lookup("m", None)
for since in sys.argv[1:]:
    m.registry_lookup("m", None if since == "works" else float(since))
sys.stdout.write(m.render().decode())
"""


def test_workers_show_one_registry_series_as_one_worker_does(tmp_path: Path) -> None:
    """Three worker processes' real multiprocess files: two whose look-ups fail (since 200 and since 100), one
    whose look-ups failed and work again; then workers whose look-ups all work."""
    def page(folder: Path, *steps: tuple[str, ...]) -> list[str]:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
        for args in steps:
            r = subprocess.run([sys.executable, "-c", _WORKER, *args], capture_output=True, text=True, timeout=120,
                               env=env)
            assert r.returncode == 0, r.stderr
        return sorted(x for x in r.stdout.splitlines() if x.startswith("mlengineer_registry_lookup"))

    (tmp_path / "failing").mkdir()
    (tmp_path / "working").mkdir()
    assert page(tmp_path / "failing", ("200",), ("100",), ("50", "works")) == [
        'mlengineer_registry_lookup_failing_since_seconds{model="m"} 100.0',
        'mlengineer_registry_lookup_failing{model="m"} 1.0']
    assert page(tmp_path / "working", (), ("50", "works")) == ['mlengineer_registry_lookup_failing{model="m"} 0.0']
