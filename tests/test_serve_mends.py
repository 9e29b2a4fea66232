"""Mends from a new user's bug hunt on serving and the registry, each tried on a real server or the real CLI:
an empty API key, a version of another task or target, CSV rows longer than their header, a whole number
written 3.0 in a CSV body, a record that lacks a column others have, a prediction log that names a file and
an Open Inference Protocol id that is not a string."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import free_port, run_cli
from .test_serve_basic import ServerProcess, running_server

pytestmark = pytest.mark.slow

KEY = "mends-key"
AUTH = {"x-api-key": KEY}


def one_line_exit_2(r: Any) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return str(r.stderr).strip().removeprefix("error: ")


# -- the salary model (regression; work_year and remote_ratio learnt as categories of whole numbers) ------------

@pytest.fixture(scope="module")
def salary_rows(salaries_csv: Path) -> pd.DataFrame:
    return pd.read_csv(salaries_csv).drop(columns=["salary", "salary_currency", "salary_in_usd"]).iloc[:4]


@pytest.fixture(scope="module")
def srv(salary_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import mlengineer

    with running_server(salary_model_dir, "--no-prediction-log", cwd=tmp_path_factory.mktemp("serve-mends"),
                        env={"MLENGINEER_API_KEY": KEY}) as s:
        s.name = mlengineer.load(salary_model_dir).name  # type: ignore[attr-defined]
        yield s


def post(srv: ServerProcess, path: str, body: Any = None, *, raw: bytes | None = None,
         content_type: str = "application/json") -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{srv.url}{path}", content=content, headers={"content-type": content_type, **AUTH},
                      timeout=60)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


# 1. the API key ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "words"), [("", "--api-key is empty"), ("   ", "--api-key is empty"),
                                            (" k3y", "--api-key starts or ends with a space")])
def test_an_empty_or_blank_api_key_is_refused(churn_model_dir: Path, tmp_path: Path, key: str, words: str) -> None:
    r = run_cli("serve", str(churn_model_dir), "--port", str(free_port()), "--api-key", key, "--no-prediction-log",
                cwd=tmp_path, timeout=90)  # (before the mend, the server started, open to all, and ran on)
    assert one_line_exit_2(r).startswith(words), r.stderr


def test_a_wrong_key_is_told_apart_from_a_missing_one(srv: ServerProcess) -> None:
    body = {"records": []}
    missing = httpx.post(f"{srv.url}/predict", json=body)
    assert missing.status_code == 401 and missing.json()["error"].startswith("An API key is needed")
    for headers in ({"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
        wrong = httpx.post(f"{srv.url}/predict", json=body, headers=headers)
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["error"].startswith("The API key given is not the one this server takes"), wrong.text
    assert httpx.post(f"{srv.url}/predict", json=body, headers=AUTH).status_code == 422  # the key passes


# 3. and 4. CSV bodies --------------------------------------------------------------------------------------------

def test_a_csv_row_longer_or_shorter_than_its_header_is_named(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    csv = salary_rows.iloc[:2].to_csv(index=False)
    header, first, second = csv.strip().splitlines()
    n = len(header.split(","))
    r = post(srv, "/invocations", raw=f"{header}\n{first},99\n".encode(), content_type="text/csv")
    assert r.status_code == 422, r.text
    assert f"row 1 (line 2) has {n + 1} fields where the header names {n} columns" in r.json()["error"], r.text
    r = post(srv, "/invocations", raw=f"{header}\n{first}\n{second},99,100\n".encode(), content_type="text/csv")
    assert r.status_code == 422 and f"row 2 (line 3) has {n + 2} fields" in r.json()["error"], r.text
    short = ",".join(first.split(",")[:-1])
    r = post(srv, "/invocations", raw=f"{header}\n{short}\n".encode(), content_type="text/csv")
    assert r.status_code == 422 and f"has {n - 1} fields where the header names {n}" in r.json()["error"], r.text
    assert post(srv, "/invocations", raw=f"{header}\n{first}\n\n{second}\n".encode(),
                content_type="text/csv").status_code == 200  # a blank line is skipped, as pandas skips it


def test_a_csv_body_without_its_header_says_so(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    lines = salary_rows.to_csv(index=False, header=False).strip().splitlines()
    for body in (lines[0], "\n".join(lines[:2])):
        r = post(srv, "/invocations", raw=f"{body}\n".encode(), content_type="text/csv")
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert "None of the columns the request names" in error and "header row" in error, error
        assert "no rows" not in error
    header = salary_rows.to_csv(index=False).splitlines()[0]
    r = post(srv, "/invocations", raw=f"{header}\n".encode(), content_type="text/csv")
    assert r.status_code == 422 and "no rows" in r.json()["error"], r.text  # a header and nothing under it


def test_a_whole_number_written_3_0_in_csv_is_the_category_json_and_predict_take(
        srv: ServerProcess, salary_model_dir: Path, salary_rows: pd.DataFrame, tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.data.load import load_table

    rows = salary_rows.assign(work_year=salary_rows["work_year"].astype(float),
                              remote_ratio=salary_rows["remote_ratio"].astype(float))
    csv = rows.to_csv(index=False)
    assert "2025.0," in csv and ",0.0," in csv, csv
    by_csv = post(srv, "/invocations", raw=csv.encode(), content_type="text/csv")
    by_json = post(srv, "/invocations", {"dataframe_records": records(rows)})
    assert by_csv.status_code == 200 and by_json.status_code == 200, (by_csv.text, by_json.text)
    assert "warnings" not in by_csv.json(), by_csv.json()  # before the mend: "never saw the category '2025.0'"
    assert by_csv.json()["predictions"] == by_json.json()["predictions"]
    inputs = [{"name": c, "shape": [len(rows)], "datatype": "FP64" if pd.api.types.is_float_dtype(rows[c]) else "BYTES",
               "data": rows[c].tolist()} for c in rows.columns]
    by_oip = post(srv, f"/v2/models/{srv.name}/infer", {"inputs": inputs})  # type: ignore[attr-defined]
    assert by_oip.status_code == 200, by_oip.text
    got = [p["prediction"] for p in by_csv.json()["predictions"]]
    np.testing.assert_allclose(got, by_oip.json()["outputs"][0]["data"], rtol=1e-9)
    (tmp_path / "rows.csv").write_text(csv)
    offline = mlengineer.load(salary_model_dir).predict(load_table(tmp_path / "rows.csv"))
    np.testing.assert_allclose(got, np.asarray(offline, dtype=float), rtol=1e-9)


# 5. a record that lacks a column others have ----------------------------------------------------------------------

def test_a_record_lacking_a_column_others_have_is_named(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    full = records(salary_rows)[0]
    some = {"work_year": full["work_year"]}
    cases = [("/predict", [full, {}], "records[1] has no column 'work_year'"),
             ("/predict", {"records": [full, some]}, "records[1] has no column 'experience_level'"),
             ("/predict", [some, full], "records[0] has no column 'experience_level'"),
             ("/invocations", {"dataframe_records": [full, {}]}, "dataframe_records[1] has no column 'work_year'"),
             ("/invocations", {"instances": [full, some]}, "instances[1] has no column 'experience_level'")]
    for path, body, words in cases:
        r = post(srv, path, body)
        assert r.status_code == 422 and words in r.json()["error"], (path, body, r.text)
        assert "null for a missing value" in r.json()["error"]
    # null still says a value is missing; a column the model does not use may come and go
    nulled = {k: None if k == "job_title" else v for k, v in full.items()}
    assert post(srv, "/predict", [full, nulled]).status_code == 200
    assert post(srv, "/predict", [{**full, "salary": 1000}, full]).status_code == 200
    r = post(srv, "/predict", [{k: v for k, v in full.items() if k != "work_year"}])
    assert r.status_code == 422 and "Column 'work_year' is missing" in r.json()["error"]  # as before


# 7. the Open Inference Protocol's id ------------------------------------------------------------------------------

def test_an_oip_id_must_be_a_string(srv: ServerProcess, salary_rows: pd.DataFrame) -> None:
    inputs = [{"name": c, "shape": [1], "datatype": "INT64" if pd.api.types.is_numeric_dtype(salary_rows[c]) else "BYTES",
               "data": salary_rows[c].tolist()[:1]} for c in salary_rows.columns]
    path = f"/v2/models/{srv.name}/infer"  # type: ignore[attr-defined]
    for bad, shown in ((5, "got 5"), (["a"], "got a list"), (True, "got true")):
        r = post(srv, path, {"id": bad, "inputs": inputs})
        assert r.status_code == 422 and "'id' must be a string" in r.json()["error"], r.text
        assert shown in r.json()["error"], r.text
    r = post(srv, path, {"id": "req-7", "inputs": inputs})
    assert r.status_code == 200 and r.json()["id"] == "req-7", r.text
    r = post(srv, path, {"inputs": inputs})
    assert r.status_code == 200 and r.json()["id"] is None, r.text


# 6. the prediction log -------------------------------------------------------------------------------------------

def test_a_prediction_log_that_names_a_file_is_refused_before_the_server_starts(churn_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    (tmp_path / "log.parquet").write_text("not a folder")
    for where in ("log.parquet", "log.parquet/inside"):
        r = run_cli("serve", str(churn_model_dir), "--port", str(free_port()), "--prediction-log", where,
                    cwd=tmp_path, timeout=90)
        assert one_line_exit_2(r).startswith("--prediction-log must be a folder"), r.stderr
        assert "Serving" not in r.stdout, r.stdout


# 2. a version of another task, target or classes ------------------------------------------------------------------

@pytest.fixture(scope="module")
def churn_regression_dir(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn table's inputs with a number as the target 'churn': a regression, same inputs and target name."""
    import mlengineer

    df = pd.read_csv(churn_csv)
    df["churn"] = np.random.default_rng(0).normal(50.0, 10.0, len(df)).round(3)
    out = tmp_path_factory.mktemp("models") / "churn-regression"
    mlengineer.train(df, "churn", time_budget=2, out=out, track=False)
    return out


