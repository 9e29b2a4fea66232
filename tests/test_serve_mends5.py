"""Mends to the server, each tried on a real server (or the real CLI):

1. a JSON body that names a key twice (a record's column, ``inputs``, an input's ``name``) is refused with a
   400 naming the key and where, on every route, as training's JSON reader refuses it; before, the last value
   was taken without a word. The check keeps orjson's speed (``jsonbody.parse_json``);
2. ``mlengineer serve`` takes a run id (``ID``, ``runs:/ID/model``) as every other command that takes a model
   does, with the same help and the same one-line errors;
3. under ``--workers`` a refused version's ``mlengineer_model_refused`` series reads as with one worker: one
   series per version, 1.0, whichever worker answers (before: one per worker, labelled by pid).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mlengineer.errors import MLEngineerError
from mlengineer.serving.jsonbody import parse_json

from .test_serve_basic import ServerProcess, running_server

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def run_id(churn_model_dir: Path) -> str:
    meta = json.loads((churn_model_dir / "artifacts" / "bundle" / "metadata.json").read_text())
    return str(meta["run_id"])


@pytest.fixture(scope="module")
def row(churn_csv: Path) -> dict[str, Any]:
    frame = pd.read_csv(churn_csv).drop(columns=["churn"]).head(1)
    return json.loads(frame.to_json(orient="records"))[0]


@pytest.fixture(scope="module")
def name(churn_model_dir: Path) -> str:
    import mlengineer

    return str(mlengineer.load(churn_model_dir).name)


@pytest.fixture(scope="module")
def srv(run_id: str, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The churn model served by its training's run id (item 2), which item 1's requests go to."""
    with running_server(f"runs:/{run_id}/model", "--tracking-uri", tracking_uri, "--no-prediction-log",
                        cwd=tmp_path_factory.mktemp("serve-mends5")) as s:
        yield s


def _post(srv: ServerProcess, path: str, text: str) -> httpx.Response:
    return httpx.post(f"{srv.url}{path}", content=text.encode(), headers=JSON, timeout=60)


def _with_repeat(row: dict[str, Any], column: str, value: Any) -> str:
    """The row as a JSON object whose ``column`` is named twice, ``value`` last."""
    return json.dumps(row)[:-1] + f", {json.dumps(column)}: {json.dumps(value)}}}"


def _oip(row: dict[str, Any]) -> list[dict[str, Any]]:
    types = {bool: "BOOL", int: "INT64", float: "FP64"}
    return [{"name": c, "shape": [1], "datatype": types.get(type(v), "BYTES"), "data": [v]} for c, v in row.items()]


