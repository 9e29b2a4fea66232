"""A server on a registry alias says in ``/health`` that it refuses the version the alias names: "degraded", the
version it serves, the version refused, why (with an API key, to callers that send it) and when it tries again,
while liveness and readiness stay true (it answers well with the version before); "ok" again once the alias
comes back or the refused version is taken on a later try. OIP model metadata carries the same in its
``parameters``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pandas as pd
import pytest

from mlengineer.serving.routes.mlflow import public_reason
from mlengineer.serving.watcher import Refusal

from .conftest import FIXTURES
from .test_serve_basic import ServerProcess, running_server

KEY = "health-key"


def test_a_reason_shown_to_clients_names_no_place_on_the_servers_disk() -> None:
    reason = ("Version 3 of 'churn' cannot be loaded: cannot read /srv/mlruns/1/abc/artifacts/model: the folder does "
              "not exist. Restore the files there (file:///srv/mlruns/1/abc/artifacts/model/MLmodel).\nTraceback")
    shown = public_reason(reason)
    assert shown == ("Version 3 of 'churn' cannot be loaded: cannot read model: the folder does not exist. Restore "
                     "the files there (MLmodel).")
    assert public_reason("models:/churn@champion names 2, not 1/2") == "models:/churn@champion names 2, not 1/2"
    assert public_reason("x" * 400).endswith("...") and len(public_reason("x" * 400)) == 300


def test_a_refusal_says_when_it_is_tried_again() -> None:
    marks = (False, None)
    assert "mlengineer promote" in Refusal("2", marks, "r", passing=False).when_again()
    soon = Refusal("2", marks, "r", passing=True, next_try=time.monotonic() + 30).when_again()
    assert soon.startswith("by itself at the first look from 20") and "+00:00" in soon


def stored(source: str) -> Path:
    """The folder a registered version's files are kept in."""
    return Path(unquote(urlparse(source).path))


def wait_until(srv: ServerProcess, what: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not what():
        time.sleep(0.1)
    told = [line for line in srv.output().splitlines() if '"mlengineer.access"' not in line]
    assert what(), "\n".join(told)[-3000:]  # the server's log less its access lines


def registry_with_a_changed_version(uri: str, bundle: Path) -> Path:
    """A registry at ``uri`` whose 'churn'@champion is version 1 of ``bundle``, and version 2 registered with
    its MLmodel file changed by one byte after (a server refuses it); the folder of version 2."""
    from mlengineer.tracking.registry import promote, register

    register(bundle, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    changed = stored(register(bundle, "churn", tracking_uri=uri).source)
    mlmodel = changed / "MLmodel"
    original = mlmodel.read_bytes()
    mlmodel.write_bytes(original[:-1] + (b"#" if original[-1:] != b"#" else b"!"))
    return changed


def churn_record() -> dict[str, Any]:
    """One customer of the churn fixture as a JSON record, without the outcome."""
    row = pd.read_csv(FIXTURES / "churn_800.csv").drop(columns=["churn"]).iloc[:1].to_dict(orient="records")[0]
    return {k: (None if pd.isna(v) else v) for k, v in row.items()}


@pytest.mark.slow
def test_health_says_the_server_refuses_the_version_its_alias_names(churn_model_dir: Path, tmp_path: Path) -> None:
    from mlengineer.tracking.registry import register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    registry_with_a_changed_version(uri, churn_model_dir)
    away = stored(register(churn_model_dir, "churn", tracking_uri=uri).source)
    client = mlflow_client(uri)
    keyed = {"X-API-Key": KEY}
    record = churn_record()

    with running_server("models:/churn@champion", "--tracking-uri", uri, "--poll-interval", "0.2", "--api-key", KEY,
                        "--prediction-log", str(tmp_path / "log"), cwd=tmp_path) as srv:
        def health(headers: dict[str, str] | None = None) -> dict[str, Any]:
            r = httpx.get(f"{srv.url}/health", headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            return dict(r.json())

        assert health() == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
        schema = httpx.get(f"{srv.url}/openapi.json", headers=keyed).json()["components"]["schemas"]["Health"]

        # files that differ from what was registered: refused until promoted again or its files change
        client.set_registered_model_alias("churn", "champion", "2")
        wait_until(srv, lambda: health()["status"] == "degraded")
        said = health()
        assert said == {"status": "degraded", "model": "churn", "version": "1", "alias": "champion",
                        "alias_version": "2", "retry": said["retry"]}  # why: only to callers that send the key
        assert "mlengineer promote" in said["retry"]
        told = health(keyed)
        assert "MLmodel does not match its manifest" in told["refused"] and str(tmp_path) not in told["refused"]
        assert set(told) <= set(schema["properties"]) and set(schema["required"]) <= set(told)
        # liveness and readiness stay true: the server answers well with version 1
        assert httpx.get(f"{srv.url}/v2/health/ready").json() == {"ready": True}
        assert httpx.get(f"{srv.url}/v2/health/live").json() == {"live": True}
        assert httpx.get(f"{srv.url}/ping").status_code == 200
        assert httpx.get(f"{srv.url}/v2/models/churn/ready", headers=keyed).json() == {"name": "churn", "ready": True}
        predicted = httpx.post(f"{srv.url}/predict", json={"records": [record]}, headers=keyed)
        assert predicted.status_code == 200 and predicted.headers["x-model-version"] == "1"
        params = httpx.get(f"{srv.url}/v2/models/churn", headers=keyed).json()["parameters"]
        assert params["alias"] == "champion" and params["alias_version"] == "2"
        assert params["refused"] == told["refused"] and params["task"] == "binary"

        client.set_registered_model_alias("churn", "champion", "1")  # the alias comes back
        wait_until(srv, lambda: health()["status"] == "ok")
        assert health(keyed) == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
        assert "alias_version" not in httpx.get(f"{srv.url}/v2/models/churn", headers=keyed).json()["parameters"]

        # files that cannot be read now (a store being synced): tried again by itself, and taken once back
        moved = away.with_name("model.moving")
        away.rename(moved)
        client.set_registered_model_alias("churn", "champion", "3")
        wait_until(srv, lambda: health()["status"] == "degraded")
        told = health(keyed)
        assert told["alias_version"] == "3" and told["retry"].startswith("by itself")
        assert "cannot read" in told["refused"] and str(tmp_path) not in told["refused"]
        moved.rename(away)
        wait_until(srv, lambda: health()["status"] == "ok")
        assert health() == {"status": "ok", "model": "churn", "version": "3", "alias": "champion"}
