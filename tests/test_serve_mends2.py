"""Mends from a second new user's bug hunt on the server, each tried on a real server (or the real CLI):
text that means "no value" in a number column, bodies that are not JSON, compressed bodies (and a gzip bomb),
OIP values outside their datatype, unknown request fields, what ``models:/NAME`` serves and a registry
look-up failure logged at every poll."""

from __future__ import annotations

import gzip
import json
import struct
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import run_cli
from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow

#: texts a number column reads as missing: common ones, and the placeholders training learnt (" - n/a - ")
MISSING = ["NA", "N/A", "", "null", "unknown", "12k", " - n/a - "]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A price from an income (with a few texts training reads as missing), an age, a plan and a date."""
    rng = np.random.default_rng(0)
    n = 400
    income = rng.normal(50, 10, n).round(1).astype(object)
    income[[3, 50, 100, 200]] = ["unknown", "12k", "unknown", " - n/a - "]
    df = pd.DataFrame({"income": income, "age": rng.integers(20, 60, n), "plan": rng.choice(["a", "b"], n),
                       "joined": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d")})
    df["price"] = pd.to_numeric(df["income"], errors="coerce").fillna(50) * 3 + df["age"]
    path = tmp_path_factory.mktemp("mends2") / "prices.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(table: Path) -> Path:
    import mlengineer
    from mlengineer.data.clean import Conform

    out = table.parent / "prices-model"
    model = mlengineer.train(table, "price", families=["lightgbm"], time_budget=4, seed=0, out=out, track=False)
    conform = next(s for s in model.plan.steps if isinstance(s, Conform))
    assert conform.placeholders == {"income": ["- n/a -", "12k", "unknown"]}
    return out


@pytest.fixture(scope="module")
def srv(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import mlengineer

    with running_server(model_dir, "--no-prediction-log", "--max-body-mb", "1",
                        cwd=tmp_path_factory.mktemp("serve-mends2")) as s:
        s.name = mlengineer.load(model_dir).name  # type: ignore[attr-defined]
        yield s


def post(srv: ServerProcess, path: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{srv.url}{path}", content=content, headers={"content-type": "application/json",
                                                                    **(headers or {})}, timeout=60)


def infer_path(srv: ServerProcess) -> str:
    return f"/v2/models/{srv.name}/infer"  # type: ignore[attr-defined]


def oip(rows: list[dict[str, Any]], **types: str) -> dict[str, Any]:
    kinds = {"income": "BYTES", "age": "INT64", "plan": "BYTES", "joined": "BYTES", **types}
    def value(v: Any, datatype: str) -> Any:
        return str(v) if datatype == "BYTES" and v is not None else v  # a BYTES tensor holds text

    return {"inputs": [{"name": c, "shape": [len(rows)], "datatype": t, "data": [value(r[c], t) for r in rows]}
                       for c, t in kinds.items()]}


ROW = {"income": 41.5, "age": 30, "plan": "a", "joined": "2024-01-05"}


# 1. text that means "no value" in a number column ---------------------------------------------------------------

@pytest.mark.long
def test_missing_value_texts_in_a_number_column_are_missing_on_every_route_as_predict_reads_them(
        srv: ServerProcess, model_dir: Path, tmp_path: Path) -> None:
    rows = [{**ROW, "income": text} for text in MISSING] + [ROW, {**ROW, "income": None, "joined": "NA"}]
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    r = run_cli("predict", str(model_dir), str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    offline = pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()
    assert len(set(offline[:len(MISSING)])) == 1 and offline[-2] != offline[0]  # all missing; a number is not
    answers = {
        "/predict": post(srv, "/predict", {"records": rows}),
        "/invocations": post(srv, "/invocations", {"dataframe_records": rows}),
        "CSV": post(srv, "/invocations", raw=frame.to_csv(index=False).encode(), headers={"content-type": "text/csv"}),
        "OIP": post(srv, infer_path(srv), oip(rows)),
    }
    for route, a in answers.items():  # before the mend: 422 "must be a number; got 'NA'" (and 'unknown', ...)
        assert a.status_code == 200, (route, a.text)
        got = a.json()["outputs"][0]["data"] if route == "OIP" else [p["prediction"] for p in a.json()["predictions"]]
        np.testing.assert_allclose(got, offline, rtol=1e-9, err_msg=route)


def test_other_text_in_a_number_column_is_still_refused_naming_it(srv: ServerProcess) -> None:
    rows = [ROW, {**ROW, "income": "banana"}]
    csv = pd.DataFrame(rows).to_csv(index=False).encode()
    for a in (post(srv, "/predict", {"records": rows}), post(srv, "/invocations", {"dataframe_records": rows}),
              post(srv, "/invocations", raw=csv, headers={"content-type": "text/csv"}),
              post(srv, infer_path(srv), oip(rows))):
        assert a.status_code == 422, a.text
        assert "Column 'income', row 1: must be a number; got 'banana'" in a.json()["error"], a.text


# 2. bodies that are not JSON ---------------------------------------------------------------------------------

def test_a_body_that_is_neither_json_nor_csv_gets_415_naming_what_is_taken(srv: ServerProcess) -> None:
    body = {"records": [ROW]}
    for path in ("/predict", "/explain", infer_path(srv), "/invocations"):
        a = post(srv, path, body, headers={"content-type": "application/xml"})
        assert a.status_code == 415, (path, a.text)  # before the mend: read as JSON (and answered 200)
        assert "'application/xml'" in a.json()["error"] and "application/json" in a.json()["error"], a.text
    csv = post(srv, "/predict", raw=b"income,age\n1,2\n", headers={"content-type": "text/csv"})
    assert csv.status_code == 415 and "/predict" in csv.json()["error"], csv.text
    for ctype in ("application/json; charset=utf-8", "application/vnd.rows+json"):
        assert post(srv, "/predict", body, headers={"content-type": ctype}).status_code == 200, ctype
    # none: refused where JSON is read (a page's sendBeacon sends none), taken by OIP's infer (tritonclient sends none)
    assert post(srv, "/predict", body, headers={"content-type": ""}).status_code == 415
    assert post(srv, infer_path(srv), oip([ROW]), headers={"content-type": ""}).status_code == 200
    octet = post(srv, infer_path(srv), oip([ROW]), headers={"content-type": "application/octet-stream"})
    assert octet.status_code == 200, octet.text  # how KServe's client sends binary tensor data


# 3. compressed bodies -------------------------------------------------------------------------------------------

def test_gzip_and_deflate_bodies_are_read(srv: ServerProcess) -> None:
    body = json.dumps({"records": [ROW, {**ROW, "income": "NA"}]}).encode()
    plain = post(srv, "/predict", raw=body)
    assert plain.status_code == 200, plain.text
    raw_deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    for encoding, packed in (("gzip", gzip.compress(body)), ("GZip", gzip.compress(body)),
                             ("deflate", zlib.compress(body)),
                             ("deflate", raw_deflate.compress(body) + raw_deflate.flush())):
        a = post(srv, "/predict", raw=packed, headers={"content-encoding": encoding})
        assert a.status_code == 200 and a.json() == plain.json(), (encoding, a.text)  # before: 400 not JSON
    csv = gzip.compress(pd.DataFrame([ROW]).to_csv(index=False).encode())
    a = post(srv, "/invocations", raw=csv, headers={"content-type": "text/csv", "content-encoding": "gzip"})
    assert a.status_code == 200, a.text


def test_tritonclient_compressed_requests(srv: ServerProcess) -> None:
    import tritonclient.http as th

    client = th.InferenceServerClient(url=srv.url.removeprefix("http://"))
    tensors = []
    for spec in oip([ROW, {**ROW, "income": "N/A"}])["inputs"]:
        t = th.InferInput(spec["name"], spec["shape"], spec["datatype"])
        t.set_data_from_numpy(np.array(spec["data"], dtype=np.int64 if spec["datatype"] == "INT64" else object))
        tensors.append(t)
    results = [client.infer(srv.name, tensors, request_compression_algorithm=c).as_numpy("prediction")  # type: ignore[attr-defined]
               for c in (None, "gzip", "deflate")]
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


def test_bad_compressed_bodies_and_other_encodings(srv: ServerProcess) -> None:
    body = json.dumps({"records": [ROW]}).encode()
    for encoding in ("br", "zstd", "gzip, gzip"):
        a = post(srv, "/predict", raw=body, headers={"content-encoding": encoding})
        assert a.status_code == 415, (encoding, a.text)
        assert f"'{encoding}'" in a.json()["error"] and "gzip or deflate" in a.json()["error"], a.text
    a = post(srv, "/predict", raw=body, headers={"content-encoding": "gzip"})
    assert a.status_code == 400 and "not gzip data" in a.json()["error"], a.text
    a = post(srv, "/predict", raw=gzip.compress(body)[:-12], headers={"content-encoding": "gzip"})
    assert a.status_code == 400 and "ends inside its gzip data" in a.json()["error"], a.text
    assert post(srv, "/predict", raw=body, headers={"content-encoding": "identity"}).status_code == 200


def gzip_bomb(megabytes: int) -> bytes:
    """A gzip body of ``megabytes`` MiB of zeros, about a thousandth of that size."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join([*(c.compress(zeros) for _ in range(megabytes)), c.flush()])


