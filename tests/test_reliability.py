"""Production safety, the short form of the reliability suite (bench/reliability.py runs the long one):
bundles that can be trusted, a tracking store that survives concurrent and killed runs, swaps that cannot
break clients, and bad input into every command ending in one line and exit status 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ModelError

from .conftest import FIXTURES, run_cli, run_clis
from .reliability import DAMAGES, PWNED, bad_cli_cases, check_cli

CHURN = FIXTURES / "churn_800.csv"


@pytest.fixture(scope="module")
def other_columns_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn model trained without two of the columns the shared churn model reads."""
    df = pd.read_csv(CHURN).drop(columns=["age", "plan"])
    out = tmp_path_factory.mktemp("other") / "other-model"
    mlengineer.train(df, "churn", time_budget=3, families=["linear"], out=out, track=False)
    return out


@pytest.fixture(scope="module")
def dropped_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn model that knows every column but uses neither 'age' nor 'plan' (dropped at training)."""
    out = tmp_path_factory.mktemp("dropped") / "dropped-model"
    mlengineer.train(CHURN, "churn", time_budget=3, families=["linear"], out=out, track=False, drop=["age", "plan"])
    return out


# -- bundles ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "damage"), DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_damaged_bundle_is_refused_in_one_line_before_it_is_unpickled(
        name: str, damage, churn_model_dir: Path, other_columns_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "m"
    shutil.copytree(churn_model_dir, bundle)
    damage(bundle, other_columns_model)
    with pytest.raises(ModelError) as err:
        mlengineer.load(bundle)
    assert "\n" not in str(err.value) and str(bundle) in str(err.value)
    assert not (tmp_path / PWNED).exists(), "the bundle's pickle ran"


def test_the_harmful_pickle_runs_nothing_through_the_cli(churn_model_dir: Path, other_columns_model: Path,
                                                         tmp_path: Path) -> None:
    bundle = tmp_path / "m"
    shutil.copytree(churn_model_dir, bundle)
    dict(DAMAGES)["estimator replaced by a pickle that runs a command"](bundle, other_columns_model)
    commands = (["predict", str(bundle), str(CHURN)], ["register", str(bundle), "--name", "x"],
                ["report", str(bundle), "--out", str(tmp_path / "r.html")], ["verify", str(bundle)])
    for args, r in zip(commands, run_clis(*commands, cwd=tmp_path), strict=True):  # side by side, as processes
        assert r.returncode == 2 and "estimator.joblib does not match its manifest" in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / PWNED).exists()


def test_signing_binds_a_bundle_to_a_key(churn_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.bundle.manifest import SIGNING_KEY_ENV

    df = pd.read_csv(churn_csv).head(300)
    monkeypatch.setenv(SIGNING_KEY_ENV, "key-one")
    mlengineer.train(df, "churn", time_budget=2, families=["linear"], out=tmp_path / "signed", track=False)
    assert mlengineer.load(tmp_path / "signed").task.kind == "binary"
    monkeypatch.setenv(SIGNING_KEY_ENV, "key-two")
    with pytest.raises(ModelError, match="signed with another key"):
        mlengineer.load(tmp_path / "signed")
    monkeypatch.delenv(SIGNING_KEY_ENV)
    mlengineer.train(df, "churn", time_budget=2, families=["linear"], out=tmp_path / "plain", track=False)
    monkeypatch.setenv(SIGNING_KEY_ENV, "key-one")
    with pytest.raises(ModelError, match="is not signed"):
        mlengineer.load(tmp_path / "plain")


@pytest.mark.long
def test_an_old_bundle_without_manifest_can_be_trusted_explicitly(churn_model_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "old"
    shutil.copytree(churn_model_dir, bundle)
    (bundle / "manifest.json").unlink()
    r = run_cli("predict", str(bundle), str(CHURN), cwd=tmp_path)
    assert r.returncode == 2 and "verify" in r.stderr and "--trust" in r.stderr
    assert run_cli("verify", str(bundle), "--trust", cwd=tmp_path).returncode == 0
    assert run_cli("predict", str(bundle), str(CHURN), cwd=tmp_path).returncode == 0


# -- the tracking store ------------------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    """The environment of a user's shell: without the store MLflow put there for this test process."""
    return {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "COLUMNS": "200"}


