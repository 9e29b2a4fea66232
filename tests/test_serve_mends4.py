"""Mends from a stress test of the server in production conditions (findings 1-14 of its report):

- several workers serve one version: a replacement starts on the version its siblings serve (a registry
  version, or a snapshot of the bundle folder), one that cannot start waits and never stops the others, and
  each death is a JSON line (1, 13); after a swap only the version served shows on /metrics (2);
- a body without a Content-Type is refused, from a browser everywhere, from any client where JSON is read (3);
- an empty MLENGINEER_API_KEY is refused naming it (4);
- a request that stops arriving gets a JSON 408, and one whose body stalls at shutdown a 503 soon (5);
- numbers far outside the training range are warned of and counted (6), a list nested too deeply is a 422 (7),
  fractions of a second reach uvicorn (8), a UTF-8 X-Request-ID is kept (9), the middleware's errors on
  /invocations carry MLflow's fields (10), unseen categories are counted (11), /docs opens without a key and
  says what it needs (12), and errors name the option or header at fault (13, 14).

Real servers: one worker on the salary model (a key, a 2 s read timeout) for what one process shows; two
workers on the churn model, from the registry and from a bundle folder, for what only workers show.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ConfigError, DataError, ServingError

from .conftest import run_cli
from .test_serve_basic import ServerProcess, running_server

pytestmark = [pytest.mark.slow, pytest.mark.long]  # make test-long: CI time

KEY = "mends4-key"
AUTH = {"x-api-key": KEY}
JSON = {"content-type": "application/json", **AUTH}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _lines(srv: ServerProcess) -> list[dict[str, Any]]:
    out = []
    for line in srv.output().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def _wait(found: Callable[[], Any], what: str, srv: ServerProcess, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen in {timeout} s\n{srv.output()[-4000:]}")


def _events(srv: ServerProcess, event: str) -> list[dict[str, Any]]:
    """The JSON lines whose event is ``event`` (or begins with it and a semicolon)."""
    return [x for x in _lines(srv) if x.get("event") == event or str(x.get("event")).startswith(event + ";")]


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got


def _port(srv: ServerProcess) -> int:
    return int(srv.url.rsplit(":", 1)[1])


# -- one worker on the salary model (a regression of categories only) ------------------------------------------

@pytest.fixture(scope="module")
def srv(salary_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("serve-mends4")
    with running_server(salary_model_dir, "--api-key", KEY, "--read-timeout", "2", "--max-body-mb", "0.5",
                        "--prediction-log", str(folder / "plog"), cwd=folder) as s:
        yield s


@pytest.fixture(scope="module")
def rows(salaries_csv: Path) -> pd.DataFrame:
    return pd.read_csv(salaries_csv).drop(columns=["salary_in_usd", "salary", "salary_currency"]).head(3)


@pytest.fixture(scope="module")
def name(salary_model_dir: Path) -> str:
    return mlengineer.load(salary_model_dir).name


def _oip(rows: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    inputs = [{"name": c, "datatype": "INT64" if rows[c].dtype.kind in "iu" else "BYTES", "shape": [len(rows)],
               "data": rows[c].tolist()} for c in rows.columns]
    return {"inputs": inputs, **extra}


def test_3_a_body_without_a_content_type_is_refused(srv: ServerProcess, rows: pd.DataFrame, name: str) -> None:
    records = json.dumps({"records": _records(rows)}).encode()
    split = json.dumps({"dataframe_records": _records(rows)}).encode()
    for path, body in (("/predict", records), ("/explain", records), ("/invocations", split)):
        r = httpx.post(f"{srv.url}{path}", content=body, headers=AUTH, timeout=60)  # before: 200, read as JSON
        assert r.status_code == 415, (path, r.text)
        assert "Content-Type" in r.json()["error"] and "application/json" in r.json()["error"], r.text
        assert httpx.post(f"{srv.url}{path}", content=body, headers=JSON, timeout=60).status_code == 200, path
    infer = f"{srv.url}/v2/models/{name}/infer"
    body = json.dumps(_oip(rows)).encode()
    # tritonclient and KServe's client send none to OIP's infer: taken from them, refused from a browser
    assert httpx.post(infer, content=body, headers=AUTH, timeout=60).status_code == 200
    for browser in ({"origin": "http://elsewhere.example"}, {"sec-fetch-mode": "no-cors"}):
        r = httpx.post(infer, content=body, headers={**AUTH, **browser}, timeout=60)
        assert r.status_code == 415 and "as a web page sends one" in r.json()["error"], r.text
    r = httpx.post(f"{srv.url}/predict", content=records, headers={**AUTH, "content-type": "text/plain"})
    assert r.status_code == 415, r.text


def test_4_an_empty_key_variable_is_refused_naming_it(salary_model_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("", "  "):  # before: "" served everyone, without a word; "  " named --api-key
        r = run_cli("serve", str(salary_model_dir), "--port", "0", cwd=tmp_path, timeout=120,
                    env={"MLENGINEER_API_KEY": value})
        assert r.returncode == 2, r.stdout + r.stderr
        assert "MLENGINEER_API_KEY is set but empty" in r.stderr and "--api-key" not in r.stderr, r.stderr
    from mlengineer.serving.settings import API_KEY_ENV, ServeSettings

    settings = ServeSettings(model="m")
    monkeypatch.setenv(API_KEY_ENV, "")
    with pytest.raises(ConfigError, match="MLENGINEER_API_KEY is set but empty"):
        settings.resolved_api_key()
    monkeypatch.setenv(API_KEY_ENV, "k")
    assert settings.resolved_api_key() == "k"
    monkeypatch.delenv(API_KEY_ENV)
    assert settings.resolved_api_key() is None


def test_5_a_request_that_stops_arriving_gets_a_json_408(srv: ServerProcess, rows: pd.DataFrame) -> None:
    port = _port(srv)
    headers = _raw(port, b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # before: held open indefinitely
    assert headers.startswith(b"HTTP/1.1 408"), headers[:200]
    assert b"application/json" in headers and b"--read-timeout" in headers.split(b"\r\n\r\n", 1)[1]
    body = _raw(port, f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {KEY}"
                      "\r\nX-Request-ID: stalled\r\nContent-Length: 1000\r\n\r\n{\"dataframe_records\": [".encode())
    assert body.startswith(b"HTTP/1.1 408"), body[:200]
    answer = json.loads(body.split(b"\r\n\r\n", 1)[1])
    assert "--read-timeout" in answer["error"] and answer["error_code"] == "BAD_REQUEST", answer
    assert _raw(port, b"") == b""  # a connection that sends nothing is closed
    assert httpx.get(f"{srv.url}/v2/health/ready").status_code == 200
    # a body that keeps moving may take longer in all (as nginx's client_body_timeout: a pause is what is bounded)
    body = json.dumps({"records": _records(rows)}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {KEY}\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        step = len(body) // 4 + 1
        for i in range(4):  # 4 pauses of 0.8 s: more than the 2 s read timeout in all, none near it alone
            time.sleep(0.8)
            s.sendall(body[i * step:(i + 1) * step])
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    _wait(lambda: [x for x in _lines(srv) if x.get("request_id") == "stalled" and x.get("status") == 408],
          "the stalled request's access line", srv, timeout=20)


def test_7_a_deeply_nested_list_is_a_422_naming_the_column(srv: ServerProcess, rows: pd.DataFrame) -> None:
    record = {**_records(rows)[0], "job_title": "DEEP"}
    deep = "[" * 1015 + "]" * 1015  # within orjson's depth, beyond what json.dumps can write
    for path, body in (("/predict", {"records": [record]}), ("/explain", {"records": [record]}),
                       ("/invocations", {"dataframe_records": [record]})):
        text = json.dumps(body).replace('"DEEP"', deep)
        r = httpx.post(f"{srv.url}{path}", content=text, headers=JSON, timeout=60)
        assert r.status_code == 422, (path, r.text[:300])  # before: 500 RecursionError
        assert "Column 'job_title', row 0" in r.json()["error"] and "nested too deeply" in r.json()["error"]
    from mlengineer.data.jsontable import plain_cell

    with pytest.raises(DataError, match="nested too deeply"):
        plain_cell(orjson.loads(deep))
    assert plain_cell([["a"], "b"]) == '[["a"], "b"]'


def test_9_a_utf8_request_id_is_kept_as_sent(srv: ServerProcess, rows: pd.DataFrame) -> None:
    from mlengineer.monitoring.prediction_log import read_prediction_log

    body = json.dumps({"records": _records(rows)[:1]}).encode()
    for sent, kept in (("réq-1".encode(), "réq-1"), (b"r\xe9q-2", "réq-2")):  # UTF-8, else Latin-1
        r = httpx.post(f"{srv.url}/predict", content=body, headers={**JSON, "x-request-id": sent}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == f"r%C3%A9q-{kept[-1]}"  # as an OIP body's id is: percent-encoded
    assert _wait(lambda: {x.get("request_id") for x in _lines(srv)} >= {"réq-1", "réq-2"}, "the access lines", srv)
    plog = srv.cwd / "plog"
    _wait(lambda: plog.exists() and {"réq-1", "réq-2"} <= set(read_prediction_log(plog)["_request_id"]),
          "the ids in the prediction log", srv, timeout=30)  # before: 'rÃ©q-1'


def test_10_middleware_errors_on_invocations_carry_mlflows_fields(srv: ServerProcess) -> None:
    url = f"{srv.url}/invocations"
    answers = {401: httpx.post(url, content=b"{}", headers={"content-type": "application/json"}),
               413: httpx.post(url, content=b" " * 600_000, headers=JSON),
               415: httpx.post(url, content=b"a,b", headers={**AUTH, "content-type": "text/plain"})}
    for status, r in answers.items():
        assert r.status_code == status, r.text
        got = r.json()
        assert got["error_code"] == "BAD_REQUEST" and got["message"] == got["error"], got  # before: error alone
    assert set(httpx.post(f"{srv.url}/predict", json={}).json()) == {"error"}  # other paths: as before


def test_11_an_unseen_category_warning_counts_its_rows(srv: ServerProcess, rows: pd.DataFrame) -> None:
    def unseen_rows() -> float:
        text = httpx.get(f"{srv.url}/metrics", headers=AUTH).text
        return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines()
                   if x.startswith("mlengineer_unseen_category_rows_total{") and 'column="job_title"' in x)

    before = unseen_rows()
    many = [{**_records(rows)[0], "job_title": f"Astronaut {i}"} for i in range(40)]
    r = httpx.post(f"{srv.url}/predict", json={"records": many}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    said = [w for w in r.json()["warnings"] if "'job_title'" in w]
    assert said == ["Column 'job_title': 40 rows hold categories the model never saw (the first, row 0: "
                    "'Astronaut 0'); each was predicted as a rare category."], said
    assert unseen_rows() - before == 40
    one = httpx.post(f"{srv.url}/predict", json={"records": many[:1]}, headers=AUTH, timeout=60).json()
    assert "Column 'job_title', row 0: the model never saw the category 'Astronaut 0';" in one["warnings"][0]


def test_12_the_docs_page_opens_without_a_key_and_says_what_it_needs(srv: ServerProcess, name: str) -> None:
    page = httpx.get(f"{srv.url}/docs")  # before: 401, which a browser's address bar cannot get past
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for words in ("cdn.jsdelivr.net", '"/openapi.json"', "README", "X-API-Key", "could not be loaded"):
        assert words in page.text, words
    assert name not in page.text and "job_title" not in page.text  # no model data in the shell
    assert httpx.get(f"{srv.url}/openapi.json").status_code == 401  # the document still needs the key
    doc = httpx.get(f"{srv.url}/openapi.json", headers=AUTH)
    assert doc.status_code == 200 and "ApiKey" in doc.json()["components"]["securitySchemes"]
    assert httpx.get(f"{srv.url}/metrics").status_code == 401


def test_13_messages_name_what_is_wrong(srv: ServerProcess, rows: pd.DataFrame, name: str) -> None:
    head = json.dumps({"inputs": [{"name": "remote_ratio", "datatype": "FP32", "shape": [1],
                                   "parameters": {"binary_data_size": 4}}]}).encode()
    r = httpx.post(f"{srv.url}/v2/models/{name}/infer", content=head + b"\x00\x00\x80\xff", timeout=60,
                   headers={**AUTH, "content-type": "application/octet-stream"})
    assert r.status_code == 400 and "no Inference-Header-Content-Length header" in r.json()["error"], r.text
    from mlengineer.serving.server import bind_socket

    with pytest.raises(ServingError) as e:  # before: "... choose another --port."
        bind_socket("nosuchhost.invalid", 0)
    assert "the host 'nosuchhost.invalid' is not known" in str(e.value) and "--port" not in str(e.value)
    try:
        bind_socket("10.255.255.1", 0).close()
    except ServingError as e2:
        assert "10.255.255.1 is not an address of this machine" in str(e2) and "--host" in str(e2)
    taken = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(ServingError, match="the port is in use .*choose another --port"):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_14_inputs_another_door_refuses_are_refused_here(srv: ServerProcess, rows: pd.DataFrame, name: str,
                                                         salary_model_dir: Path) -> None:
    infer = f"{srv.url}/v2/models/{name}/infer"
    for params, words in ((5, "'parameters' must be an object of inference parameters"),
                          ({"intervall": 0.9}, "'parameters' key 'intervall' is not one /v2/models/.../infer takes "
                                               "(did you mean 'interval'?)"),
                          ({"priority": 1}, "it takes interval, binary_data_output")):
        r = httpx.post(infer, json=_oip(rows, parameters=params), headers=AUTH, timeout=60)
        assert r.status_code == 422 and words in r.json()["error"], r.text  # before: 200, ignored
    r = httpx.post(infer, json=_oip(rows, parameters={"interval": 0.8, "binary_data_output": False}), headers=AUTH)
    assert r.status_code == 200 and {"lower", "upper"} <= {o["name"] for o in r.json()["outputs"]}, r.text
    r = httpx.post(f"{srv.url}/explain", json={"records": _records(rows), "class": "x"}, headers=AUTH, timeout=60)
    assert r.status_code == 422 and "Field 'class'" in r.json()["error"] and "no classes" in r.json()["error"], r.text
    n = len(mlengineer.load(salary_model_dir).extras["conformal"].scores_)
    too_much = 1 - 1 / (2 * (n + 1))
    r = httpx.post(f"{srv.url}/invocations", json={"dataframe_records": _records(rows), "params": {
        "interval": too_much}}, headers=AUTH, timeout=60)
    assert r.status_code == 422 and r.json()["error"].startswith("Field 'params.interval': "), r.text
    r = httpx.post(infer, json=_oip(rows, parameters={"interval": too_much}), headers=AUTH, timeout=60)
    assert r.status_code == 422 and r.json()["error"].startswith("Field 'parameters.interval': "), r.text


# -- without a server ----------------------------------------------------------------------------------------------

def test_6_the_server_and_predict_share_one_rule_for_far_numbers(churn_model_dir: Path, churn_csv: Path) -> None:
    from mlengineer.serving.batch import InputNotes
    from mlengineer.serving.validation import RequestValidator

    model = mlengineer.load(churn_model_dir)
    frame = pd.read_csv(churn_csv).drop(columns=["churn"]).head(40)
    low, high = RequestValidator(model).ranges["age"]
    width = high - low
    frame["age"] = [high + width * 1.001, low - width * 1.001, high + width * 0.999, 500.0] * 10  # far, far, near, far
    checked = RequestValidator(model).validate({c: frame[c].tolist() for c in frame.columns}, len(frame),
                                               nan_is_missing=True)
    notes = InputNotes(model)
    notes.add(frame)
    assert checked.far == {"age": 30} and notes.far["age"][0] == 30
    line = notes.lines()[0]
    assert checked.warnings == [line.replace("):", " in row 0):", 1)], (checked.warnings, line)  # the same words


def test_8_fractions_of_a_second_reach_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from fastapi import FastAPI

    from mlengineer.serving import app as app_module
    from mlengineer.serving import server
    from mlengineer.serving.settings import ServeSettings

    seen: dict[str, Any] = {}

    class Captured:
        def __init__(self, config: Any) -> None:
            seen["config"] = config

        def run(self, sockets: Any) -> None:
            pass

    monkeypatch.setattr(app_module, "create_app", lambda **_: FastAPI())
    monkeypatch.setattr(uvicorn, "Server", Captured)
    settings = ServeSettings(model="m", graceful_timeout=0.9, keep_alive=2.5, read_timeout=1.5)
    server._run_worker(settings.model_dump_json(), None)  # type: ignore[arg-type]
    config = seen["config"]  # before: int(0.9) == 0, no grace at all
    assert config.timeout_graceful_shutdown == 0.9 and config.timeout_keep_alive == 2.5
    assert config.http.__name__ == "ServiceProtocol" and config.http.read_timeout == 1.5


_RETIRED = """
import sys
from mlengineer.serving.metrics import Metrics
m = Metrics()
assert m.multiprocess
snapshot = {"columns": {"age": {"statistic": 0.01, "measure": "p-value", "test": "ks", "p_value": 0.01,
                                "distance": 0.5, "drifted": True, "missing": 0.0, "missing_training": 0.1}},
            "prediction": {"statistic": 0.2, "measure": "distance", "test": "wasserstein", "drifted": False},
            "estimate": {"value": 0.8, "low": 0.7, "high": 0.9}, "metric": "roc_auc", "reference": 0.85, "rows": 100}
