"""Every bad input gets a 4xx JSON answer that names the field and the problem; limits answer 413; the API
key guards everything but the health checks. The model has a column of every role (number, category,
true/false, date, free text), so each role's checks are exercised."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow

KEY = "s3cret-key"
WORDS = ["good", "bad", "late", "early", "refund", "great", "slow", "fast", "broken", "happy", "again", "never"]


@pytest.fixture(scope="module")
def roles_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "amount": rng.gamma(2.0, 50.0, n).round(2),
        "color": rng.choice(["red", "green", "blue"], n),
        "active": rng.choice([True, False], n),
        "joined": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "note": [" ".join(rng.choice(WORDS, 7)) + f" {i}" for i in range(n)],
    })
    df["bought"] = np.where((df["amount"] > 90) ^ (df["color"] == "red") ^ df["active"], "yes", "no")
    return df


@pytest.fixture(scope="module")
def roles_model_dir(roles_table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlengineer

    out = tmp_path_factory.mktemp("roles") / "roles-model"
    model = mlengineer.train(roles_table, "bought", time_budget=3, out=out, track=False)
    assert {c.name: c.role.value for c in model.schema.columns} == {
        "amount": "numeric", "color": "categorical", "active": "boolean", "joined": "datetime", "note": "text"}
    return out


GOOD: dict[str, Any] = {"amount": 12.5, "color": "red", "active": True, "joined": "2024-02-01", "note": "late refund again"}


def row(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


# -- the validator on its own: each role's checks ----------------------------------------------------------------

@pytest.fixture(scope="module")
def validator(roles_model_dir: Path):  # type: ignore[no-untyped-def]
    import mlengineer
    from mlengineer.serving.validation import RequestValidator

    return RequestValidator(mlengineer.load(roles_model_dir))


def _validate(validator, records: list[dict[str, Any]], **kw: Any):  # type: ignore[no-untyped-def]
    from mlengineer.serving.protocols import columns_from_records

    cols, n = columns_from_records(records)
    return validator.validate(cols, n, **kw)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("amount", "twelve", ["'amount'", "number", "'twelve'"]),
    ("amount", True, ["'amount'", "number"]),
    ("amount", [1, 2], ["'amount'", "a list"]),
    ("amount", float("nan"), ["'amount'", "NaN", "null"]),
    ("amount", float("inf"), ["'amount'", "infinite"]),
    ("amount", "inf", ["'amount'", "infinite"]),
    ("amount", 10**400, ["'amount'", "too large"]),
    ("color", {"a": 1}, ["'color'", "an object"]),
    ("color", float("nan"), ["'color'", "NaN"]),
    ("active", "maybe", ["'active'", "true or false", "'maybe'"]),
    ("active", 2, ["'active'", "true or false"]),
    ("joined", "31/02/2024", ["'joined'", "date like 2024-01-31"]),
    ("joined", 2024.5, ["'joined'", "date written as text"]),  # (20240201, ISO 8601's basic form, is a date)
    ("joined", "0781-05-24", ["'joined'", "between 1677 and 2262"]),  # beyond pandas' dates
    ("note", {"a": 1}, ["'note'", "text", "an object"]),  # a list is read as its JSON text, as readers do
])
def test_a_wrong_value_names_the_column_the_row_and_the_problem(validator, field: str, value: Any,  # type: ignore[no-untyped-def]
                                                                  words: list[str]) -> None:
    from mlengineer.errors import SchemaError

    with pytest.raises(SchemaError) as err:
        _validate(validator, [GOOD, row(**{field: value})])
    msg = str(err.value)
    assert "row 1" in msg, msg
    for w in words:
        assert w in msg, msg


def test_good_values_of_every_role_are_typed(validator) -> None:  # type: ignore[no-untyped-def]
    v = _validate(validator, [GOOD, row(amount="1,250", color=3, active="no", joined=None, note=None),
                              row(amount=None, color=None, active=0)])
    np.testing.assert_array_equal(v.columns["amount"], [12.5, 1250.0, np.nan])
    assert v.columns["color"] == ["red", "3", None]
    np.testing.assert_array_equal(v.columns["active"], [1.0, 0.0, 0.0])
    assert v.columns["joined"] == ["2024-02-01", None, "2024-02-01"]


@pytest.mark.parametrize("value", [True, False, 1, 0, 1.0, "1", "1.0", "0.0", " Yes ", "n", "F", "NA", "null", ""])
def test_yes_no_values_read_as_the_cleaning_plan_reads_them(validator, roles_model_dir: Path,  # type: ignore[no-untyped-def]
                                                            value: Any) -> None:
    """The server accepts a yes/no value exactly when training's cleaning plan does, with the same reading."""
    import mlengineer

    served = _validate(validator, [row(active=value)]).columns["active"][0]
    plan = mlengineer.load(roles_model_dir).plan
    cleaned = plan.apply(pd.DataFrame([row(active=value)]))["active"].iloc[0]
    assert (math.isnan(served) and math.isnan(cleaned)) or served == cleaned, (value, served, cleaned)