@pytest.fixture(scope="module")
def churn_left_dir(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn table's inputs with the target renamed 'left' and its label 'no' written 'stay'."""
    import mlengineer

    df = pd.read_csv(churn_csv)
    df["left"] = df.pop("churn").map({"yes": "yes", "no": "stay"})
    out = tmp_path_factory.mktemp("models") / "churn-left"
    mlengineer.train(df, "left", time_budget=2, out=out, track=False)
    return out


def test_a_change_of_task_target_or_classes_is_a_problem_for_clients(
        churn_model_dir: Path, churn_regression_dir: Path, churn_left_dir: Path) -> None:
    import mlengineer
    from mlengineer.bundle.compat import client_problems, input_problems

    churn, regression = mlengineer.load(churn_model_dir), mlengineer.load(churn_regression_dir)
    left = mlengineer.load(churn_left_dir)
    assert input_problems(churn, regression) == [] and input_problems(churn, left) == []  # same inputs
    assert client_problems(churn, churn) == []
    kind = client_problems(churn, regression)
    assert len(kind) == 1 and "it is a regression model and the current one is binary" in kind[0], kind
    assert client_problems(regression, churn)[0].startswith("it is a binary model and the current one is regression")
    changed = client_problems(churn, left)
    assert any("it predicts 'left' and the current model predicts 'churn'" in p for p in changed), changed
    assert any("it never predicts the class 'no'" in p for p in changed), changed


@pytest.mark.long
def test_promote_refuses_another_task_and_a_server_on_the_alias_keeps_its_version(
        churn_model_dir: Path, churn_regression_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    r = run_cli("register", str(churn_regression_dir), "--name", "churn", "--tracking-uri", uri, cwd=tmp_path)
    assert r.returncode == 0 and "warning" in r.stdout and "regression" in r.stdout, r.stdout + r.stderr
    rows = records(pd.read_csv(churn_csv).drop(columns=["churn"]).iloc[:3])
    with running_server("models:/churn@champion", "--tracking-uri", uri, "--poll-interval", "0.3",
                        "--no-prediction-log", cwd=tmp_path) as srv:
        r = run_cli("promote", "churn", "2", "--tracking-uri", uri, cwd=tmp_path)
        error = one_line_exit_2(r)
        assert "cannot take the alias 'champion'" in error and "regression" in error and "--force" in error
        # the alias moved behind the tool's back (MLflow's own client; promote --force marks the version, and
        # a server follows that, with a warning: test_reliability.py)
        from mlengineer.tracking.store import mlflow_client

        mlflow_client(uri).set_registered_model_alias("churn", "champion", "2")
        deadline = time.time() + 90
        while time.time() < deadline and "new model version refused" not in srv.output():
            time.sleep(0.2)
        log = srv.output()
        answer = httpx.post(f"{srv.url}/predict", json=rows, timeout=60)
    assert "new model version refused" in log and "regression" in log, log[-2000:]
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "1", answer.text
    assert {p["prediction"] for p in answer.json()["predictions"]} <= {"yes", "no"}


# the registry's smaller mistakes -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlengineer.tracking.registry import register

    uri = f"sqlite:///{tmp_path_factory.mktemp('registry-mends') / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    return uri


@pytest.mark.long
def test_a_version_that_is_not_a_number_and_a_model_that_does_not_exist(registry: str, tmp_path: Path) -> None:
    from mlengineer.errors import ConfigError, ModelError
    from mlengineer.tracking.registry import promote, resolve

    with pytest.raises(ConfigError, match="VERSION must be a version number such as 3; got 'abc'"):
        promote("churn", "abc", tracking_uri=registry)
    with pytest.raises(ModelError, match="there is no registered model named 'nosuch'"):
        resolve("models:/nosuch@champion", tracking_uri=registry)
    with pytest.raises(ModelError, match="has no alias 'gold'"):  # a model that exists, an alias that does not
        resolve("models:/churn@gold", tracking_uri=registry)
    assert promote("churn", " 1 ", tracking_uri=registry).version == "1"
    r = run_cli("promote", "churn", "abc", "--tracking-uri", registry, cwd=tmp_path)
    assert "version number" in one_line_exit_2(r)
    r = run_cli("serve", "models:/nosuch@champion", "--tracking-uri", registry, cwd=tmp_path, timeout=90)
    assert "no registered model named 'nosuch'" in one_line_exit_2(r)


def test_csv_values_read_as_pandas_reads_a_file() -> None:
    """The decoder on its own: numbers, true/false and text typed per column; empty cells missing."""
    from mlengineer.serving.protocols import columns_from_csv

    cols, n = columns_from_csv(b"a,b,c,d\n3.0,true,x,\n1,false,,2\n")
    assert n == 2 and cols == {"a": [3.0, 1.0], "b": [True, False], "c": ["x", None], "d": [None, 2.0]}
    assert all(type(v) is float for v in cols["a"])  # plain Python values, as JSON gives them
    frame = pd.read_csv(io.BytesIO(b"a,b,c,d\n3.0,true,x,\n1,false,,2\n"))
    assert frame["a"].tolist() == cols["a"]
