"""A server on a registry alias says in ``/health`` that it cannot look its alias up: "degraded" with a
``registry`` object (reachable false, since when, why to callers that send the API key, when it looks again),
while it still answers with the version it has and liveness and readiness stay true; "ok" again, without
``registry``, once look-ups work. A refusal held at the same time is told too. OIP model metadata carries the
same in its ``parameters`` (``registry_*``)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_health_refusal import churn_record, registry_with_a_changed_version, wait_until
from .test_serve_basic import running_server

KEY = "registry-key"
# MLflow keeps its SQLite connections open between look-ups, and an open file outlives its folder's rename;
# with one connection per look-up (an MLflow setting), a registry file moved away cannot be opened, as a
# registry on a share that went away or a database server that is down
ONE_CONNECTION_PER_LOOKUP = {"MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool"}


def _health_schema(url: str) -> Any:
    """A validator of ``/health``'s answers by the server's own OpenAPI document (its date-times checked too);
    jsonschema_rs comes with schemathesis, which tests the rest of the document."""
    import jsonschema_rs

    components = httpx.get(f"{url}/openapi.json", headers={"X-API-Key": KEY}).json()["components"]
    return jsonschema_rs.Draft202012Validator({"$ref": "#/components/schemas/Health", "components": components},
                                              validate_formats=True)


@pytest.mark.slow
def test_health_says_the_registry_cannot_be_reached_and_ok_once_it_can(churn_model_dir: Path,
                                                                       tmp_path: Path) -> None:
    from mlengineer.tracking.store import mlflow_client

    home = tmp_path / "registry"
    home.mkdir()
    uri = f"sqlite:///{home / 'reg.db'}"
    registry_with_a_changed_version(uri, churn_model_dir)
    client = mlflow_client(uri)
    keyed = {"X-API-Key": KEY}
    record = churn_record()
    away = home.with_name("registry.away")

    with running_server("models:/churn@champion", "--tracking-uri", uri, "--poll-interval", "0.2", "--api-key", KEY,
                        "--prediction-log", str(tmp_path / "log"), cwd=tmp_path, env=ONE_CONNECTION_PER_LOOKUP) as srv:
        def health(headers: dict[str, str] | None = None) -> dict[str, Any]:
            r = httpx.get(f"{srv.url}/health", headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            return dict(r.json())

        def parameters() -> dict[str, Any]:
            return dict(httpx.get(f"{srv.url}/v2/models/churn", headers=keyed, timeout=10).json()["parameters"])

        assert health() == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
        schema = _health_schema(srv.url)

        # the registry's file moved away: look-ups fail, the version served still answers
        started = time.time()
        home.rename(away)
        wait_until(srv, lambda: "registry" in health())
        said = health()
        registry = said["registry"]
        assert said == {"status": "degraded", "model": "churn", "version": "1", "alias": "champion",
                        "registry": {"reachable": False, "since": registry["since"], "retry": registry["retry"]}}
        since = datetime.fromisoformat(registry["since"])
        assert since.utcoffset() is not None and started - 1 <= since.timestamp() <= time.time()
        assert datetime.fromisoformat(registry["retry"]) >= since
        told = health(keyed)["registry"]  # why: only to callers that send the key
        assert "unable to open database file" in told["error"] and str(tmp_path) not in told["error"]
        assert "\n" not in told["error"]
        schema.validate(said)
        schema.validate(health(keyed))
        # the first failure's time is kept while look-ups go on failing; the next look moves on
        wait_until(srv, lambda: health()["registry"]["retry"] != registry["retry"])
        assert health()["registry"]["since"] == registry["since"]
        assert httpx.get(f"{srv.url}/v2/health/ready").json() == {"ready": True}
        assert httpx.get(f"{srv.url}/v2/health/live").json() == {"live": True}
        assert httpx.get(f"{srv.url}/ping").status_code == 200
        predicted = httpx.post(f"{srv.url}/predict", json={"records": [record]}, headers=keyed)
        assert predicted.status_code == 200 and predicted.headers["x-model-version"] == "1"
        params = parameters()
        assert params["alias"] == "champion" and params["registry_reachable"] is False
        assert params["registry_since"] == registry["since"] and "unable to open" in params["registry_error"]
        assert params["task"] == "binary"

        # back: "ok" again, without "registry"
        away.rename(home)
        wait_until(srv, lambda: health()["status"] == "ok")
        assert health(keyed) == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
        assert not any(k.startswith("registry_") for k in parameters())
        output = srv.output()
        assert output.count("registry look-up failed") == 1 and output.count("registry look-up works again") == 1

        # a registry that answers, but names no version for the alias: reachable, and still degraded
        client.delete_registered_model_alias("churn", "champion")
        wait_until(srv, lambda: "registry" in health())
        told = health(keyed)["registry"]
        assert told["reachable"] is True and "has no alias 'champion'" in told["error"]
        client.set_registered_model_alias("churn", "champion", "1")
        wait_until(srv, lambda: health()["status"] == "ok")

        # a refused version and a registry out of reach at once: both are told
        client.set_registered_model_alias("churn", "champion", "2")
        wait_until(srv, lambda: health()["status"] == "degraded")
        again = time.time()
        home.rename(away)
        wait_until(srv, lambda: "registry" in health())
        both = health(keyed)
        assert both["alias_version"] == "2" and "MLmodel does not match its manifest" in both["refused"]
        assert both["registry"]["reachable"] is False and "unable to open" in both["registry"]["error"]
        assert datetime.fromisoformat(both["registry"]["since"]).timestamp() >= int(again)  # a new run of failures
        schema.validate(both)
        params = parameters()
        assert params["alias_version"] == "2" and params["registry_reachable"] is False
        away.rename(home)
        wait_until(srv, lambda: "registry" not in health())
        assert health()["alias_version"] == "2"  # still refused: not due to be tried again
        client.set_registered_model_alias("churn", "champion", "1")
        wait_until(srv, lambda: health()["status"] == "ok")
        assert health(keyed) == {"status": "ok", "model": "churn", "version": "1", "alias": "champion"}
