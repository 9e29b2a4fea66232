"""The prediction endpoints' short way (``serving/lanes.py``) answers exactly as FastAPI's routing does: two
real servers on the same bundle, one with the short way and one without (``MLENGINEER_SERVE_LANES=0``), get the
same requests, good and bad, on every hot path, and must give the same status, body and headers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow

ROW: dict[str, Any] = {"customer_id": "C1", "age": 40, "plan": "basic", "monthly_fee": 50.0, "tenure_months": 12,
                       "signup_date": "2024-01-19"}
FEATURES = ["age", "plan", "monthly_fee", "tenure_months", "signup_date"]
HOT = ["/invocations", "/predict", "/v2/models/{model_name}/infer",
       "/v2/models/{model_name}/versions/{model_version}/infer"]


@pytest.fixture(scope="module")
def servers(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    args = ("--no-prediction-log", "--max-batch-rows", "50")
    with running_server(churn_model_dir, *args, cwd=tmp_path_factory.mktemp("lanes-on")) as on, \
            running_server(churn_model_dir, *args, cwd=tmp_path_factory.mktemp("lanes-off"),
                           env={"MLENGINEER_SERVE_LANES": "0"}) as off:
        yield on, off


@pytest.fixture(scope="module")
def name(churn_model_dir: Path) -> str:
    import mlengineer

    return mlengineer.load(churn_model_dir).name


def start_line(srv: ServerProcess) -> dict[str, Any]:
    lines = [json.loads(x) for x in srv.output().splitlines() if x.startswith("{")]
    return next(x for x in lines if x.get("event") == "serving")


def test_the_start_line_names_the_paths_taken_the_short_way(servers: tuple[ServerProcess, ServerProcess]) -> None:
    on, off = servers
    assert sorted(start_line(on)["short_paths"]) == sorted(HOT)
    assert start_line(off)["short_paths"] == []


def cases(name: str) -> list[tuple[str, str, bytes | str, str]]:
    """(method, path, body, content type): good bodies, bad ones, and paths near the hot ones."""
    split = {"dataframe_split": {"columns": FEATURES, "data": [[ROW[c] for c in FEATURES]]}}
    oip = {"inputs": [{"name": c, "shape": [2], "datatype": "BYTES" if c in ("plan", "signup_date") else "FP64",
                       "data": [ROW[c], ROW[c]]} for c in FEATURES], "id": "r1"}
    j = "application/json"
    return [
        ("POST", "/invocations", json.dumps(split), j),
        ("POST", "/invocations", json.dumps({**split, "params": {"interval": 0.9}}), j),
        ("POST", "/invocations", json.dumps({"dataframe_records": [ROW, {**ROW, "plan": "gold"}]}), j),
        ("POST", "/invocations", ",".join(FEATURES) + "\n" + ",".join(str(ROW[c]) for c in FEATURES) + "\n",
         "text/csv"),
        ("POST", "/invocations", "{not json", j),
        ("POST", "/invocations", json.dumps({"dataframe_records": [{**ROW, "age": "old"}]}), j),
        ("POST", "/invocations", json.dumps({"dataframe_records": [ROW] * 51}), j),
        ("POST", "/invocations", "<xml/>", "application/xml"),
        ("POST", "/predict", json.dumps({"records": [ROW]}), j),
        ("POST", "/predict", json.dumps({"records": [{**ROW, "colour": "red"}]}), j),
        ("POST", "/predict", json.dumps({"records": []}), j),
        ("POST", "/predict", json.dumps([ROW]), j),
        ("POST", f"/v2/models/{name}/infer", json.dumps(oip), j),
        ("POST", f"/v2/models/{name}/versions/1/infer", json.dumps(oip), j),
        ("POST", f"/v2/models/{name}/versions/7/infer", json.dumps(oip), j),
        ("POST", "/v2/models/no-such-model/infer", json.dumps(oip), j),
        ("POST", f"/v2/models/{name}/infer", json.dumps({"inputs": "x"}), j),
        ("POST", f"/v2/models/{name}/versions//infer", json.dumps(oip), j),
        ("POST", "/v2/models//infer", json.dumps(oip), j),
        ("POST", "/predict/", json.dumps({"records": [ROW]}), j),
        ("GET", "/predict", "", j),
        ("PUT", "/invocations", json.dumps(split), j),
    ]


def test_every_answer_is_the_same_either_way(servers: tuple[ServerProcess, ServerProcess], name: str) -> None:
    on, off = servers
    with httpx.Client(timeout=60, follow_redirects=False) as client:
        for method, path, body, ctype in cases(name):
            got = [client.request(method, f"{s.url}{path}", content=body, headers={"content-type": ctype})
                   for s in (on, off)]
            a, b = got
            where = f"{method} {path} {str(body)[:60]!r}"
            assert a.status_code == b.status_code, where
            assert a.content == b.content, where
            for header in ("content-type", "content-length", "x-model-version", "allow"):
                assert a.headers.get(header) == b.headers.get(header), f"{where}: {header}"
            # a redirect names its own server: the same path either way
            assert [h.get("location", "").split("/", 3)[-1] for h in (a.headers, b.headers)] == \
                [b.headers.get("location", "").split("/", 3)[-1]] * 2, where
            assert a.headers.get("x-request-id") and b.headers.get("x-request-id")


def requests_counted(srv: ServerProcess) -> dict[tuple[str, str], float]:
    counts: dict[tuple[str, str], float] = {}
    for line in httpx.get(f"{srv.url}/metrics", timeout=30).text.splitlines():
        if line.startswith("mlengineer_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels["endpoint"], labels["status"])
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_metrics_and_the_access_log_see_the_short_way(servers: tuple[ServerProcess, ServerProcess],
                                                      name: str) -> None:
    on, _ = servers
    before = requests_counted(on)
    body = json.dumps({"records": [ROW]})
    for _ in range(3):
        assert httpx.post(f"{on.url}/predict", content=body, timeout=30,
                          headers={"x-request-id": "lane-seen", "content-type": "application/json"}).status_code == 200
    after = requests_counted(on)
    assert after.get(("/predict", "200"), 0) - before.get(("/predict", "200"), 0) == 3
    missing = httpx.post(f"{on.url}/v2/models/nope/infer", content="{}", timeout=30)
    assert missing.status_code == 404
    assert requests_counted(on).get(("/v2/models/{model_name}/infer", "404"), 0) >= 1
    deadline = time.time() + 10  # the access log is written by its own thread
    while True:
        lines = [json.loads(x) for x in on.output().splitlines() if x.startswith("{")]
        seen = [x for x in lines if x.get("request_id") == "lane-seen"]
        if len(seen) >= 3 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(seen) == 3 and all(x["status"] == 200 and x["rows"] == 1 and x["path"] == "/predict" for x in seen)