def _train_args(out: Path, budget: str = "4") -> list[str]:
    return [str(Path(sys.executable).parent / "mlengineer"), "train", str(CHURN), "--target", "churn",
            "--time-budget", budget, "--families", "linear,lightgbm", "--out", str(out)]


@pytest.mark.long
@pytest.mark.slow
def test_concurrent_trainings_share_a_fresh_store(tmp_path: Path) -> None:
    env = _env()
    procs = [subprocess.Popen(_train_args(tmp_path / f"m{i}", "2"), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    r = run_cli("runs", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("FINISHED") == 3, r.stdout + r.stderr
    # and the store still takes more
    assert subprocess.run(_train_args(tmp_path / "m3", "1"), cwd=tmp_path, env=env, capture_output=True).returncode == 0


def test_a_damaged_store_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    from .reliability import _damaged_store

    db = _damaged_store(tmp_path / "mlruns.db")
    r = run_cli("runs", cwd=tmp_path)
    assert r.returncode == 2 and "damaged" in r.stderr and f"mv {db}" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.long
@pytest.mark.slow
def test_a_training_killed_while_it_records_its_run_ends_killed(tmp_path: Path) -> None:
    """kill -9 while the run is RUNNING (the bundle being saved, the run being logged): the next open of the
    store marks the run KILLED, and the next save to the same place sweeps what the killed one left."""
    import sqlite3

    env = _env()
    proc = subprocess.Popen(_train_args(tmp_path / "m", "6"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db, running = tmp_path / "mlruns.db", 0
    while proc.poll() is None and not running:
        time.sleep(0.02)
        try:
            with sqlite3.connect(db, timeout=0.1) as con:
                running = con.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]
        except sqlite3.Error:
            continue
    assert running, "the training ended before its run could be caught RUNNING"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = run_cli("runs", cwd=tmp_path)
    assert r.returncode == 0 and "KILLED" in r.stdout and "RUNNING" not in r.stdout, r.stdout + r.stderr
    mlengineer.train(pd.read_csv(CHURN).head(300), "churn", time_budget=2, families=["linear"],
                     out=tmp_path / "m", track=False)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.")]


def test_a_run_left_running_by_a_dead_process_is_marked_killed(tmp_path: Path) -> None:
    import mlflow

    from mlengineer.tracking.store import HOST_TAG, OWNER_TAG

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("mlengineer")
    import socket

    dead = client.create_run(exp, tags={OWNER_TAG: "999999-1", HOST_TAG: socket.gethostname()}).info.run_id
    alive = client.create_run(exp, tags={OWNER_TAG: "1-0", HOST_TAG: "another-machine"}).info.run_id
    r = run_cli("runs", "--tracking-uri", uri, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert client.get_run(dead).info.status == "KILLED"
    assert client.get_run(alive).info.status == "RUNNING"  # another machine's: not ours to judge


def test_staging_left_by_a_dead_process_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    from mlengineer.data.files import owner_tag, sweep_leftovers

    dest = tmp_path / "m"
    dead = tmp_path / ".m.staging-999999-1-abc"
    dead.mkdir()
    old = tmp_path / ".m.old-999999-1"
    old.mkdir()
    mine = tmp_path / f".m.staging-{owner_tag()}-xyz"
    mine.mkdir()
    other = tmp_path / ".n.staging-999999-1-abc"
    other.mkdir()
    assert sorted(p.name for p in sweep_leftovers(dest)) == sorted([dead.name, old.name])
    assert mine.exists() and other.exists()


# -- swaps that cannot break clients --------------------------------------------------------------------------

@pytest.mark.long
@pytest.mark.slow
def test_an_incompatible_version_is_not_promoted_without_force(churn_model_dir: Path, dropped_model: Path,
                                                               tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register

    # the champion set up in process (the commands for it: test_serve_reload.py); the refusal through the CLI
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    register(dropped_model, "churn", tracking_uri=db)
    promote("churn", "1", tracking_uri=db)
    uri = ["--tracking-uri", db]
    r = run_cli("register", str(churn_model_dir), "--name", "churn", *uri, cwd=tmp_path)
    assert r.returncode == 0 and "warning" in r.stdout and "'age'" in r.stdout, r.stdout
    r = run_cli("promote", "churn", "2", *uri, cwd=tmp_path)
    assert r.returncode == 2 and "cannot take the alias 'champion'" in r.stderr and "--force" in r.stderr
    r = run_cli("promote", "churn", "2", "--force", *uri, cwd=tmp_path)
    assert r.returncode == 0 and "warning (--force)" in r.stdout
    # forced, and a rollback, mark the version so that servers on the alias follow (they refuse others)
    from mlengineer.tracking.registry import ModelRef, lookup, rollback
    from mlengineer.tracking.store import mlflow_client

    client = mlflow_client(db)
    assert lookup(ModelRef(name="churn", version="2"), client=client).forced == {"champion": "1"}  # forced over v1
    assert lookup(ModelRef(name="churn", version="1"), client=client).forced == {}
    assert rollback("churn", tracking_uri=db) == ("2", "1")
    assert lookup(ModelRef(name="churn", version="1"), client=client).forced == {"champion": "2"}


def test_compatibility_rules(churn_model_dir: Path, dropped_model: Path, other_columns_model: Path) -> None:
    from mlengineer.bundle.compat import input_problems

    full, dropped = mlengineer.load(churn_model_dir), mlengineer.load(dropped_model)
    other = mlengineer.load(other_columns_model)
    assert input_problems(full, full) == []
    # clients send columns the new model knows but does not use: it ignores them
    assert input_problems(full, dropped) == []
    needs = input_problems(dropped, full)  # clients of `dropped` need not send 'age' or 'plan'
    assert any("needs column 'age'" in p for p in needs) and any("needs column 'plan'" in p for p in needs)
    unknown = input_problems(full, other)  # `other` never saw 'age': the server would refuse rows holding it
    assert any("does not know column 'age'" in p for p in unknown)
    # `dropped` accepts and ignores 'age' and 'plan': its clients may send them, which `other` would refuse
    ignored = input_problems(dropped, other)
    assert [p for p in ignored if "accepts and ignores" in p] == [
        p for p in ignored if "'age'" in p or "'plan'" in p] and len(ignored) == 2, ignored


def test_a_registered_version_whose_files_were_replaced_is_refused(churn_model_dir: Path, tmp_path: Path) -> None:
    from mlengineer.tracking.registry import ModelRef, load_version, lookup, register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    info = register(churn_model_dir, "churn", tracking_uri=uri)
    assert info.digest
    found = lookup(ModelRef("churn", version=info.version), client=mlflow_client(uri))
    assert load_version(found, tracking_uri=uri).task.kind == "binary"
    # replace the stored copy with another bundle, manifest and all
    from urllib.parse import unquote, urlparse

    stored = Path(unquote(urlparse(found.source).path))
    other = tmp_path / "other"
    mlengineer.train(pd.read_csv(CHURN).head(300), "churn", time_budget=2, families=["linear"], out=other,
                     track=False)
    shutil.rmtree(stored)
    shutil.copytree(other, stored)
    with pytest.raises(ModelError, match="not the bundle that was registered"):
        load_version(found, tracking_uri=uri)


# -- the command line -------------------------------------------------------------------------------------------

#: the short form runs these (the others' faults have tests of their own: test_errors.py, test_compare.py, the
#: damaged-store and --out tests here); bench/reliability.py runs every case
SHORT = {"train: infinite budget", "train: huge budget", "train: bad tracking store", "predict: wrong columns",
         "serve: negative body limit", "serve: damaged bundle", "runs: mysql without driver",
         "runs: not a database", "verify: no manifest", "explain: unknown class", "calibrate: bad method"}


@pytest.fixture(scope="module")
def cli_cases(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    work = tmp_path_factory.mktemp("bad-input")
    cases = bad_cli_cases(work, churn_model_dir)
    return cases, work


@pytest.mark.slow
def test_bad_input_into_every_command_is_one_line_and_exit_2(cli_cases: tuple[list, Path],
                                                            churn_model_dir: Path) -> None:
    cases, work = cli_cases
    assert len(cases) >= 60 and {c.args[0] for c in cases} >= {
        "train", "predict", "evaluate", "report", "serve", "runs", "register", "promote", "verify", "profile",
        "audit", "compare", "explain", "calibrate"}
    cases = [c for c in cases if c.name in SHORT]
    assert len(cases) == len(SHORT)
    # each case is a command of its own, started as a user would: run side by side, as separate processes they
    # are (most of each one's seconds are its start, not the check)
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda c: check_cli(c, cwd=work), cases))
    problems = [p for p in found if p is not None]
    assert not problems, "\n".join(problems)


def test_out_naming_a_file_is_refused_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "model"
    blocker.write_text("not a folder")
    r = run_cli("train", str(CHURN), "--target", "churn", "--out", str(blocker), "--time-budget", "30", cwd=tmp_path)
    assert r.returncode == 2 and "is a file" in r.stderr
    assert "Leaderboard" not in r.stdout and not (tmp_path / "mlruns.db").exists()  # nothing trained, nothing run


@pytest.mark.slow
def test_calibrate_in_place_keeps_the_model_before(churn_model_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "m"
    shutil.copytree(churn_model_dir, bundle)
    before = json.loads((bundle / "artifacts" / "bundle" / "metadata.json").read_text())
    r = run_cli("calibrate", str(bundle), "--target-precision", "0.6", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("m.before-calibrate-")]
    assert len(kept) == 1 and str(kept[0]) in r.stdout
    assert json.loads((kept[0] / "artifacts" / "bundle" / "metadata.json").read_text()) == before
    assert mlengineer.load(kept[0]).extras.get("threshold") is None
    assert mlengineer.load(bundle).extras.get("threshold") is not None


# -- the server -------------------------------------------------------------------------------------------------

def _raw_post(url: str, body: bytes, *, content_type: str = "application/json", pause: float = 0) -> None:
    """Send half a body and go away (``pause`` > 0), as a client that gives up would."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(head + body[: len(body) // 2])
        time.sleep(pause)


@pytest.mark.slow
def test_server_edges(churn_model_dir: Path, tmp_path: Path) -> None:
    import httpx

    from .test_serve_basic import running_server

    row = pd.read_csv(CHURN).drop(columns=["churn"]).head(1).to_dict(orient="records")[0]
    body = json.dumps({"records": [row]}).encode()
    with running_server(churn_model_dir, cwd=tmp_path) as srv:
        # a browser page can post text/plain or a form to any server it reaches, with no preflight
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = httpx.post(f"{srv.url}/predict", content=body, headers={"content-type": ctype})
            assert r.status_code == 415 and "application/json" in r.json()["error"], (ctype, r.text)
        assert httpx.post(f"{srv.url}/predict", content=body,
                          headers={"content-type": "application/json"}).status_code == 200
        # the metadata names the bundle, not where it lies on the server's disk
        name = mlengineer.load(churn_model_dir).name
        meta = httpx.get(f"{srv.url}/v2/models/{name}").json()
        assert meta["parameters"]["source"] == churn_model_dir.name
        # a client that abandons its body is not an error of the server
        _raw_post(srv.url, body, pause=0.3)
        time.sleep(0.5)
        metrics = httpx.get(f"{srv.url}/metrics").text
    log = srv.output()
    assert '"status":499' in log and "Traceback" not in log
    assert 'reason="internal"' not in metrics


def test_a_row_the_log_cannot_write_is_dropped_alone_and_counted(tmp_path: Path) -> None:
    import numpy as np

    from mlengineer.monitoring.prediction_log import PredictionLog, read_prediction_log

    dropped: list[int] = []
    log = PredictionLog(tmp_path)
    log.on_dropped = dropped.append
    for i, plan in enumerate(["basic", "\ud800", "premium"]):  # a lone surrogate cannot be written as UTF-8
        log.append(columns={"age": np.array([30.0 + i]), "plan": [plan]}, outputs={"prediction": np.array(["no"])},
                   n_rows=1, request_id=f"r{i}", endpoint="predict", model="m", version="1")
    assert log.flush() == 2
    assert dropped == [1] and log.rows_dropped == 1
    assert sorted(read_prediction_log(tmp_path)["_request_id"]) == ["r0", "r2"]


def test_the_log_written_in_pieces_reads_back_as_one_table_in_request_order(tmp_path: Path) -> None:
    """Requests are turned into Arrow a piece at a time (``prediction_log.CHUNK``), the interpreter's lock
    handed back between pieces; the file holds every row once, in order, with its request's position, time
    and id, whatever the pieces' types (a column numeric in one piece and text in another)."""
    import numpy as np

    from mlengineer.monitoring import prediction_log
    from mlengineer.monitoring.prediction_log import PredictionLog, read_prediction_log

    log = PredictionLog(tmp_path)
    n = 2 * prediction_log.CHUNK + 7
    for i in range(n):
        rows = 1 + i % 3
        fee = np.full(rows, float(i)) if i < n - 3 else ["n/a"] * rows  # the last requests' fees arrive as text
        log.append(columns={"fee": fee, "plan": [None if i % 5 == 0 else f"p{i}"] * rows},
                   outputs={"prediction": np.array(["yes"] * rows, dtype=object), "proba_yes": np.full(rows, 0.5)},
                   n_rows=rows, request_id=f"r{i}", endpoint="predict", model="m", version="1")
    total = sum(1 + i % 3 for i in range(n))
    assert log.flush() == total and log.files_written == 1
    back = read_prediction_log(tmp_path)
    assert len(back) == total and back["_request_id"].drop_duplicates().tolist() == [f"r{i}" for i in range(n)]
    assert back.groupby("_request_id", sort=False)["_row"].apply(list).tolist() == [list(range(1 + i % 3)) for i in range(n)]
    assert back["fee"].iloc[0] == "0.0" and back["fee"].iloc[-1] == "n/a"  # one type for the column: text
    assert back["plan"].isna().sum() == sum(1 + i % 3 for i in range(n) if i % 5 == 0)
    assert str(back["_ts"].dtype) == "datetime64[ns, UTC]" and back["_ts"].is_monotonic_increasing
    assert (back["proba_yes"] == 0.5).all() and back["_endpoint"].eq("predict").all()


@pytest.mark.slow
def test_a_server_never_swaps_in_a_version_its_clients_cannot_call_unless_an_operator_forced_it(
        churn_model_dir: Path, dropped_model: Path, tmp_path: Path) -> None:
    import httpx

    from mlengineer.tracking.store import mlflow_client

    from .test_serve_basic import running_server

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    from mlengineer.tracking.registry import promote, register

    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    register(dropped_model, "churn", tracking_uri=uri)  # v2 uses neither 'age' nor 'plan': compatible
    register(churn_model_dir, "churn", tracking_uri=uri)  # v3, like v1
    row = pd.read_csv(CHURN).drop(columns=["churn"]).head(1).to_dict(orient="records")[0]
    slim = {k: v for k, v in row.items() if k not in ("age", "plan")}

    def wait_for(srv: Any, version: str) -> None:
        deadline = time.time() + 60
        while time.time() < deadline and httpx.post(f"{srv.url}/predict", json={"records": [row]}).headers.get(
                "x-model-version") != version:
            time.sleep(0.2)

    with running_server("models:/churn@champion", "--poll-interval", "0.3", "--tracking-uri", uri,
                        cwd=tmp_path) as srv:
        promote("churn", "2", tracking_uri=uri)  # compatible: clients send more than v2 needs
        wait_for(srv, "2")
        # the alias moved to v3 behind the tool's back (MLflow's own client): v3 needs 'age' and 'plan', which
        # v2's clients need not send, so the server keeps v2 and shows which version it refused
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "3")
        time.sleep(2)
        r = httpx.post(f"{srv.url}/predict", json={"records": [slim]})
        assert r.status_code == 200 and r.headers["x-model-version"] == "2"
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'mlengineer_model_refused{model="churn",version="3"} 1.0' in metrics, metrics[-2000:]
        # the alias back on v2, then an operator forces v3 (or rolls back to a version like it): the server
        # follows, with a warning
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "2")
        time.sleep(1)
        assert 'mlengineer_model_refused{' not in httpx.get(f"{srv.url}/metrics").text
        assert promote("churn", "3", tracking_uri=uri, force=True).problems
        wait_for(srv, "3")
        assert httpx.post(f"{srv.url}/predict", json={"records": [row]}).headers["x-model-version"] == "3"
    log = srv.output()
    assert "new model version refused" in log and "'age'" in log
    assert "operator pointed the alias at all the same" in log