# -- 1. a key named twice ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_1_a_key_named_twice_is_a_400_naming_it_on_every_route(srv: ServerProcess, row: dict[str, Any],
                                                               name: str) -> None:
    assert _post(srv, "/predict", json.dumps({"records": [row]})).status_code == 200  # the row alone is fine
    path = f"/v2/models/{name}/infer"
    twice = _with_repeat(row, "age", 99)
    cases = [
        ("/predict", f'{{"records": [{json.dumps(row)}, {twice}]}}', "'age'", "records[1]"),
        ("/predict", twice, "'age'", "the top object"),  # one row alone
        ("/explain", f'{{"records": [{twice}]}}', "'age'", "records[0]"),
        ("/invocations", f'{{"dataframe_records": [{twice}]}}', "'age'", "dataframe_records[0]"),
        ("/invocations", f'{{"dataframe_records": [{json.dumps(row)}], "dataframe_records": []}}',
         "'dataframe_records'", "the top object"),
        (path, '{"inputs": [], "inputs": ' + json.dumps(_oip(row)) + "}", "'inputs'", "the top object"),
        (path, json.dumps({"inputs": _oip(row)}).replace('"name": "age"', '"name": "age", "name": "plan"'),
         "'name'", "inputs["),
        # NaN: read by the standard library, which keeps the last value as orjson does
        ("/predict", f'{{"records": [{twice[:-1]}, "tenure": NaN}}]}}', "'age'", "records[0]"),
    ]
    for route, text, key, where in cases:
        json.loads(text)  # valid JSON all the same
        r = _post(srv, route, text)
        assert r.status_code == 400, (route, text[:200], r.status_code, r.text[:300])
        error = r.json()["error"]
        assert f"names the key {key} twice in {where}" in error and "send each key once" in error, (route, error)
        if route == "/invocations":  # MLflow's error fields, as every error there has them
            assert r.json()["error_code"] == "BAD_REQUEST" and r.json()["message"] == error
    # OIP's JSON sent as application/octet-stream without the binary header, as some clients do: the key named
    text = '{"inputs": [], "inputs": ' + json.dumps(_oip(row)) + "}"
    r = httpx.post(f"{srv.url}{path}", content=text.encode(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 400 and "names the key 'inputs' twice" in r.json()["error"], r.text[:300]


@pytest.mark.slow
def test_1_bodies_that_name_each_key_once_are_answered_as_before(srv: ServerProcess, row: dict[str, Any],
                                                                 name: str) -> None:
    plain = _post(srv, "/predict", json.dumps({"records": [row]})).json()["predictions"]
    # a key written with an escape, spaces and new lines around the colons
    escaped = json.dumps({"records": [row]}, indent=2).replace('"records"', '"rec\\u006frds"')
    for text in (escaped, json.dumps([row]), json.dumps({"records": [row], "interval": 0.9})):
        r = _post(srv, "/predict", text)
        assert r.status_code == 200, (text[:200], r.text[:300])
        assert r.json()["predictions"][0]["prediction"] == plain[0]["prediction"]
    r = _post(srv, "/invocations", json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}))
    assert r.status_code == 200, r.text[:300]
    r = _post(srv, f"/v2/models/{name}/infer", json.dumps({"id": "a:b:c", "inputs": _oip(row)}))  # colons in text
    assert r.status_code == 200 and r.json()["id"] == "a:b:c", r.text[:300]


def test_1_parse_json_finds_a_repeated_key_wherever_it_is() -> None:
    def refused(text: str) -> str:
        with pytest.raises(MLEngineerError) as e:
            parse_json(text.encode())
        return str(e.value)

    assert "'b' twice in [0].a" in refused('[{"a": {"b": 1, "c": ":", "b": 2}}]')
    assert "'a:' twice in the top object" in refused('{"a\\u003a": 1, "a:": 2}')  # one written escaped
    assert "'x' twice in records[1]" in refused('{"records": [{"x": 1}, {"x": Infinity, "x": 1}]}')  # std lib's way
    many = '{"records": [' + ",".join(['{"t": "10:00:00", "a": 1}'] * 3000) + ', {"t": "x", "t": "y"}]}'
    assert "'t' twice in records[3000]" in refused(many)  # a large body: counted with NumPy
    # no key twice: as read before, whatever colons and escapes the text holds
    for text in ('{"a\\u003a": "b:c", "d": "\\u003a"}', '{"t": "10:00", "u": "\\u00e9"}', '[]', '{}', '"a:b"',
                 '{"records": [{"x": 18446744073709551616}]}'):
        assert parse_json(text.encode()) == json.loads(text), text
    deep = '{"x": ' + "[" * 1015 + "]" * 1015 + ', "y": "a:b"}'  # deeper than orjson writes: read as it was
    value = parse_json(deep.encode())
    inner, depth = value["x"], 1
    while inner:
        inner, depth = inner[0], depth + 1
    assert depth == 1015 and value["y"] == "a:b"


# -- 2. serve takes a run id ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_2_serve_takes_a_run_id_and_says_so(srv: ServerProcess, run_id: str, name: str, row: dict[str, Any]) -> None:
    said = srv.output()
    assert f"Serving {name} version 1 (run {run_id}; binary" in " ".join(said.split()), said[:600]
    events = [json.loads(x) for x in said.splitlines() if x.startswith("{") and '"event":"serving"' in x]
    assert events and events[0]["version"] == "1", said[:1500]
    assert events[0]["source"].endswith("/model")  # the run's own bundle, served as a folder is
    r = httpx.post(f"{srv.url}/predict", json={"records": [row]}, timeout=60)
    assert r.status_code == 200 and r.headers["x-model-version"] == "1", r.text[:300]
    assert f'mlengineer_model_info{{model="{name}",version="1"}} 1.0' in httpx.get(f"{srv.url}/metrics").text


