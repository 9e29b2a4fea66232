"""The tracking store, the registry and the trust in recorded bundles, as a new user met them (report "store"):
every open of a registered version checks its recorded digest, a training inside an open MLflow run nests
under it and never loses its model, PostgreSQL stores with the `sql` extra and their errors (one line, the
password masked), `runs --limit`, killed and interrupted runs, and opening a run's bundle in place."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ConfigError, ModelError
from mlengineer.tracking.lookup import open_model
from mlengineer.tracking.registry import register
from mlengineer.tracking.runs import list_runs
from mlengineer.tracking.store import HOST_TAG, OWNER_TAG, engine_uri, shown_uri, store_error

from .conftest import FIXTURES, run_cli
from .test_sources_postgres import URL as POSTGRES
from .test_sources_postgres import connect

pytestmark = pytest.mark.long  # make test-long: CI time

ROWS = pd.read_csv(FIXTURES / "churn_800.csv").head(300)


def _train(uri: str, out: Path | None, **kw: object) -> mlengineer.Model:
    return mlengineer.train(ROWS, "churn", time_budget=2, families=["linear"], out=out, tracking_uri=uri, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """A SQLite store holding two trainings, both registered as versions 1 and 2 of 'credit'."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    for name in ("c1", "c2"):
        _train(uri, root / name)
        register(root / name, "credit", tracking_uri=uri)
    yield uri, root / "c1", root / "c2"
    mlflow.set_tracking_uri(uri)  # nothing of a test's may leave a run open behind it
    while mlflow.active_run() is not None:
        mlflow.end_run()


# -- 1 and 7: a registered version's digest, and every form a model is named by ------------------------------------

def test_a_replaced_version_is_refused_wherever_it_is_opened(store: tuple[str, Path, Path]) -> None:
    uri, c1, c2 = store
    source = mlflow.MlflowClient(uri).get_model_version("credit", "2").source.removeprefix("file://")
    shutil.rmtree(source)
    shutil.copytree(c1, source)  # another valid bundle, its own manifest matching it, in version 2's place
    for opened in (lambda: open_model("models:/credit/2", tracking_uri=uri),
                   lambda: mlengineer.load("models:/credit/2", tracking_uri=uri)):
        with pytest.raises(ModelError, match="not the bundle that was registered"):
            opened()
    r = run_cli("verify", "models:/credit/2", "--tracking-uri", uri)
    assert r.returncode == 2 and "not the bundle that was registered" in r.stderr, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "every file matches" not in r.stdout
    assert open_model("models:/credit/1", tracking_uri=uri).metadata["run_id"]  # the untouched one opens


def test_every_form_of_a_name_opens_and_a_wrong_one_lists_them(store: tuple[str, Path, Path]) -> None:
    uri, c1, _ = store
    run_id = mlengineer.load(c1).metadata["run_id"]
    for spec in (str(c1), run_id, f"runs:/{run_id}", f"runs:/{run_id}/model", "models:/credit/1"):
        assert open_model(spec, tracking_uri=uri).metadata["run_id"] == run_id, spec
    r = run_cli("verify", run_id, "--tracking-uri", uri)
    assert r.returncode == 0 and "every file matches its manifest" in r.stdout, r.stderr
    r = run_cli("register", f"runs:/{run_id}/model", "--name", "by-run", "--tracking-uri", uri)
    assert r.returncode == 0 and "Registered by-run version 1" in r.stdout, r.stdout + r.stderr
    with pytest.raises(ModelError) as e:
        open_model("no-such-model", tracking_uri=uri)
    assert all(form in str(e.value) for form in ("bundle folder", "runs:/ID/model", "models:/NAME/VERSION",
                                                 "models:/NAME@ALIAS")), e.value


# -- 8: a run's bundle read in place, quietly; a path after the id other than model refused ------------------------

def test_a_runs_bundle_is_read_in_place_without_a_progress_bar(store: tuple[str, Path, Path],
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    uri, c1, _ = store
    run_id = mlengineer.load(c1).metadata["run_id"]
    artifacts = mlflow.MlflowClient(uri).get_run(run_id).info.artifact_uri.removeprefix("file://")
    temp = set(Path(os.environ.get("TMPDIR", "/tmp")).iterdir())
    model = mlengineer.load(run_id, tracking_uri=uri)
    assert model.path == (Path(artifacts) / "model").resolve()  # the store's own folder: no copy
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).iterdir()) <= temp
    assert "Downloading artifacts" not in capfd.readouterr().err
    with pytest.raises(ModelError, match="runs:/.*/model"):
        mlengineer.load(f"runs:/{run_id}/nonsense/path", tracking_uri=uri)


# -- 2: a training inside an open run nests under it; one that cannot be recorded keeps its model -----------------

