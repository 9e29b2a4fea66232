"""Monitoring a real server: ``mlengineer serve`` writes its prediction log while its ``/metrics`` shows the
live drift gauges and the estimated performance; ``mlengineer monitor --log`` then reads that log, joins
outcomes by request id, cuts windows by version, and refuses a log of another model or a time span the log
does not cover."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from .conftest import run_cli
from .test_serve_basic import running_server

pytestmark = pytest.mark.slow

SHIFTED = 120  # requests of 2 rows each, with tenure nearly doubled


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _gauges(url: str, name: str) -> list[str]:
    return [line for line in httpx.get(f"{url}/metrics").text.splitlines() if line.startswith(name)]


@pytest.fixture(scope="module")
def served_log(churn_model_dir: Path, churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real server's log of 240 shifted churn rows (two per request, ids r0, r1, ...), and what its
    /metrics said while it served them."""
    folder = tmp_path_factory.mktemp("served-log")
    df = pd.read_csv(churn_csv).sample(2 * SHIFTED, random_state=3).reset_index(drop=True)
    live = df.drop(columns=["churn"]).assign(tenure_months=lambda d: d["tenure_months"] * 1.8 + 6)
    records = _records(live)
    with running_server(churn_model_dir, "--prediction-log", str(folder / "log"), cwd=folder,
                        env={"MLENGINEER_MONITOR_EVERY_S": "0.5"}) as srv, httpx.Client(base_url=srv.url) as c:
        for i in range(SHIFTED):
            r = c.post("/predict", json={"records": records[2 * i: 2 * i + 2]}, headers={"x-request-id": f"r{i}"})
            assert r.status_code == 200, r.text
        deadline = time.time() + 60  # the gauges follow within a refresh (every 0.5 s here) of the last request
        while time.time() < deadline and [g.rsplit(" ", 1)[1] for g in _gauges(
                srv.url, "mlengineer_monitor_window_rows")] != [f"{2.0 * SHIFTED}"]:
            time.sleep(0.3)
        metrics = httpx.get(f"{srv.url}/metrics").text
    outcomes = pd.DataFrame({"request_id": [f"r{i // 2}" for i in range(2 * SHIFTED)],
                             "row": [i % 2 for i in range(2 * SHIFTED)], "churn": df["churn"]})
    outcomes.to_csv(folder / "outcomes.csv", index=False)
    return {"log": folder / "log", "metrics": metrics, "outcomes": folder / "outcomes.csv", "folder": folder}


def test_metrics_show_rolling_drift_and_the_estimated_performance(served_log: dict) -> None:
    lines = served_log["metrics"].splitlines()

    def value(prefix: str) -> float:
        found = [line for line in lines if line.startswith(prefix)]
        assert found, prefix
        return float(found[0].rsplit(" ", 1)[1])

    assert value('mlengineer_drift_detected{column="tenure_months"') == 1.0
    assert value('mlengineer_drift_detected{column="age"') == 0.0
    assert value('mlengineer_drift_score{column="tenure_months"') < 0.05  # a p-value: the reference is small
    assert any('column="tenure_months"' in line and 'measure="p_value"' in line
               for line in lines if line.startswith("mlengineer_drift_score{"))
    assert value('mlengineer_drift_p_value{column="tenure_months"') < 0.05
    assert value('mlengineer_drift_distance{column="tenure_months"') > value('mlengineer_drift_distance{column="age"')
    assert value("mlengineer_monitor_window_rows") == 2 * SHIFTED
    low, est, high = (value(f'mlengineer_estimated_performance{{bound="{b}",metric="roc_auc"')
                      for b in ("low", "value", "high"))
    assert 0.5 < low < est < high <= 1.0
    assert 0.5 < value('mlengineer_estimated_performance{bound="reference",metric="roc_auc"') <= 1.0
    # monthly_fee: 9 of the 240 rows sent have none; the reference sample's share is the training table's

    def missing(column: str, rows: str) -> float:
        found = [line for line in lines if line.startswith("mlengineer_missing_share{")
                 and f'column="{column}"' in line and f'rows="{rows}"' in line]
        assert len(found) == 1, (column, rows, found)
        return float(found[0].rsplit(" ", 1)[1])

    assert missing("monthly_fee", "recent") == pytest.approx(9 / 240)
    assert missing("age", "recent") == 0.0
    assert 0.0 < missing("monthly_fee", "training") < 0.1


