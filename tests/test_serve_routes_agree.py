"""``/predict`` and ``/explain`` take rows by one path: the same bad body gets the same 4xx and the same message
from both (NaN, infinity, unknown and missing columns, wrong types, a lone surrogate, no rows, rows that are not
objects, bodies that are not JSON), and the row limit is the same. /explain keeps its own limit and fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow

MAX_BATCH_ROWS = 150  # above /explain's own 100, so both limits can be reached

GOOD: dict[str, Any] = {"customer_id": "C1", "age": 40, "plan": "basic", "monthly_fee": 50.0, "tenure_months": 12,
                        "signup_date": "2024-01-19"}


def row(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def records(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"records": list(rows)}).encode()


def raw_row(**raw: str) -> bytes:
    """A body of one good row but for ``raw``: values (and the keys of new columns) written as raw JSON text,
    such as NaN or a lone surrogate's escape, which no JSON encoder writes."""
    fields = [f"{json.dumps(k)}: {raw.pop(k) if k in raw else json.dumps(v)}" for k, v in GOOD.items()]
    fields += [f'"{k}": {v}' for k, v in raw.items()]
    return ('{"records": [{' + ", ".join(fields) + "}]}").encode()


@pytest.fixture(scope="module")
def srv(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(churn_model_dir, "--max-batch-rows", str(MAX_BATCH_ROWS), "--no-prediction-log",
                        cwd=tmp_path_factory.mktemp("serve-agree")) as s:
        yield s


def post(srv: ServerProcess, path: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{srv.url}{path}", content=body, headers={"content-type": "application/json"}, timeout=60)


BAD_BODIES = {
    "nan": (raw_row(age="NaN"), 422, "'age', row 0: the value is NaN"),
    "infinity": (raw_row(monthly_fee="Infinity"), 422, "'monthly_fee', row 0: the value is infinite"),
    "minus infinity": (raw_row(tenure_months="-Infinity"), 422, "'tenure_months', row 0: the value is infinite"),
    "infinity as text": (records(row(age="inf")), 422, "'age', row 0: the value is infinite"),
    "unknown column": (records(row(colour="red")), 422, "Column 'colour' is not one the model knows"),
    "missing column": (records({k: v for k, v in GOOD.items() if k != "age"}), 422, "Column 'age' is missing"),
    "text for a number": (records(GOOD, row(age="old")), 422, "'age', row 1: must be a number; got 'old'"),
    "an object for a category": (records(row(plan={"name": "basic"})), 422, "'plan', row 0: must be a category"),
    "a bad date": (records(row(signup_date="31/02/2024")), 422, "'signup_date', row 0: must be a date"),
    "a number too large": (raw_row(age="1" + "0" * 400), 422, "'age', row 0: 1000"),
    "lone surrogate": (raw_row(plan='"\\ud800"'), 400, "records[0].plan holds \\ud800"),
    "lone surrogate in a key": (raw_row(**{"\\udc00": "1"}), 400, "the key '\\udc00' in records[0]"),
    "no rows": (b'{"records": []}', 422, "no rows"),
    "rows that are not objects": (b'{"records": [1, 2]}', 422, "records[0] must be a JSON object"),
    "records not a list": (b'{"records": {"age": 40}}', 422, "'records' must be a list"),
    "no records": (b'{"rows": []}', 422, "with 'records'"),
    "not rows": (b'"rows"', 422, "with 'records'"),  # a bare list of records is taken, as other servers do
    "not JSON": (b"{not json", 400, "not valid JSON"),
    "empty body": (b"", 400, "empty"),
    "too many rows": (records(*[GOOD] * (MAX_BATCH_ROWS + 1)), 413, f"at most {MAX_BATCH_ROWS}"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_predict_and_explain_answer_a_bad_body_alike(srv: ServerProcess, case: str) -> None:
    body, status, words = BAD_BODIES[case]
    predict, explain = post(srv, "/predict", body), post(srv, "/explain", body)
    assert predict.status_code == status, predict.text
    assert explain.status_code == status, explain.text
    assert explain.json() == predict.json(), (predict.text, explain.text)
    assert list(predict.json()) == ["error"] and words in predict.json()["error"], predict.text


def test_both_take_the_same_good_rows(srv: ServerProcess) -> None:
    body = records(GOOD, row(age=None, plan=None, signup_date=None), row(age="41", monthly_fee="1,250"),
                   row(plan="gold"))  # missing values, numbers as text, a category never seen
    predict, explain = post(srv, "/predict", body), post(srv, "/explain", body)
    assert predict.status_code == 200 and explain.status_code == 200, (predict.text, explain.text)
    outputs = [e["output"] for e in explain.json()["explanations"]]
    wanted = [p["probabilities"]["yes"] for p in predict.json()["predictions"]]
    assert outputs == pytest.approx(wanted, rel=1e-4)
    values = {c["column"]: c["value"] for c in explain.json()["explanations"][2]["contributions"]}
    assert values["age"] == "41" and values["monthly_fee"] == "1,250"  # each value as the request sent it


def test_explain_keeps_its_own_limit_and_fields(srv: ServerProcess) -> None:
    body = records(*[GOOD] * 101)
    assert post(srv, "/predict", body).status_code == 200
    r = post(srv, "/explain", body)
    assert r.status_code == 422 and "at most 100" in r.json()["error"], r.text
    for extra, words in [({"top": 0}, "Field 'top'"), ({"top": "x"}, "Field 'top'"),
                         ({"class": "maybe"}, "Field 'class': 'maybe' is not a class")]:
        r = post(srv, "/explain", json.dumps({"records": [GOOD], **extra}).encode())
        assert r.status_code == 422 and words in r.json()["error"], (extra, r.text)
    r = post(srv, "/explain", json.dumps({"records": [GOOD], "top": 2, "class": "no"}).encode())
    assert r.status_code == 200, r.text
    (only,) = r.json()["explanations"]
    assert only["explained"] == "probability of no" and len(only["contributions"]) == 2