def test_a_training_inside_an_open_run_is_nested_under_it(store: tuple[str, Path, Path], tmp_path: Path) -> None:
    uri = store[0]
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_name="notebook") as outer:
        model = _train(uri, tmp_path / "nb")
        assert mlflow.active_run().info.run_id == outer.info.run_id  # the caller's run is still the open one
        mlflow.log_metric("after", 1.0)
    run = mlflow.MlflowClient(uri).get_run(model.metadata["run_id"])
    assert run.data.tags["mlflow.parentRunId"] == outer.info.run_id and run.info.status == "FINISHED"
    assert (tmp_path / "nb" / "MLmodel").is_file()
    assert model.metadata["run_id"] in [r["run_id"] for r in list_runs(tracking_uri=uri, limit=2)]


def test_an_open_run_of_another_store_is_refused_before_training(store: tuple[str, Path, Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import mlengineer.pipeline.run as pipeline

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(pipeline, "fit_pipeline", no_training)
    mlflow.set_tracking_uri(store[0])
    with mlflow.start_run(run_name="elsewhere"):
        with pytest.raises(ConfigError, match="active, in another tracking store"):
            _train(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "x")
        assert mlflow.get_tracking_uri() == store[0]  # the caller's run can still end where it lives
    assert not (tmp_path / "x").exists()


def test_a_run_that_cannot_be_recorded_still_saves_the_model(store: tuple[str, Path, Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import mlengineer.tracking.runs as runs

    def store_gone(*_: object) -> str:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(runs, "experiment_id", store_gone)  # the store fails once the training is done
    with pytest.raises(ConfigError) as e:
        _train(store[0], tmp_path / "kept")
    assert "saved in" in str(e.value) and "kept" in str(e.value) and "not recorded" in str(e.value)
    assert mlengineer.load(tmp_path / "kept").predict(ROWS.head(3)) is not None
    assert e.value.model is not None  # type: ignore[attr-defined]


def test_mlflow_run_id_is_ignored_with_a_note(store: tuple[str, Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    uri = store[0]
    client = mlflow.MlflowClient(uri)
    launcher = client.create_run(client.create_experiment(f"ci-{uuid.uuid4().hex[:6]}")).info.run_id
    client.set_terminated(launcher)
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)
    with caplog.at_level(logging.WARNING, logger="mlengineer"):
        model = _train(uri, tmp_path / "ci")
    assert model.metadata["run_id"] != launcher and os.environ["MLFLOW_RUN_ID"] == launcher
    assert "MLFLOW_RUN_ID" in caplog.text
    assert client.get_run(model.metadata["run_id"]).data.tags["mlengineer.launcher_run"] == launcher
    assert not client.get_run(launcher).data.params  # nothing logged into the launcher's run
    assert list_runs(tracking_uri=uri, limit=1)[0]["run_id"] == model.metadata["run_id"]


# -- 9: Ctrl-C ends the run KILLED, and load says what became of it ------------------------------------------------

def test_ctrl_c_while_recording_ends_the_run_killed(store: tuple[str, Path, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.data.files import owner_tag

    uri = store[0]
    real = mlflow.log_artifacts
    leftover = tmp_path / f".i3.staging-{owner_tag()}-abc"

    def interrupted(local_dir: str, artifact_path: str | None = None, **kw: object) -> None:
        if artifact_path == "model":
            leftover.mkdir()  # as a save cut inside its clean-up leaves it
            raise KeyboardInterrupt
        real(local_dir, artifact_path=artifact_path, **kw)

    monkeypatch.setattr(mlflow, "log_artifacts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _train(uri, tmp_path / "i3")
    monkeypatch.undo()
    assert not (tmp_path / "i3").exists()  # an interrupted training leaves no new bundle at --out
    client = mlflow.MlflowClient(uri)
    killed = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
              if r.info.status == "KILLED"]
    assert len(killed) == 1
    assert not leftover.exists()
    with pytest.raises(ModelError, match="ended KILLED before it recorded its model"):
        mlengineer.load(killed[0].info.run_id, tracking_uri=uri)


# -- 5, 10, 11: runs --limit, and a mistyped store -----------------------------------------------------------------

def test_runs_limit_counts_trainings_not_candidates(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    from mlengineer.tracking.store import mlflow_client

    client = mlflow_client(uri)
    exp = client.create_experiment("mlengineer")
    older = client.create_run(exp, run_name="older").info.run_id
    time.sleep(0.01)
    newer = client.create_run(exp, run_name="newer").info.run_id
    time.sleep(0.01)
    for i in range(30):  # a search's candidates start after their training
        client.create_run(exp, run_name=f"lightgbm_{i}", tags={"mlflow.parentRunId": newer})
    assert [r["run_id"] for r in list_runs(tracking_uri=uri, limit=1)] == [newer]
    assert [r["run_id"] for r in list_runs(tracking_uri=uri, limit=2)] == [newer, older]
    for bad in ("0", "-1"):
        r = run_cli("runs", "--tracking-uri", uri, "--limit", bad)
        assert r.returncode == 2 and f"--limit must be at least 1; got {bad}" in r.stderr, r.stderr
        assert "tracking store" not in r.stderr
    r = run_cli("runs", "--tracking-uri", f"sqlite:///{tmp_path / 'typo.db'}")
    assert r.returncode == 2 and "typo.db" in r.stderr and "No runs recorded yet" not in r.stdout, r.stdout
    assert not (tmp_path / "typo.db").exists()


# -- 6: kill -9 while a candidate's run is open --------------------------------------------------------------------

def test_runs_a_killed_process_left_open_end_killed_with_their_children(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    script = f"""
import os, pandas as pd, mlengineer, mlengineer.tracking.runs as R
real = R._flat_params
def kill_in_candidate(params, prefix=""):
    if "family" in params:
        os.kill(os.getpid(), 9)
    return real(params, prefix)
R._flat_params = kill_in_candidate
mlengineer.train(pd.read_csv({str(FIXTURES / 'churn_800.csv')!r}).head(300), "churn", time_budget=2,
                 families=["linear"], out={str(tmp_path / 'k')!r}, tracking_uri={uri!r})
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("mlengineer").experiment_id
    child = client.search_runs([exp], "tags.`mlflow.parentRunId` IS NOT NULL")[0]
    assert child.info.status == "RUNNING" and child.data.tags.get(OWNER_TAG)  # tagged as its training is
    # a child without the owner's tags (recorded by an older mlengineer) ends with its parent all the same
    parent = child.data.tags["mlflow.parentRunId"]
    untagged = client.create_run(exp, tags={"mlflow.parentRunId": parent}).info.run_id
    grandchild = client.create_run(exp, tags={"mlflow.parentRunId": untagged}).info.run_id
    assert client.get_run(parent).data.tags[HOST_TAG] == socket.gethostname()
    r = run_cli("runs", "--tracking-uri", uri)
    assert r.returncode == 0 and "KILLED" in r.stdout, r.stdout + r.stderr
    for run_id in (parent, child.info.run_id, untagged, grandchild):
        assert client.get_run(run_id).info.status == "KILLED", run_id


# -- 3, 4: PostgreSQL with the sql extra; a store that refuses the password ----------------------------------------

def test_tracking_uris_are_printed_with_their_password_masked() -> None:
    assert shown_uri("postgresql://ann:s3cret@db:5432/x") == "postgresql://ann:***@db:5432/x"
    assert shown_uri("sqlite:////tmp/mlruns.db") == "sqlite:////tmp/mlruns.db"
    e = store_error(RuntimeError("could not connect to postgresql://ann:s3cret@db:5432/x (s3cret)"),
                    "postgresql://ann:s3cret@db:5432/x")
    assert "s3cret" not in str(e) and "ann:***@db" in str(e)
    installed = [m for m in ("psycopg", "psycopg2") if _installed(m)]
    if installed == ["psycopg2"]:  # the sql extra's driver, where SQLAlchemy 2.1 defaults to psycopg 3
        assert engine_uri("postgresql://ann@db/x") == "postgresql+psycopg2://ann@db/x"
        missing = store_error(ModuleNotFoundError("No module named 'psycopg'"), "postgresql+psycopg://ann@db/x")
        assert "postgresql+psycopg2://" in str(missing) and "psycopg2-binary" not in str(missing)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.fixture()
def pg_store() -> Iterator[str]:
    """A tracking store in a schema of its own in the test database, dropped afterwards."""
    engine, con = connect()
    schema = f"store_{uuid.uuid4().hex[:8]}"
    with con:
        con.exec_driver_sql(f"CREATE SCHEMA {schema}")
        con.commit()
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with engine.connect() as con:
        con.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        con.commit()
    engine.dispose()


@pytest.mark.postgres
def test_a_postgresql_store_works_with_the_sql_extra(pg_store: str, tmp_path: Path) -> None:
    assert pg_store.startswith("postgresql://")  # no driver named, as a user writes it
    model = _train(pg_store, tmp_path / "pg")
    r = run_cli("runs", "--tracking-uri", pg_store)
    assert r.returncode == 0 and model.metadata["run_id"][:8] in r.stdout, r.stdout + r.stderr


@pytest.mark.postgres
def test_a_store_that_refuses_the_password_is_one_masked_line() -> None:
    scheme, rest = POSTGRES.split("://", 1)
    user = rest.split(":", 1)[0]
    wrong = f"{scheme}://{user}:Wr0ngPassw0rd@{rest.split('@', 1)[1]}"
    r = run_cli("runs", "--tracking-uri", wrong)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Wr0ngPassw0rd" not in r.stderr and f"{user}:***@" in r.stderr and "password" in r.stderr
    assert "Traceback" not in r.stderr and "retried" not in r.stderr