def test_monitor_reads_the_log_and_joins_outcomes_by_request_id(churn_model_dir: Path, served_log: dict) -> None:
    r = run_cli("monitor", str(churn_model_dir), "--log", str(served_log["log"]), "--labels",
                str(served_log["outcomes"]), "--by-version", "--window", "1h", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["current"]["rows"] == 2 * SHIFTED and result["current"]["labelled"] == 2 * SHIFTED
    assert {c["column"] for c in result["drift"]["columns"] if c["drifted"]} == {"tenure_months"}
    assert result["performance"]["metrics"]["roc_auc"]["realised"]["rows"] == 2 * SHIFTED
    assert result["windows"] and all(w["version"] == "1" for w in result["windows"])
    assert sum(w["rows"] for w in result["windows"]) == 2 * SHIFTED
    assert result["current"]["versions"] == ["1"]


def test_outcomes_without_a_row_number_for_requests_of_several_rows_are_refused(
        churn_model_dir: Path, served_log: dict, tmp_path: Path) -> None:
    no_row = tmp_path / "no_row.csv"
    pd.read_csv(served_log["outcomes"]).drop(columns=["row"]).drop_duplicates("request_id").to_csv(no_row, index=False)
    r = run_cli("monitor", str(churn_model_dir), "--log", str(served_log["log"]), "--labels", str(no_row))
    assert r.returncode == 2 and "add a 'row' column" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_log_of_another_model_or_outside_the_time_span_is_refused(
        churn_model_dir: Path, salary_model_dir: Path, salaries_csv: Path, served_log: dict, tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.monitoring.prediction_log import PredictionLog

    # the writer a server uses, fed as a salary model's server feeds it (a server start saved: the churn
    # model's log above comes from a real one)
    salary = mlengineer.load(salary_model_dir)
    rows = pd.read_csv(salaries_csv)[salary.feature_names].head(40)
    writer = PredictionLog(tmp_path / "salary-log").start()
    writer.append(columns={c: rows[c].tolist() for c in rows.columns}, outputs={"prediction": salary.predict_raw(rows)},
                  n_rows=len(rows), request_id="s1", endpoint="predict", model=salary.name, version="1")
    writer.close()
    r = run_cli("monitor", str(churn_model_dir), "--log", str(tmp_path / "salary-log"))
    assert r.returncode == 2 and "holds rows of" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    from mlengineer.errors import DataError
    from mlengineer.monitoring.run import monitor_model

    for span, words in ((("2001-01-01", "2001-02-01"), "fall between"), (("soon", None), "--since takes a date")):
        with pytest.raises(DataError, match=words):
            monitor_model(str(churn_model_dir), log=served_log["log"], since=span[0], until=span[1])


def test_retrain_reads_a_log_served_under_another_name_with_log_model(churn_model_dir: Path, served_log: dict,
                                                                       tmp_path: Path) -> None:
    """The refusal of a log of another name told retrain's users to pass --log-model, which only monitor had."""
    import mlengineer
    from mlengineer.errors import DataError
    from mlengineer.monitoring.retrain import retrain

    champion = mlengineer.load(churn_model_dir)
    served_as = champion.name
    champion.metadata["name"] = "churn-renamed"
    sources = {"log": served_log["log"], "labels": served_log["outcomes"], "time_budget": 3, "promote": False}
    with pytest.raises(DataError, match="--log-model"):
        retrain(champion, out=tmp_path / "refused", **sources)
    result = retrain(champion, log_model=served_as, out=tmp_path / "challenger", **sources)
    assert result.rows["new_learnt"] + result.rows["new_tested"] == 2 * SHIFTED
    r = run_cli("retrain", "--help")
    assert "--log-model" in r.stdout
