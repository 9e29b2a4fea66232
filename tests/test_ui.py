"""`mlengineer ui`: MLflow's own web UI on the store `train` records to, looked at in real headless Chromium
(a run, its metrics, its leaderboard and its report), and a one-line message, brackets and all, when the
`ui` extra is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import free_port, run_cli
from .test_report import CHROMIUM, FLAGS

pytestmark = pytest.mark.long  # make test-long: CI time


def test_a_missing_ui_extra_is_one_line_with_its_brackets(tmp_path: Path) -> None:
    """Without Flask (mlflow-skinny only) the command says what to install, with [ui] printed as typed."""
    code = ("import sys; sys.modules['flask'] = None; sys.argv = ['mlengineer', 'ui']; "
            "from mlengineer.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 2, r.stderr
    assert "pip install 'mlengineer[ui]'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_no_store_yet_says_what_to_do(tmp_path: Path) -> None:
    r = run_cli("ui", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert r.returncode == 2 and "No tracking store at" in r.stderr and "mlengineer train" in r.stderr
    assert not (tmp_path / "none.db").exists()  # looking created nothing


@pytest.fixture(scope="module")
def ui(churn_model_dir: Path, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The report attached to the churn model's run, then `mlengineer ui` on that store."""
    folder = tmp_path_factory.mktemp("ui")
    r = run_cli("report", str(churn_model_dir), "--out", str(folder / "churn-report.html"),
                "--tracking-uri", tracking_uri)
    assert r.returncode == 0 and "attached to run" in r.stdout, r.stdout + r.stderr
    meta = json.loads((churn_model_dir / "artifacts" / "bundle" / "metadata.json").read_text())
    run_id = meta["run_id"]
    port = free_port()
    log = (folder / "ui.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlengineer"), "ui", "--tracking-uri", tracking_uri,
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # MLflow's server takes a while to start on two busy cores
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        assert proc.poll() is None, (folder / "ui.log").read_text()
        import mlflow

        client = mlflow.MlflowClient(tracking_uri)
        experiment = client.get_run(run_id).info.experiment_id
        # the run page lists the ten latest child runs: a search that tuned one family many times logs more
        [latest] = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run_id}'",
                                      order_by=["attributes.start_time DESC"], max_results=1)
        candidate = latest.info.run_name
        assert candidate in {r["model"] for r in meta["leaderboard"]}
        yield {"url": url, "run_id": run_id, "experiment": experiment, "folder": folder, "proc": proc,
               "candidate": candidate}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        log.close()


@pytest.mark.slow
@pytest.mark.browser
def test_the_ui_shows_the_run_its_metrics_leaderboard_and_report(ui: dict) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the dev extra (playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium at /usr/bin/chromium (scripts/setup-system.sh)")
    run_page = f"{ui['url']}/#/experiments/{ui['experiment']}/runs/{ui['run_id']}"
    shots = ui["folder"]
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                   viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.goto(run_page, wait_until="load")
            page.get_by_text("valid_roc_auc").first.wait_for(timeout=90_000)
            page.get_by_text(ui["candidate"], exact=True).first.wait_for(timeout=60_000)  # a candidate's child run
            page.screenshot(path=str(shots / "run.png"))
            body = page.inner_text("body")
            assert "churn-model" in body and "n_train_rows" in body, body
            page.goto(f"{run_page}/artifacts", wait_until="load")
            page.get_by_text("training", exact=True).first.click()
            page.get_by_text("leaderboard.json").first.click()
            page.get_by_text('"weights_chosen_by"').first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "leaderboard.png"))
            page.get_by_text("report", exact=True).first.click()
            page.get_by_text("churn-report.html").first.click()
            frame = page.frame_locator("iframe").first
            frame.get_by_text("churn-model: model report").first.wait_for(timeout=60_000)
            assert "Leaderboard" in frame.locator("body").inner_text()
            page.screenshot(path=str(shots / "report.png"))
        finally:
            ctx.close()
    from PIL import Image

    for png in ("run.png", "leaderboard.png", "report.png"):
        im = Image.open(shots / png).convert("RGB")
        assert len(set(im.resize((280, 200)).getdata())) > 50, f"{png} looks blank"


@pytest.mark.slow
def test_the_ui_stops_whole_on_sigterm(ui: dict) -> None:
    """Last in this module: SIGTERM stops the command and the MLflow server it started; the port is free."""
    proc: subprocess.Popen[bytes] = ui["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    port = int(ui["url"].rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{ui['url']}/health", timeout=1)
        except httpx.HTTPError:
            break
        time.sleep(0.5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{ui['url']}/health", timeout=1)
    assert port
