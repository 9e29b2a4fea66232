"""Mends from a third bug hunt on the server: /invocations' 'params' checked as every other field is, a CSV
body's declared charset honoured, a client's long value cut short where an answer echoes it, OIP data nested
otherwise than its shape refused, and a coverage more than the calibration rows can promise refused alike by
the server, the Python API, batch prediction and Spark's driver-side check. One real server (the salary
model) for what only the routes do; the rest calls the protocol decoders, the validator and the model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ConfigError, MLEngineerError, SchemaError
from mlengineer.evaluation.intervals import ConformalClassifier, ConformalRegressor, check_supported
from mlengineer.serving.csvbody import charset_of
from mlengineer.serving.errors import BadRequest, UnsupportedMediaType
from mlengineer.serving.protocols import check_fields, columns_from_csv, columns_from_oip, shown
from mlengineer.serving.validation import RequestValidator

from .conftest import run_cli
from .test_serve_basic import ServerProcess, running_server
from .test_serve_mends import records as _records

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def srv(salary_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(salary_model_dir, "--no-prediction-log", cwd=tmp_path_factory.mktemp("serve-mends3")) as s:
        yield s


@pytest.fixture(scope="module")
def salary_rows(salaries_csv: Path) -> pd.DataFrame:
    return pd.read_csv(salaries_csv).drop(columns=["salary_in_usd", "salary", "salary_currency"]).head(3)


def split_body(rows: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    records = _records(rows)
    return {"dataframe_split": {"columns": list(rows.columns), "data": [list(r.values()) for r in records]}, **extra}


# -- 1. /invocations' params --------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "named"), [
    ("x", "'params' must be an object"),                        # before: 200, the params dropped
    ([0.9], "'params' must be an object"),
    ({"foo": 1}, "'params' key 'foo' is not one /invocations takes; it takes interval"),
    ({"intervall": 0.9}, "did you mean 'interval'?"),
    ({"interval": 2}, "'params.interval' must be a coverage between 0 and 1"),  # as /predict checks 'interval'
    ({"interval": "0.9"}, "'params.interval' must be a coverage between 0 and 1"),
])
def test_invocations_refuses_bad_or_unknown_params_by_name(srv: ServerProcess, salary_rows: pd.DataFrame,
                                                           params: Any, named: str) -> None:
    r = httpx.post(f"{srv.url}/invocations", json=split_body(salary_rows, params=params), timeout=60)
    assert r.status_code == 422, r.text
    assert named in r.json()["error"], r.text


def test_invocations_still_takes_its_interval_and_no_params(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    for params in (None, {}, {"interval": 0.9}):
        body = split_body(salary_rows) if params is None else split_body(salary_rows, params=params)
        r = httpx.post(f"{srv.url}/invocations", json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert ("lower" in r.json()["predictions"][0]) == bool(params), r.text
    r = httpx.post(f"{srv.url}/invocations", json=split_body(salary_rows, params=None), timeout=60)
    assert r.status_code == 200, r.text  # null: no params, as a client that sends its default writes it


# -- 2. a CSV body's charset ------------------------------------------------------------------------------------

def test_a_csv_body_is_read_in_its_declared_charset(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    rows = salary_rows.assign(job_title=["Científico de Datos", "Ingénieur", "Data Engineer"])
    text = rows.to_csv(index=False)
    answers = {ct: httpx.post(f"{srv.url}/invocations", content=text.encode(enc), timeout=60,
                              headers={"content-type": ct})
               for ct, enc in [("text/csv; charset=latin-1", "latin-1"), ('text/csv; Charset="ISO-8859-1"', "latin-1"),
                               ("text/csv; charset=cp1252", "cp1252"), ("text/csv; charset=utf-16", "utf-16"),
                               ("text/csv", "utf-8"), ("text/csv; charset=utf-8", "utf-8-sig")]}
    for ct, r in answers.items():  # before: 400 "'utf-8' codec can't decode byte 0xed" for latin-1
        assert r.status_code == 200, (ct, r.text)
        assert r.json() == answers["text/csv"].json(), ct  # the same rows (and warnings naming them), read alike


def test_an_undecodable_or_unknown_charset_says_what_to_send(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    latin = salary_rows.assign(job_title="Científico").to_csv(index=False).encode("latin-1")
    r = httpx.post(f"{srv.url}/invocations", content=latin, headers={"content-type": "text/csv"}, timeout=60)
    assert r.status_code == 400, r.text
    assert "not UTF-8" in r.text and "declare its charset" in r.text and "line 2" in r.text, r.text
    r = httpx.post(f"{srv.url}/invocations", content=latin, headers={"content-type": "text/csv; charset=klingon"},
                   timeout=60)
    assert r.status_code == 415 and "'klingon'" in r.text, r.text
    with pytest.raises(UnsupportedMediaType, match="'base64' is not a text encoding"):
        columns_from_csv(b"a\n1\n", "base64")  # a codec Python knows, but not of text
    with pytest.raises(BadRequest, match="not cp1252 text, as its Content-Type says: byte 0x81"):
        columns_from_csv(b"a,b\n\x81,1\n", "cp1252")
    assert charset_of("text/csv") is None and charset_of("text/csv;charset=\"UTF-16\" ") == "UTF-16"


# -- 3. long client values cut short where an answer echoes them ------------------------------------------------

def test_an_unseen_category_warning_cuts_a_long_value_short(salary_model_dir: Path, salary_rows: pd.DataFrame) -> None:
    validator = RequestValidator(mlengineer.load(salary_model_dir))
    column = sorted(validator.categories)[0]  # a category column whose every category the model knows
    columns = {c: [v] for c, v in _records(salary_rows)[0].items()}
    columns[column] = ["x" * 100_000]  # before: the whole value in the warning, a 100 KB answer
    warnings = validator.validate(columns, 1).warnings
    assert len(warnings) == 1 and repr(column) in warnings[0], warnings
    assert len(warnings[0]) < 300 and "'" + "x" * 59 + "…' (100,000 characters)" in warnings[0], warnings[0][:400]
    columns[column] = ["Astronaut"]  # a short one as it is
    assert "the category 'Astronaut';" in validator.validate(columns, 1).warnings[0]


def test_long_field_names_and_values_are_cut_short_in_errors() -> None:
    key = "k" * 100_000
    with pytest.raises(SchemaError) as e:
        check_fields({key: 1}, ("records", "interval"), "/predict")
    assert len(str(e.value)) < 300 and "(100,000 characters)" in str(e.value)
    with pytest.raises(SchemaError) as e:
        columns_from_oip({"inputs": [{"name": key, "datatype": "FP64", "shape": [1], "data": [1.0]},
                                     {"name": key, "datatype": "FP64", "shape": [1], "data": [1.0]}]})
    assert len(str(e.value)) < 300, str(e.value)[:400]
    with pytest.raises(SchemaError) as e:
        columns_from_oip({"inputs": [{"name": "a", "datatype": "BOOL", "shape": [1], "data": [key]}]})
    assert len(str(e.value)) < 300, str(e.value)[:400]
    assert shown("plan") == "'plan'" and shown(12) == "12" and shown("é" * 61) == "'" + "é" * 59 + "…' (61 characters)"


# -- 4. OIP data nested as its shape says -----------------------------------------------------------------------

def _oip(shape: list[int], data: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "amount", "datatype": "FP64", "shape": shape, "data": data}]}


@pytest.mark.parametrize(("shape", "data", "where"), [
    ([3], [[1.0, 2.0], [3.0]], "data holds 2 values where its shape [3] has 3"),  # before: 200, flattened
    ([3], [1.0, [2.0], 3.0], "nested deeper than its shape [3]"),
    ([3], [[1.0], [2.0], [3.0]], "nested deeper than its shape [3]"),
    ([3, 1], [[1.0, 2.0, 3.0]], "data holds 1 value where its shape [3, 1] has 3"),
    ([3, 1], [[1.0], [2.0, 3.0], []], "data[1] holds 2 values where its shape [3, 1] has 1"),
    ([3, 1], [[1.0], [2.0], 3.0], "data[2] holds the value 3.0 where its shape [3, 1] has 1"),
    ([2, 1], [[1.0], [[2.0]]], "nested deeper than its shape [2, 1]"),
])
def test_oip_data_nested_otherwise_than_its_shape_is_refused(shape: list[int], data: Any, where: str) -> None:
    with pytest.raises(SchemaError) as e:
        columns_from_oip(_oip(shape, data))
    assert str(e.value).startswith("Input 'amount':") and where in str(e.value), str(e.value)
    assert e.value.http_status == 422


@pytest.mark.parametrize(("shape", "data"), [
    ([3], [1.0, 2.0, 3.0]), ([3, 1], [[1.0], [2.0], [3.0]]), ([3, 1], [1.0, 2.0, 3.0]),
    ([3, 1, 1], [[[1.0]], [[2.0]], [[3.0]]]), ([0], []), ([0, 1], []),
])
def test_oip_data_flat_or_nested_as_its_shape_is_taken(shape: list[int], data: Any) -> None:
    columns, n_rows, _ = columns_from_oip(_oip(shape, data))
    assert n_rows == shape[0] and columns["amount"] == [1.0, 2.0, 3.0][:shape[0]]


def test_the_server_refuses_ragged_oip_data(srv: ServerProcess, salary_model_dir: Path,
                                            salary_rows: pd.DataFrame) -> None:
    name = mlengineer.load(salary_model_dir).name
    inputs = [{"name": c, "datatype": "INT64" if salary_rows[c].dtype.kind in "iu" else "BYTES", "shape": [3],
               "data": salary_rows[c].tolist()} for c in salary_rows.columns]
    r = httpx.post(f"{srv.url}/v2/models/{name}/infer", json={"inputs": inputs}, timeout=60)
    assert r.status_code == 200, r.text
    inputs[0]["data"] = [inputs[0]["data"][:2], inputs[0]["data"][2:]]
    r = httpx.post(f"{srv.url}/v2/models/{name}/infer", json={"inputs": inputs}, timeout=60)
    assert r.status_code == 422 and f"Input {salary_rows.columns[0]!r}" in r.text and "shape [3]" in r.text, r.text


# -- 5. a coverage more than the calibration rows can promise ---------------------------------------------------

def test_ranges_and_sets_refuse_a_coverage_their_rows_cannot_promise() -> None:
    rng = np.random.default_rng(0)
    n = 999
    reg = ConformalRegressor().fit(rng.normal(size=n), rng.normal(size=n))
    assert reg.max_coverage() == pytest.approx(998 / 1000)
    lo998, hi998 = reg.bounds(np.zeros(1), reg.check(0.998))  # the most it can promise: the widest errors seen
    assert lo998[0] == pytest.approx(reg.scores_[0] * reg.spread_(np.zeros(1))[0])
    for cov in (0.999, 0.99999):  # before: both the same bounds as 0.998, silently
        with pytest.raises(ConfigError, match=r"A coverage of 0\.999.* its 999 rows can promise ranges of at most "
                                              r"0\.998 \(99\.80%\).*at least [\d,]+ labelled rows"):
            reg.check(cov)
    cls = ConformalClassifier().fit(rng.integers(0, 2, n), rng.dirichlet([1, 1], n))
    assert cls.check(0.999) == 0.999  # a set takes n / (n + 1): one quantile, not two tails
    with pytest.raises(ConfigError, match=r"can promise sets of at most 0\.999 \(99\.90%\).*at least 9,999"):
        cls.check(0.9999)
    with pytest.raises(ConfigError, match="at most 0.8181"):
        check_supported(0.9, 10, ranges=True)
    # weighted rows: the same bound where the weights are equal
    w = ConformalRegressor().fit(rng.normal(size=n), rng.normal(size=n), np.full(n, 2.0))
    assert w.max_coverage() == pytest.approx(reg.max_coverage())


def _most(message: str) -> float:
    found = re.search(r"at most ([0-9.]+) \(", message)
    assert found, message
    return float(found.group(1))


def test_the_server_refuses_a_coverage_the_rows_cannot_promise(srv: ServerProcess, salary_model_dir: Path,
                                                               salary_rows: pd.DataFrame) -> None:
    model = mlengineer.load(salary_model_dir)
    n = len(model.extras["conformal"].scores_)
    too_much = 1 - 1 / (2 * (n + 1))  # past (n - 1) / (n + 1)
    r = httpx.post(f"{srv.url}/predict", json={"records": _records(salary_rows), "interval": too_much}, timeout=60)
    assert r.status_code == 422, r.text  # before: 200, the widest error seen
    error = r.json()["error"]
    assert "Field 'interval'" in error and f"its {n:,} rows can promise ranges of at most" in error, error
    most = _most(error)
    assert most <= (n - 1) / (n + 1)
    r = httpx.post(f"{srv.url}/invocations", json=split_body(salary_rows, params={"interval": too_much}), timeout=60)
    assert r.status_code == 422 and "can promise ranges of at most" in r.text, r.text
    r = httpx.post(f"{srv.url}/predict", json={"records": _records(salary_rows), "interval": most}, timeout=60)
    assert r.status_code == 200, r.text  # the most it names is taken


def test_the_python_api_batch_and_spark_check_refuse_it_alike(salary_model_dir: Path, churn_model_dir: Path,
                                                               salary_rows: pd.DataFrame, tmp_path: Path) -> None:
    model = mlengineer.load(salary_model_dir)
    n = len(model.extras["conformal"].scores_)
    too_much = 1 - 1 / (2 * (n + 1))
    with pytest.raises(ConfigError, match="can promise ranges of at most"):
        model.check_interval(too_much)  # what Spark scoring runs on the driver before it starts the job
    with pytest.raises(MLEngineerError, match="can promise ranges of at most"):
        model.predict_frame(salary_rows, interval=too_much)
    churn = mlengineer.load(churn_model_dir)
    m = len(churn.extras["conformal"].scores_)
    with pytest.raises(ConfigError, match="can promise sets of at most"):  # before: every label, silently
        churn.check_interval(1 - 1 / (2 * (m + 1)))
    data = tmp_path / "rows.csv"
    salary_rows.to_csv(data, index=False)
    r = run_cli("predict", str(salary_model_dir), str(data), "--interval", repr(too_much), cwd=tmp_path)
    assert r.returncode == 2 and "can promise ranges of at most" in r.stderr and "Traceback" not in r.stderr, r.stderr