def test_a_gzip_bomb_is_refused_with_413(srv: ServerProcess) -> None:
    bomb = gzip_bomb(64)
    assert len(bomb) < 1 << 20  # under the server's 1 MB limit as sent
    a = post(srv, "/predict", raw=bomb, headers={"content-encoding": "gzip"})
    assert a.status_code == 413 and "too large once decompressed" in a.json()["error"], a.text
    assert post(srv, "/predict", {"records": [ROW]}).status_code == 200  # and the server serves on


def test_a_bomb_is_refused_having_inflated_little_more_than_the_limit() -> None:
    from mlengineer.serving.encoding import STEP, Inflater
    from mlengineer.serving.errors import PayloadTooLarge

    bomb, limit = gzip_bomb(256), 1 << 20
    inflater = Inflater("gzip", limit, "too large")
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            for at in range(0, len(bomb), 65536):  # in the chunks a server receives
                inflater.feed(bomb[at:at + 65536], final=at + 65536 >= len(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert inflater.size <= limit + STEP
    assert peak < 4 * limit, peak  # not the 256 MiB it would make


# 4. OIP values outside their datatype ---------------------------------------------------------------------------

@pytest.mark.parametrize(("datatype", "value", "words"), [
    ("INT8", 300, "from -128 to 127"), ("INT8", -129, "from -128 to 127"), ("UINT8", -1, "from 0 to 255"),
    ("UINT8", 256, "from 0 to 255"), ("INT16", 40000, "from -32768 to 32767"), ("UINT32", 2**32, "to 4294967295"),
    ("INT64", 2**63, "to 9223372036854775807"), ("UINT64", -5, "from 0 to"), ("FP16", 70000.0, "-65504 and 65504"),
    ("FP32", 1e39, "a number between"), ("BOOL", 2, "true or false")])
def test_an_oip_value_outside_its_datatype_is_named(srv: ServerProcess, datatype: str, value: Any,
                                                    words: str) -> None:
    a = post(srv, infer_path(srv), oip([{**ROW, "age": value}], age=datatype))
    assert a.status_code == 422, a.text  # before the mend: accepted (and predicted)
    assert f"Input 'age', element 0: datatype {datatype} needs" in a.json()["error"] and words in a.json()["error"]


def test_oip_values_inside_their_datatype_and_binary_bools(srv: ServerProcess) -> None:
    for datatype, value in (("INT8", 127), ("UINT8", 255), ("INT16", -32768), ("FP16", 65504.0), ("FP32", 30.0)):
        a = post(srv, infer_path(srv), oip([{**ROW, "age": value}], age=datatype))
        assert a.status_code == 200, (datatype, a.text)
    header = oip([ROW, ROW])
    header["inputs"][1] = {"name": "age", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}
    head = json.dumps(header).encode()
    a = post(srv, infer_path(srv), raw=head + struct.pack("<2B", 1, 2),
             headers={"Inference-Header-Content-Length": str(len(head)), "content-type": "application/octet-stream"})
    assert a.status_code == 422, a.text  # before the mend: the byte 2 read as true
    assert "Input 'age', element 1: datatype BOOL needs the byte 0 (false) or 1 (true); got 2" in a.json()["error"]


# 5. unknown request fields ----------------------------------------------------------------------------------------

def test_an_unknown_field_is_named_with_those_each_route_takes(srv: ServerProcess) -> None:
    rows = [ROW]
    cases = [("/predict", {"records": rows, "intervall": 0.9}, "'intervall'", "(did you mean 'interval'?)",
              "records, interval"),
             ("/explain", {"records": rows, "tops": 2}, "'tops'", "(did you mean 'top'?)", "records, top, class"),
             ("/invocations", {"instance": rows}, "'instance'", "(did you mean 'instances'?)",
              "dataframe_split, dataframe_records, instances, inputs, params"),
             ("/invocations", {"instances": rows, "parms": {}}, "'parms'", "(did you mean 'params'?)",
              "dataframe_split, dataframe_records, instances, inputs, params"),
             (infer_path(srv), {**oip(rows), "input": []}, "'input'", "(did you mean 'inputs'?)",
              "id, parameters, inputs, outputs")]
    for path, body, field, near, taken in cases:
        a = post(srv, path, body)
        assert a.status_code == 422, (path, a.text)  # before the mend: ignored, and answered 200
        assert f"Field {field} is not one" in a.json()["error"] and near in a.json()["error"], a.text
        assert f"it takes {taken}" in a.json()["error"], a.text


def test_the_fields_each_route_takes_are_still_taken(srv: ServerProcess) -> None:
    rows = [ROW]
    assert post(srv, "/predict", {"records": rows, "interval": 0.9}).status_code == 200
    assert post(srv, "/predict", rows).status_code == 200
    assert post(srv, "/explain", {"records": rows, "top": 2, "class": None}).status_code == 200
    assert post(srv, "/invocations", {"dataframe_records": rows, "params": {"interval": 0.9}}).status_code == 200
    full = {**oip(rows), "id": "r1", "parameters": {"interval": 0.9}, "outputs": [{"name": "prediction"}],
            "model_name": srv.name}  # type: ignore[attr-defined]  # (KServe's REST client sends model_name)
    a = post(srv, infer_path(srv), full)
    assert a.status_code == 200 and a.json()["id"] == "r1", a.text
    doc = httpx.get(f"{srv.url}/openapi.json").json()
    assert doc["components"]["schemas"]["InferRequest"]["additionalProperties"] is False


# 6. and 7. what models:/NAME serves, and an alias that goes away ---------------------------------------------------

@pytest.fixture(scope="module")
def plan_model_dir(table: Path) -> Path:
    """Another task on the same table (the plan, a class): clients of the price model could not use it."""
    import mlengineer

    out = table.parent / "plan-model"
    mlengineer.train(pd.read_csv(table), "plan", families=["lightgbm"], time_budget=3, seed=0, out=out, track=False)
    return out


def start_line(srv: ServerProcess) -> str:
    return " ".join(srv.output().split())  # the console wraps long lines


def test_models_name_serves_the_champion_not_a_newer_refused_version(
        model_dir: Path, plan_model_dir: Path, tmp_path: Path) -> None:
    from mlengineer.errors import ModelError
    from mlengineer.tracking.registry import promote, register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(model_dir, "prices", tracking_uri=uri)
    promote("prices", 1, tracking_uri=uri)
    register(plan_model_dir, "prices", tracking_uri=uri)
    with pytest.raises(ModelError, match="cannot take the alias 'champion'"):
        promote("prices", 2, tracking_uri=uri)
    env = {"PYTHONUNBUFFERED": "1"}
    with running_server("models:/prices", "--tracking-uri", uri, "--no-prediction-log", cwd=tmp_path, env=env) as s:
        a = httpx.post(f"{s.url}/predict", json=[ROW], timeout=60)
        line = start_line(s)
    assert a.status_code == 200 and a.headers["x-model-version"] == "1", a.text  # before the mend: version 2
    assert "Serving prices version 1 (models:/prices, which its alias 'champion' names;" in line, line
    assert "warning" not in line, line
    # no champion, and an alias on another version than the newest: the newest, with a warning that says so
    mlflow_client(uri).delete_registered_model_alias("prices", "champion")
    promote("prices", 1, alias="staging", tracking_uri=uri)
    with running_server("models:/prices", "--tracking-uri", uri, "--no-prediction-log", cwd=tmp_path, env=env) as s:
        line = start_line(s)
    assert "Serving prices version 2 (models:/prices, its newest version: no version has the alias 'champion';" \
        in line, line
    assert ("warning: models:/prices serves version 2, which no alias names (staging names version 1): serve "
            "models:/prices@staging") in line, line


def test_a_deleted_alias_is_logged_once_and_its_return_once(model_dir: Path, tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(model_dir, "prices", tracking_uri=uri)
    promote("prices", 1, tracking_uri=uri)
    with running_server("models:/prices@champion", "--tracking-uri", uri, "--poll-interval", "0.1",
                        "--no-prediction-log", cwd=tmp_path) as s:
        mlflow_client(uri).delete_registered_model_alias("prices", "champion")
        deadline = time.time() + 60
        while "registry look-up failed" not in s.output() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # many more polls, each failing the same way
        failed = s.output().count("registry look-up failed")
        promote("prices", 1, tracking_uri=uri)
        while "registry look-up works again" not in s.output() and time.time() < deadline + 30:
            time.sleep(0.1)
        answer = httpx.post(f"{s.url}/predict", json=[ROW], timeout=60)
        log = s.output()
    assert failed == 1, log[-3000:]  # before the mend: once a poll
    assert log.count("registry look-up failed") == 1 and log.count("registry look-up works again") == 1, log[-3000:]
    assert "has no alias 'champion'" in log, log[-3000:]
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "1", answer.text
