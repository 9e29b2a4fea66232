"""Explanations per input column that add up to the prediction, from the CLI and from POST /explain."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.explain.contributions import column_contributions, explain_rows

from .conftest import free_port, run_cli, run_clis


@pytest.mark.parametrize("fixture", ["churn_model_dir", "salary_model_dir"])
def test_contributions_add_up_to_the_prediction_per_user_column(request: pytest.FixtureRequest, fixture: str,
                                                                churn_csv: Path, salaries_csv: Path) -> None:
    model = mlengineer.load(request.getfixturevalue(fixture))
    rows = pd.read_csv(churn_csv if fixture.startswith("churn") else salaries_csv).head(40)
    c = column_contributions(model, rows)
    raw = model.predict_raw(rows)
    raw = raw if raw.ndim == 2 else raw[:, None]
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), raw, rtol=1e-6, atol=1e-6 * np.abs(raw).max())
    assert set(c.columns) == set(model.feature_names)  # the user's columns, not encoded features


def test_a_date_is_explained_as_one_column(churn_model_dir: Path, churn_csv: Path) -> None:
    model = mlengineer.load(churn_model_dir)
    assert any(f.startswith("signup_date__") for f in model.encoder.feature_names_)
    (row,) = explain_rows(model, pd.read_csv(churn_csv).head(1), top=10)
    names = [c["column"] for c in row["contributions"]]
    assert "signup_date" in names and not any("__" in n for n in names)
    assert row["explained"] == "probability of yes"
    total = row["base_value"] + sum(c["contribution"] for c in row["contributions"]) + row["other_columns"]
    assert total == pytest.approx(row["output"], abs=1e-6)


@pytest.mark.slow
def test_members_without_tree_shap_are_explained_by_sampling(churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv)
    model = mlengineer.train(df, "churn", time_budget=4, track=False, families=["knn"])
    c = column_contributions(model, df.head(3))
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), model.predict_raw(df.head(3)), atol=1e-9)
    assert "sampled Shapley" in " ".join(c.methods)


@pytest.mark.slow
def test_a_sampled_explanation_starts_from_the_mean_answer_over_the_background_rows() -> None:
    """The answer "for an average row" a sampled explanation starts from is the member's mean answer over the
    background rows to within 2% of their spread (from the first ten rows: 4% here, 20% on a table of houses)."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=600), "z": rng.normal(size=600)})
    df["price"] = np.exp(1.5 * df["x"] + 0.3 * df["z"] + rng.normal(0, 0.2, 600)) * 1000
    model = mlengineer.train(df, "price", time_budget=3, track=False, families=["knn"])
    background = model.extras["background"]
    answers = np.asarray(model.predict_raw(df.head(3)))
    c = column_contributions(model, df.head(3))
    np.testing.assert_allclose(c.base[:, 0] + c.values.sum(axis=1)[:, 0], answers, rtol=1e-9)
    over_all = np.asarray(model.predictor.predict_raw(background), dtype=float)
    assert abs(c.base[0, 0] - over_all.mean()) < 0.02 * over_all.std(), (c.base[0, 0], over_all.mean())


def test_explain_command_shows_rows_and_overall_importance(tmp_path: Path, churn_model_dir: Path,
                                                           churn_csv: Path) -> None:
    out = tmp_path / "why.json"
    rows, overall, unknown = run_clis(  # side by side, each its own process
        ["explain", str(churn_model_dir), str(churn_csv), "--limit", "2", "--top", "3", "--out", str(out)],
        ["explain", str(churn_model_dir)],
        ["explain", str(churn_model_dir), str(churn_csv), "--class", "maybe"])
    r = rows
    assert r.returncode == 0, r.stderr
    assert "moved it by" in r.stdout and "Row 2" in r.stdout and "Row 3" not in r.stdout
    saved = json.loads(out.read_text())
    assert len(saved) == 800 and len(saved[0]["contributions"]) == 3
    r = overall
    assert r.returncode == 0, r.stderr
    assert "What matters most" in r.stdout and "SHAP" in r.stdout
    r = unknown
    assert r.returncode == 2 and "--class" in r.stderr


def test_importance_is_shap_per_input_column(churn_model_dir: Path) -> None:
    meta = json.loads((churn_model_dir / "artifacts" / "bundle" / "metadata.json").read_text())
    imp = meta["feature_importance"]
    assert meta["importance_method"].startswith("mean |SHAP|")
    assert sum(imp.values()) == pytest.approx(1.0)
    assert "customer_id" not in imp and "signup_date" in imp


@pytest.fixture(scope="module")
def explain_server(churn_model_dir: Path):  # type: ignore[no-untyped-def]
    """A real uvicorn server with the /explain router and the server's error answer."""
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from mlengineer.errors import MLEngineerError
    from mlengineer.serving.explain import explain_router

    model = mlengineer.load(churn_model_dir)
    app = FastAPI()

    @app.exception_handler(MLEngineerError)
    async def _ours(_: Request, exc: MLEngineerError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.http_status)

    app.include_router(explain_router(lambda: model))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_explain_endpoint_answers_with_contributions(explain_server: str, churn_csv: Path) -> None:
    rows = json.loads(pd.read_csv(churn_csv).head(2).drop(columns=["churn"]).to_json(orient="records"))
    r = httpx.post(f"{explain_server}/explain", json={"records": rows, "top": 4, "class": "no"}, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()["explanations"]
    assert len(out) == 2 and out[0]["explained"] == "probability of no" and len(out[0]["contributions"]) == 4
    r = httpx.post(f"{explain_server}/explain", json={"records": [{"age": "old"}]}, timeout=30)
    assert r.status_code == 422 and "age" in r.json()["error"]
    r = httpx.post(f"{explain_server}/explain", json={"records": rows, "class": "maybe"}, timeout=30)
    assert r.status_code == 422 and "class" in r.json()["error"]


@pytest.mark.long
def test_a_regression_row_is_headed_once_and_rounding_noise_is_no_move(salary_model_dir: Path,
                                                                      salaries_csv: Path) -> None:
    from mlengineer.cli.evaluation import _moved

    r = run_cli("explain", str(salary_model_dir), str(salaries_csv), "--limit", "1", "--top", "3")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())  # as a reader reads it, whatever the console's width wrapped
    assert re.search(r"Row 1: predicted [\d,.]+, against [\d,.]+ for an average row", said), said  # said once
    assert _moved(1.115e-09, 1e-9 * 71_683) == "0" and _moved(-0.0351) == "-0.0351" and _moved(36_750) == "+36,750"