def test_2_serve_refuses_a_missing_run_id_in_one_line(run_id: str, tracking_uri: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mlengineer.cli import app
    from mlengineer.cli._common import MODEL_HELP

    missing = "0123456789abcdef0123456789abcdef"  # the store holds run_id's training, not this one
    runner = CliRunner()
    for spec, words in ((missing, f"error: There is no run {missing} in the tracking store"),
                        (f"runs:/{missing}/model", f"error: There is no run {missing} in the tracking store"),
                        (f"runs:/{missing}/other", f"names 'other' inside run {missing}"),
                        ("no-such-folder", "is neither a model bundle folder nor an MLflow run id")):
        out = runner.invoke(app, ["serve", spec, "--tracking-uri", tracking_uri, "--port", "0"])
        lines = out.output.strip().splitlines()  # before: "Model '.../ID' does not exist" for a run id
        assert out.exit_code == 2 and len(lines) == 1 and words in lines[0], (spec, out.output)
    shown = runner.invoke(app, ["serve", "--help"], terminal_width=400).output
    assert " ".join(MODEL_HELP.split()) in " ".join(shown.replace("│", " ").split()), shown


# -- 3. a refused version under --workers --------------------------------------------------------------------------

_WORKER = """
import sys
from mlengineer.serving.metrics import Metrics
m = Metrics()
assert m.multiprocess
m.set_model(model="m", version="1", previous=None)
m.refused_version("m", "2")
if sys.argv[1] == "alias-back":  # this worker has seen the alias come back; the other has not looked yet
    m.refused_version("m", None)
    sys.stdout.write(m.render().decode())
"""


def test_3_workers_show_one_refused_series_as_one_worker_does(tmp_path: Path) -> None:
    """Two worker processes' real multiprocess files: one still refuses version 2, one saw the alias come back."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for step in ("refuse", "alias-back"):
        r = subprocess.run([sys.executable, "-c", _WORKER, step], capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    refused = [x for x in lines if x.startswith("mlengineer_model_refused{")]
    assert refused == ['mlengineer_model_refused{model="m",version="2"} 1.0'], lines  # before: pid-labelled
    info = [x for x in lines if x.startswith("mlengineer_model_info{")]
    assert len(info) == 2 and all('pid="' in x for x in info), info  # a worker's own version stays its own


@pytest.mark.slow
@pytest.mark.long  # two workers take about 35 s to start on 2 busy cores: run by make test-long
def test_3_a_refused_version_reads_as_with_one_worker(churn_model_dir: Path, row: dict[str, Any],
                                                      tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    v2 = register(churn_model_dir, "churn", tracking_uri=uri)
    schema = Path(v2.source.removeprefix("file://")) / "artifacts" / "bundle" / "schema.json"
    schema.write_text(schema.read_text() + " ")  # its files in the store replaced: each worker refuses it

    def refused_lines(srv: ServerProcess) -> set[tuple[str, ...]]:
        """The refused series each of several fresh connections (any worker) shows."""
        seen = set()
        for _ in range(6):
            with httpx.Client() as c:
                text = c.get(f"{srv.url}/metrics", timeout=30).text
            seen.add(tuple(x for x in text.splitlines() if x.startswith("mlengineer_model_refused{")))
        return seen

    with running_server("models:/churn@champion", "--workers", "2", "--poll-interval", "0.3", "--tracking-uri",
                        uri, "--no-prediction-log", "--no-access-log", cwd=tmp_path) as srv:
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "2")
        want = {('mlengineer_model_refused{model="churn",version="2"} 1.0',)}
        deadline = time.time() + 60
        while refused_lines(srv) != want and time.time() < deadline:
            time.sleep(0.3)
        assert refused_lines(srv) == want, srv.output()[-2000:]  # before: one series per worker, pid-labelled
        r = httpx.post(f"{srv.url}/predict", json={"records": [row]}, timeout=60)
        assert r.status_code == 200 and r.headers["x-model-version"] == "1"
        # the alias back on the served version: gone from every worker's page
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "1")
        deadline = time.time() + 60
        while refused_lines(srv) != {()} and time.time() < deadline:
            time.sleep(0.3)
        assert refused_lines(srv) == {()}, srv.output()[-2000:]