def test_nan_is_a_missing_value_only_where_asked(validator) -> None:  # type: ignore[no-untyped-def]
    v = _validate(validator, [row(amount=float("nan"), color=float("nan"))], nan_is_missing=True)
    assert math.isnan(v.columns["amount"][0]) and v.columns["color"] == [None]


@pytest.mark.parametrize(("policy", "outcome"), [("accept", "quiet"), ("warn", "warning"), ("reject", "error")])
def test_unseen_category_policy(roles_model_dir: Path, policy: str, outcome: str) -> None:
    import mlengineer
    from mlengineer.errors import SchemaError
    from mlengineer.serving.validation import RequestValidator

    v = RequestValidator(mlengineer.load(roles_model_dir), unseen_categories=policy)  # type: ignore[arg-type]
    if outcome == "error":
        with pytest.raises(SchemaError, match="'color', row 0: the model never saw the category 'purple'"):
            _validate(v, [row(color="purple")])
        return
    got = _validate(v, [row(color="purple")])
    assert got.warnings == ([] if outcome == "quiet" else [
        "Column 'color', row 0: the model never saw the category 'purple'; it was predicted as a rare category."])


def test_columns_missing_unknown_and_known_but_unused(validator) -> None:  # type: ignore[no-untyped-def]
    from mlengineer.errors import SchemaError

    with pytest.raises(SchemaError, match="Column 'joined' is missing"):
        _validate(validator, [{k: v for k, v in GOOD.items() if k != "joined"}])
    with pytest.raises(SchemaError, match="Column 'colour' is not one the model knows"):
        _validate(validator, [row(colour="red")])
    assert _validate(validator, [row(bought="yes")]).n_rows == 1  # the target: known, not used
    with pytest.raises(SchemaError, match="no rows"):
        _validate(validator, [])


# -- a real server with an API key, the strict category policy and small limits ----------------------------------

