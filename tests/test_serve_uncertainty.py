"""Ranges, label sets and explanations from a real server: what the Python API gives, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import mlengineer

from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


@pytest.fixture(scope="module")
def salary_srv(salary_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(salary_model_dir, "--no-prediction-log", cwd=tmp_path_factory.mktemp("srv-salary")) as s:
        yield s


@pytest.fixture(scope="module")
def churn_srv(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(churn_model_dir, "--no-prediction-log", cwd=tmp_path_factory.mktemp("srv-churn")) as s:
        yield s


@pytest.fixture(scope="module")
def salary_rows(salaries_csv: Path) -> pd.DataFrame:
    return pd.read_csv(salaries_csv).drop(columns=["salary_in_usd", "salary", "salary_currency"]).head(4)


@pytest.fixture(scope="module")
def churn_rows(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv).drop(columns=["churn", "customer_id"]).head(4)


def test_predict_returns_the_same_ranges_as_the_model(salary_srv: ServerProcess, salary_model_dir: Path,
                                                      salary_rows: pd.DataFrame) -> None:
    r = httpx.post(f"{salary_srv.url}/predict", json={"records": _records(salary_rows), "interval": 0.9})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    local = mlengineer.load(salary_model_dir).predict_frame(salary_rows, interval=0.9)
    for row, (_, want) in zip(got, local.iterrows(), strict=True):
        assert row["lower"] <= row["prediction"] <= row["upper"]
        assert row["lower"] == pytest.approx(want["lower"], rel=1e-5)
        assert row["upper"] == pytest.approx(want["upper"], rel=1e-5)
    # a wider coverage gives wider ranges
    wide = httpx.post(f"{salary_srv.url}/predict", json={"records": _records(salary_rows), "interval": 0.99}).json()
    assert all(w["upper"] - w["lower"] >= g["upper"] - g["lower"] for w, g in zip(wide["predictions"], got, strict=True))


def test_oip_and_invocations_carry_ranges(salary_srv: ServerProcess, salary_model_dir: Path,
                                          salary_rows: pd.DataFrame) -> None:
    name = mlengineer.load(salary_model_dir).name
    records = _records(salary_rows)
    inputs = [{"name": c, "shape": [len(records)],
               "datatype": "FP64" if c in ("work_year", "remote_ratio") else "BYTES",
               "data": [r[c] for r in records]} for c in records[0]]
    r = httpx.post(f"{salary_srv.url}/v2/models/{name}/infer", json={"inputs": inputs, "parameters": {"interval": 0.8}})
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["lower"]["shape"] == [4] == out["upper"]["shape"]
    assert all(lo <= p <= hi for lo, p, hi in zip(out["lower"]["data"], out["prediction"]["data"], out["upper"]["data"],
                                                  strict=True))
    r = httpx.post(f"{salary_srv.url}/invocations", json={"dataframe_records": records, "params": {"interval": 0.8}})
    assert r.status_code == 200, r.text
    assert all(row["lower"] <= row["prediction"] <= row["upper"] for row in r.json()["predictions"])


def test_classifier_answers_label_sets(churn_srv: ServerProcess, churn_model_dir: Path, churn_rows: pd.DataFrame) -> None:
    model = mlengineer.load(churn_model_dir)
    r = httpx.post(f"{churn_srv.url}/predict", json={"records": _records(churn_rows), "interval": 0.9})
    assert r.status_code == 200, r.text
    got = [row["prediction_set"] for row in r.json()["predictions"]]
    want = model.prediction_set(model.predict_raw(churn_rows), 0.9)
    assert got == want
    assert all(set(s) <= {"yes", "no"} and s for s in got)
    body = {"inputs": [{"name": c, "shape": [4], "datatype": "FP64" if pd.api.types.is_numeric_dtype(churn_rows[c]) else "BYTES",
                        "data": [None if pd.isna(v) else v for v in churn_rows[c]]} for c in churn_rows.columns],
            "parameters": {"interval": 0.9}}
    r = httpx.post(f"{churn_srv.url}/v2/models/{model.name}/infer", json=body)
    assert r.status_code == 200, r.text
    sets = next(o for o in r.json()["outputs"] if o["name"] == "prediction_set")
    assert [json.loads(v) for v in sets["data"]] == want


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "0.9", True])
def test_a_bad_coverage_is_a_422_naming_the_field(churn_srv: ServerProcess, churn_rows: pd.DataFrame, bad: object) -> None:
    r = httpx.post(f"{churn_srv.url}/predict", json={"records": _records(churn_rows), "interval": bad})
    assert r.status_code == 422 and "'interval'" in r.json()["error"]


def test_explain_endpoint_adds_up_to_the_prediction(salary_srv: ServerProcess, salary_model_dir: Path,
                                                     salary_rows: pd.DataFrame) -> None:
    r = httpx.post(f"{salary_srv.url}/explain", json={"records": _records(salary_rows.head(2)), "top": 3})
    assert r.status_code == 200, r.text
    explanations = r.json()["explanations"]
    assert len(explanations) == 2
    local = mlengineer.load(salary_model_dir).predict(salary_rows.head(2))
    for e, want in zip(explanations, local, strict=True):
        assert len(e["contributions"]) == 3
        assert {c["column"] for c in e["contributions"]} <= set(salary_rows.columns)
        assert e["output"] == pytest.approx(float(want), rel=1e-4)
        total = e["base_value"] + sum(c["contribution"] for c in e["contributions"]) + (e.get("other_columns") or 0)
        assert total == pytest.approx(e["output"], rel=1e-4)
    bad = httpx.post(f"{salary_srv.url}/explain", json={"records": [{"job_title": "x"}]})
    assert bad.status_code == 422 and "missing" in bad.json()["error"]
    assert np.isfinite(explanations[0]["base_value"])