m.set_model(model="m", version="1", previous=None)
m.set_live(model="m", version="1", snapshot=snapshot)
m.refused_version("m", "3")
m.set_model(model="m", version="2", previous=("m", "1"))
m.refused_version("m", None)
m.clear_live()
m.set_live(model="m", version="1", snapshot=snapshot)  # a refresh of the old version, late: dropped
sys.stdout.write(m.render().decode())
"""


def test_2_a_retired_version_leaves_the_multiprocess_page(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", _RETIRED], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    gauges = [x for x in r.stdout.splitlines() if x.startswith(_GAUGES)]
    info = [x for x in gauges if x.startswith("mlengineer_model_info{")]
    assert len(info) == 1 and 'version="2"' in info[0] and info[0].endswith(" 1.0"), gauges
    assert not [x for x in gauges if 'version="1"' in x or "model_refused{" in x], gauges  # before: kept, 1.0


_GAUGES = ("mlengineer_model_info", "mlengineer_model_refused", "mlengineer_drift_", "mlengineer_estimated_",
           "mlengineer_monitor_window_rows", "mlengineer_missing_share")


# -- two workers -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def churn_rows(churn_csv: Path) -> list[dict[str, Any]]:
    return _records(pd.read_csv(churn_csv).drop(columns=["churn"]))


def _serving(srv: ServerProcess) -> dict[int, str]:
    """Each worker that said it serves: its pid and version."""
    return {x["pid"]: x["version"] for x in _events(srv, "serving")}


def _new_worker(srv: ServerProcess, known: set[int]) -> tuple[int, str]:
    pid = _wait(lambda: next((p for p in _serving(srv) if p not in known), None), "a replacement worker", srv)
    return pid, _serving(srv)[pid]


def _versions(srv: ServerProcess, rows: list[dict[str, Any]], n: int = 10) -> list[tuple[int, str | None]]:
    """The status and model version of ``n`` requests, each on a connection of its own (any worker answers)."""
    out = []
    for _ in range(n):
        r = httpx.post(f"{srv.url}/predict", json={"records": rows[:2]}, timeout=60)
        out.append((r.status_code, r.headers.get("x-model-version")))
    return out


def test_1_2_workers_on_a_registry_alias_serve_one_version(churn_model_dir: Path, salary_model_dir: Path,
                                                           churn_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", alias="champion", tracking_uri=uri)
    with running_server("models:/churn@champion", "--workers", "2", "--tracking-uri", uri, "--poll-interval", "0.5",
                        "--no-prediction-log", "--no-access-log", cwd=tmp_path,
                        env={"MLENGINEER_MONITOR_EVERY_S": "0.5"}) as srv:
        first = _wait(lambda: _serving(srv) if len(_serving(srv)) == 2 else None, "two workers", srv)
        for i in range(40):  # rows for each worker's live monitor of version 1
            assert httpx.post(f"{srv.url}/predict", json={"records": churn_rows[5 * i:5 * i + 5]}).status_code == 200

        def gauges() -> list[str]:
            return [x for x in httpx.get(f"{srv.url}/metrics").text.splitlines() if x.startswith(_GAUGES)]

        _wait(lambda: [x for x in gauges() if x.startswith("mlengineer_monitor_window_rows") and 'version="1"' in x],
              "version 1's live gauges", srv)
        # 2. a swap: only version 2 shows, whichever worker answers the scrape
        register(churn_model_dir, "churn", tracking_uri=uri)
        promote("churn", "2", alias="champion", tracking_uri=uri)
        _wait(lambda: len([x for x in _events(srv, "model swapped") if x["version"] == "2"]) == 2, "both swaps", srv)
        shown = gauges()
        info = [x for x in shown if x.startswith("mlengineer_model_info{")]
        assert len(info) == 2 and all('version="2"' in x and x.endswith(" 1.0") for x in info), info
        assert not [x for x in shown if 'version="1"' in x], shown  # before: version 1's info and drift alarm kept

        # 1. a worker killed: its replacement serves version 2, as its sibling does; the death is one JSON line
        victim = next(iter(first))
        os.kill(victim, signal.SIGKILL)
        pid, version = _new_worker(srv, set(first))
        assert version == "2"
        died = [x for x in _events(srv, "worker died") if x["worker_pid"] == victim]
        assert died and died[0]["signal"] == "SIGKILL" and died[0]["had_started"] is True, died

        # a version the clients could not call, pointed at behind promote's back: refused, by replacements too
        register(salary_model_dir, "churn", tracking_uri=uri)
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "3")
        _wait(lambda: len(_events(srv, "new model version refused")) >= 2, "both refusals", srv)
        known = set(_serving(srv))
        os.kill(pid, signal.SIGKILL)
        newer, version = _new_worker(srv, known)
        assert version == "2"  # before: the refused version 3, on half the connections
        _wait(lambda: [x for x in _events(srv, "new model version refused") if x["pid"] == newer], "its refusal", srv)
        assert _versions(srv, churn_rows) == [(200, "2")] * 10

        # the registry away: a replacement cannot start, waits, and never takes the healthy worker down
        db = tmp_path / "reg.db"
        db.rename(tmp_path / "reg.db.away")
        before = set(_serving(srv))
        os.kill(newer, signal.SIGKILL)
        _wait(lambda: _events(srv, "worker could not start"), "a failed start", srv)
        _wait(lambda: [x for x in _events(srv, "worker died") if x["had_started"] is False], "its death", srv)
        assert _versions(srv, churn_rows) == [(200, "2")] * 10 and srv.proc.poll() is None
        assert "Traceback" not in srv.output()
        (tmp_path / "reg.db.away").rename(db)
        _, version = _new_worker(srv, before)
        assert version == "2"


def test_1_5_6_workers_on_a_bundle_folder(churn_model_dir: Path, salary_model_dir: Path,
                                          churn_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(churn_model_dir, bundle)
    with running_server(bundle, "--workers", "2", "--no-prediction-log", "--no-access-log", "--graceful-timeout", "20",
                        cwd=tmp_path) as srv:
        first = _wait(lambda: _serving(srv) if len(_serving(srv)) == 2 else None, "two workers", srv)
        # 6. numbers far outside the training range: said, and counted across the workers
        far = [{**r, "age": 500} for r in churn_rows[:2]] + churn_rows[2:3]
        for _ in range(3):
            r = httpx.post(f"{srv.url}/predict", json={"records": far}, timeout=60)
            assert r.status_code == 200, r.text
            said = [w for w in r.json()["warnings"] if "'age'" in w]  # before: no warning
            assert len(said) == 1 and said[0].startswith("Column 'age': 2 rows hold numbers far outside the training "
                                                         "range (") and "e.g. 500 in row 0): " in said[0], said
        counted = [x for x in httpx.get(f"{srv.url}/metrics").text.splitlines()
                   if x.startswith("mlengineer_far_values_total{") and 'column="age"' in x]
        assert sum(float(x.rsplit(" ", 1)[1]) for x in counted) == 6, counted

        # 1. the folder replaced (a retrain into the same --out), then a worker killed: the replacement serves
        # the snapshot taken at start, as its sibling does
        expected = httpx.post(f"{srv.url}/predict", json={"records": churn_rows[:3]}).json()
        shutil.rmtree(bundle)
        shutil.copytree(salary_model_dir, bundle)
        os.kill(next(iter(first)), signal.SIGKILL)
        _new_worker(srv, set(first))
        for _ in range(12):  # before: a salary model on half the connections
            r = httpx.post(f"{srv.url}/predict", json={"records": churn_rows[:3]}, timeout=60)
            assert r.status_code == 200 and r.json() == expected, r.text

        # 5. a body stalled at shutdown: a 503 once it pauses 2 s, not the whole grace period and a bare 500
        port = _port(srv)
        stalled = socket.create_connection(("127.0.0.1", port), timeout=60)
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000\r\n\r\n{\"records\": [")
        time.sleep(0.5)
        assert srv.stop() == 0
        got = b""
        while chunk := stalled.recv(65536):
            got += chunk
        stalled.close()
    assert got.startswith(b"HTTP/1.1 503"), got[:300]
    assert "shutting down" in json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]
    assert "Traceback" not in srv.output() and "CancelledError" not in srv.output()