@pytest.fixture(scope="module")
def strict(roles_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cwd = tmp_path_factory.mktemp("serve-strict")
    with running_server(roles_model_dir, "--unseen-categories", "reject", "--max-body-mb", "0.05",
                        "--max-batch-rows", "20", "--no-prediction-log", cwd=cwd,
                        env={"MLENGINEER_API_KEY": KEY}) as s:
        s.name = mlengineer_name(roles_model_dir)  # type: ignore[attr-defined]
        yield s


def mlengineer_name(path: Path) -> str:
    import mlengineer

    return mlengineer.load(path).name


AUTH = {"x-api-key": KEY}


def post(srv: ServerProcess, path: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{srv.url}{path}", content=content,
                      headers={"content-type": "application/json", **AUTH, **(headers or {})}, timeout=30)


def test_the_api_key_is_needed_except_for_health(strict: ServerProcess) -> None:
    r = httpx.post(f"{strict.url}/predict", json={"records": [GOOD]})
    assert r.status_code == 401 and "API key" in r.json()["error"]
    assert httpx.post(f"{strict.url}/predict", json={"records": [GOOD]}, headers={"x-api-key": "wrong"}).status_code == 401
    assert httpx.get(f"{strict.url}/metrics").status_code == 401
    assert httpx.get(f"{strict.url}/v2/models/{strict.name}").status_code == 401
    for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health"):
        assert httpx.get(f"{strict.url}{path}").status_code == 200
    assert post(strict, "/predict", {"records": [GOOD]}).status_code == 200
    bearer = httpx.post(f"{strict.url}/predict", json={"records": [GOOD]}, headers={"authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200, bearer.text
    # the document names every input column and shows values from the training data: it needs the key too
    # (the docs page is open: a shell holding no model data, which asks for the key to read the document)
    assert httpx.get(f"{strict.url}/openapi.json").status_code == 401
    assert httpx.get(f"{strict.url}/docs").status_code == 200
    doc = httpx.get(f"{strict.url}/openapi.json", headers=AUTH).json()
    assert "ApiKey" in doc["components"]["securitySchemes"]


def test_unseen_category_rejected_by_policy(strict: ServerProcess) -> None:
    r = post(strict, "/predict", {"records": [GOOD, row(color="purple")]})
    assert r.status_code == 422 and "'color', row 1" in r.json()["error"] and "'purple'" in r.json()["error"]


@pytest.mark.parametrize(("raw", "status", "words"), [
    (b"", 400, ["empty"]),
    (b"{not json", 400, ["not valid JSON"]),
    (b'{"records": [{"amount": NaN, "color": "red", "active": true, "joined": null, "note": null}]}', 422, ["NaN"]),
    (b'{"records": [{"amount": Infinity, "color": "red", "active": true, "joined": null, "note": null}]}', 422, ["infinite"]),
    (b'{"records": []}', 422, ["no rows"]),
    (b'{"records": {"amount": 1}}', 422, ["'records' must be a list"]),
    (b'{"records": [1, 2]}', 422, ["records[0] must be a JSON object"]),
    (b'[1, 2]', 422, ["records[0] must be a JSON object"]),  # a bare list of records is taken, as other servers do
    (b'"rows"', 422, ["'records'"]),
    (b'{"rows": [{"amount": 1}]}', 422, ["or one row {column: value}"]),  # a list inside: not one row
])
def test_bad_bodies_on_predict(strict: ServerProcess, raw: bytes, status: int, words: list[str]) -> None:
    r = post(strict, "/predict", raw=raw)
    assert r.status_code == status, r.text
    for w in words:
        assert w in r.json()["error"]


def test_one_row_alone_is_answered_as_a_list_of_one(strict: ServerProcess) -> None:
    alone = post(strict, "/predict", GOOD)
    assert alone.status_code == 200, alone.text
    assert alone.json()["predictions"] == post(strict, "/predict", {"records": [GOOD]}).json()["predictions"]
    assert len(alone.json()["predictions"]) == 1
    # its keys are columns, not fields: a key named like a field is read as a column (unknown here)
    named = post(strict, "/predict", row(interval=0.9))
    assert named.status_code == 422 and "Column 'interval' is not one the model knows" in named.json()["error"]
    explained = post(strict, "/explain", GOOD)
    assert explained.status_code == 200 and len(explained.json()["explanations"]) == 1, explained.text
    bad = post(strict, "/predict", row(amount="lots"))
    assert bad.status_code == 422 and "'amount'" in bad.json()["error"], bad.text
    nested = post(strict, "/predict", row(amount={"net": 12.5}))  # not a nested JSON column of this model's
    assert nested.status_code == 422 and "'amount'" in nested.json()["error"] and "object" in nested.json()["error"]


def test_wrong_types_on_every_endpoint(strict: ServerProcess) -> None:
    bad = row(active="maybe")
    for path, body in [("/predict", {"records": [bad]}), ("/invocations", {"dataframe_records": [bad]}),
                       (f"/v2/models/{strict.name}/infer", {"inputs": [
                           {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "BOOL"
                            if isinstance(v, bool) else "FP64", "data": [v]} for k, v in bad.items()]})]:
        r = post(strict, path, body)
        assert r.status_code == 422 and "'active', row 0: must be true or false" in r.json()["error"], (path, r.text)


def test_body_and_row_limits_are_413(strict: ServerProcess) -> None:
    big = {"records": [row(note="x" * 1000)] * 60}  # ~65 KB > 0.05 MB
    r = post(strict, "/predict", big)
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as the body streams in
        data = json.dumps(big).encode()
        for i in range(0, len(data), 8192):
            yield data[i:i + 8192]

    r = httpx.post(f"{strict.url}/predict", content=chunks(), headers={"content-type": "application/json", **AUTH})
    assert r.status_code == 413, r.text
    r = post(strict, "/predict", {"records": [GOOD] * 21})
    assert r.status_code == 413 and "21 rows" in r.json()["error"] and "at most 20" in r.json()["error"]
    assert post(strict, "/predict", {"records": [GOOD] * 20}).status_code == 200


def test_invocations_bad_requests(strict: ServerProcess) -> None:
    r = post(strict, "/invocations", {"dataframe_records": [GOOD], "instances": [GOOD]})
    assert r.status_code == 422 and "exactly one of" in r.json()["error"]
    assert r.json()["error_code"] == "BAD_REQUEST" and r.json()["message"]  # what MLflow's clients read
    r = post(strict, "/invocations", {"instances": [[1, 2, 3]]})
    assert r.status_code == 422 and "named columns" in r.json()["error"]
    r = post(strict, "/invocations", {"dataframe_split": {"columns": ["amount"], "data": [[1, 2]]}})
    assert r.status_code == 422 and "dataframe_split.data[0]" in r.json()["error"]
    r = post(strict, "/invocations", raw=b"amount\n1\n", headers={"content-type": "application/xml"})
    assert r.status_code == 415 and "text/csv" in r.json()["error"]
    r = post(strict, "/invocations", {"dataframe_records": [row(amount=float("nan"))]})
    assert r.status_code == 200  # pandas' way of writing a missing value, as MLflow's clients send it
    r = post(strict, "/invocations", raw=b'{"dataframe_records": [{"amount": Infinity}]}')
    assert r.status_code == 422


def test_oip_bool_and_the_tensor_checks(strict: ServerProcess) -> None:
    def inp(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
        return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}

    good = [inp("amount", "FP32", [3.5, 120.0]), inp("color", "BYTES", ["red", "blue"]),
            inp("active", "BOOL", [True, False]), inp("joined", "BYTES", ["2024-01-02", "2023-05-06"]),
            inp("note", "BYTES", ["great fast", "slow refund"])]
    r = post(strict, f"/v2/models/{strict.name}/infer", {"inputs": good})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [2]
    cases = [
        ([inp("amount", "INT64", [3.5, 1])], "Input 'amount', element 0: datatype INT64 needs a whole number"),
        ([inp("amount", "FP64", [1.0, 2.0], shape=[3])], "has 2 values but its shape [3] holds 3"),
        ([inp("amount", "FP64", [1.0, 2.0], shape=[1, 2])], "send one value per row"),
        ([inp("amount", "FP16X", [1.0, 2.0])], "'datatype' must be one of"),
        ([inp("active", "BOOL", ["yes", True])], "datatype BOOL needs true or false"),
        ([inp("amount", "FP64", [1.0]), inp("color", "BYTES", ["red", "red"])], "has 2 rows; the inputs before it have 1"),
        ([inp("amount", "FP64", [1.0]), inp("amount", "FP64", [2.0])], "given twice"),
    ]
    for inputs, words in cases:
        rest = [g for g in good if g["name"] not in {i["name"] for i in inputs}]
        r = post(strict, f"/v2/models/{strict.name}/infer", {"inputs": inputs + rest})
        assert r.status_code == 422 and words in r.json()["error"], (words, r.text)
    r = post(strict, f"/v2/models/{strict.name}/infer", {"inputs": []})
    assert r.status_code == 422 and "'inputs' must be a non-empty list" in r.json()["error"]
    r = post(strict, f"/v2/models/{strict.name}/infer", {"inputs": good, "outputs": [{"name": "shap"}]})
    assert r.status_code == 422 and "'shap'" in r.json()["error"]
    r = post(strict, "/v2/models/other/infer", {"inputs": good})
    assert r.status_code == 404 and repr(strict.name) in r.json()["error"]
