"""The closed loop with a real registry: a challenger trained on the reference plus new labelled rows, tested
against the champion on the newest rows, promoted only when significantly better, every decision recorded in
MLflow; ``rollback`` moves the alias back; a server on the alias follows both moves without a failed request."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import run_cli
from .test_serve_basic import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def new_rows(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """New labelled rows where the world changed (plus and premium customers now leave exactly when their tenure
    is short: half the rows, so the champion's roc_auc on the newest rows falls from about 0.87 to 0.77 while a
    challenger reaches 0.91, p = 0.001; premium alone gave p = 0.056, a gap chance could make), and new rows where
    it did not."""
    folder = tmp_path_factory.mktemp("new-rows")
    df = pd.read_csv(churn_csv)
    changed = df.sample(700, random_state=11).reset_index(drop=True)
    moved = changed["plan"].isin(["plus", "premium"])
    changed.loc[moved, "churn"] = np.where(changed.loc[moved, "tenure_months"] < 30, "yes", "no")
    changed.to_csv(folder / "changed.csv", index=False)
    df.sample(400, random_state=12).to_csv(folder / "same.csv", index=False)
    df.head(40).to_csv(folder / "few.csv", index=False)
    return {"changed": folder / "changed.csv", "same": folder / "same.csv", "few": folder / "few.csv"}


@pytest.fixture()
def registry(churn_model_dir: Path, tmp_path: Path) -> str:
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    return uri


def _decisions(uri: str) -> list[Any]:
    from mlengineer.monitoring.retrain import DECISIONS_EXPERIMENT
    from mlengineer.tracking.store import mlflow_client

    client = mlflow_client(uri)
    exp = client.get_experiment_by_name(DECISIONS_EXPERIMENT)
    return list(client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]))


def test_a_better_challenger_is_promoted_and_rolled_back_while_a_server_follows(
        registry: str, new_rows: dict[str, Path], churn_csv: Path, tmp_path: Path) -> None:
    from mlengineer.monitoring.retrain import retrain, rollback

    rows = pd.read_csv(churn_csv).drop(columns=["churn"]).iloc[:4]
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict(orient="records")]
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", json={"records": records})
                    answers.append((r.status_code, r.headers.get("x-model-version")))
                except httpx.HTTPError:
                    answers.append((0, None))
                time.sleep(0.01)

    def wait_for(version: str) -> None:
        deadline = time.time() + 90
        while time.time() < deadline and not (answers and answers[-1][1] == version):
            time.sleep(0.1)
        n = len(answers)
        while len(answers) < n + 10 and time.time() < deadline:
            time.sleep(0.05)

    with running_server("models:/churn@champion", "--tracking-uri", registry, "--poll-interval", "0.3",
                        "--prediction-log", str(tmp_path / "log"), cwd=tmp_path) as srv:
        threads = [threading.Thread(target=client, args=(srv.url,)) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            result = retrain("models:/churn@champion", data=new_rows["changed"], time_budget=10,
                             tracking_uri=registry, out=tmp_path / "challenger")
            assert result.decision == "promoted", result.reason
            wait_for("2")
            back = rollback("churn", tracking_uri=registry)
            wait_for("1")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
    assert not [a for a in answers if a[0] != 200]
    versions = [v for _, v in answers]
    assert versions[0] == "1" and "2" in versions and versions[-1] == "1"
    c = result.comparison
    assert result.challenger_version == "2" and c["significant"] and c["scores"][0] > c["scores"][1]
    assert result.rows == {"base": 800, "new_learnt": 490, "new_tested": 210}
    assert back["from_version"] == "2" and back["to_version"] == "1"
    runs = _decisions(registry)
    assert [r.data.tags["mlengineer.decision"] for r in runs] == ["promoted", "rolled back"]
    assert runs[0].data.metrics["p_value"] < 0.05 and runs[0].data.metrics["rows_new_tested"] == 210
    from mlengineer.tracking.store import mlflow_client

    evidence = mlflow_client(registry).download_artifacts(runs[0].info.run_id, "decision.json", str(tmp_path))
    assert json.loads(Path(evidence).read_text())["comparison"]["test"].startswith("paired bootstrap")


def test_a_challenger_that_is_not_better_is_registered_but_not_promoted(churn_csv: Path, tmp_path: Path) -> None:
    """Rows of the same world that neither model saw: the champion learnt from one half of the customers, the
    new rows are the other half; the challenger may score a little higher, but not beyond chance."""
    import mlengineer
    from mlengineer.monitoring.retrain import retrain
    from mlengineer.tracking.registry import promote, register, resolve

    df = pd.read_csv(churn_csv).sample(frac=1.0, random_state=4).reset_index(drop=True)
    mlengineer.train(df.iloc[:400], "churn", time_budget=4, out=tmp_path / "half", track=False)
    df.iloc[400:].to_csv(tmp_path / "other_half.csv", index=False)
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(tmp_path / "half", "half", tracking_uri=uri)
    promote("half", "1", tracking_uri=uri)
    result = retrain("models:/half@champion", data=tmp_path / "other_half.csv", time_budget=4, tracking_uri=uri)
    assert result.decision == "kept", result.reason
    assert not result.comparison["significant"] and result.rows["new_tested"] == 120
    assert result.challenger_version == "2" and resolve("models:/half@champion", tracking_uri=uri)[0].version == "1"
    assert _decisions(uri)[-1].data.tags["mlengineer.decision"] == "kept"


def test_clients_that_could_not_call_the_challenger_keep_the_champion() -> None:
    from mlengineer.monitoring.retrain import _decide

    better = {"scores": [0.9, 0.8], "greater_is_better": True, "significant": True, "verdict": "A is better."}
    kept = _decide(better, ["it needs column 'x', which clients of the current model do not send"], promote=True,
                   champion_ref=None, info=None, challenger_path=Path("c"), rows={}, tracking_uri=None)
    assert kept.decision == "kept" and "could not call it" in kept.reason
    folder = _decide(better, [], promote=False, champion_ref=None, info=None, challenger_path=Path("c"), rows={},
                     tracking_uri=None)
    assert folder.decision == "better, not promoted"


@pytest.mark.long
def test_retrain_and_rollback_mistakes_are_one_line_and_exit_2(registry: str, new_rows: dict[str, Path],
                                                              tmp_path: Path) -> None:
    from mlengineer.errors import MLEngineerError
    from mlengineer.monitoring.retrain import retrain, rollback

    for call, words in ((lambda: retrain("models:/churn@nobody", data=new_rows["same"], tracking_uri=registry),
                         "has no alias 'nobody'"),
                        (lambda: retrain("models:/churn@champion", data=new_rows["same"], since="2001-01-01",
                                         tracking_uri=registry), "--since and --until need times"),
                        (lambda: rollback("nobody", tracking_uri=registry), "nobody")):
        with pytest.raises(MLEngineerError, match=words):
            call()
    for args, words in ((["retrain", "models:/churn@champion", "--data", str(new_rows["few"])],
                         "retraining needs at least"),
                        (["rollback", "churn"], "nothing to roll back to")):
        r = run_cli(*args, "--tracking-uri", registry, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
