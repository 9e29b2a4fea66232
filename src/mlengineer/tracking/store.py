"""The tracking store behind every run and registry call: which store, and one handle on MLflow for it.

The default store is a SQLite file, ``./mlruns.db``, with artifacts under ``./mlartifacts``; set
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` to use another. MLflow is imported only when tracking is used.

Several processes may use one store at once (trainings from cron, CI and a notebook side by side). MLflow
creates and migrates a SQLite store on first use, and two processes doing that at once break it for good;
so the first open of a SQLite store in a process happens under a file lock beside it (``.NAME.lock``), and
SQLite's own locking (MLflow waits up to 20 s on a busy database) serialises the writes after that. At that
first open, runs that a killed process left RUNNING on this machine are marked KILLED. A store that cannot
be used (damaged, not a database, a driver missing) is one ConfigError naming it and what to do.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..data.files import owner_alive, owner_tag
from ..errors import ConfigError
from .blank import discard, keep_blank, start_from_blank

__all__ = ["OWNER_TAG", "default_tracking_uri", "experiment_id", "missing_sqlite_store", "mlflow_client",
           "mlflow_module", "owner_tags", "store_error"]

#: run tags that say which process on which machine a run belongs to, so a killed one can be found
OWNER_TAG, HOST_TAG = "mlengineer.owner", "mlengineer.host"
_OPENED: set[str] = set()


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def owner_tags() -> dict[str, str]:
    """Tags for a run this process starts: a later open of the store marks it KILLED if the process dies."""
    return {OWNER_TAG: owner_tag(), HOST_TAG: socket.gethostname()}


def mlflow_module(uri: str | None) -> Any:
    """MLflow, pointed at the store ``uri`` (the default store if None), which is created, migrated and
    swept of killed runs on its first use in this process."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_TRACKING_INSECURE_TLS", "false")
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent", "mlflow.store.sql"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import mlflow

    uri = uri or default_tracking_uri()
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # MLflow also writes the uri into the environment, where the next call without one (a notebook's next
    # train) would take it for the user's choice instead of ./mlruns.db
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    if uri.startswith("sqlite:"):
        mlflow.set_registry_uri(uri)
    if uri not in _OPENED:
        _open(mlflow, uri)
        _OPENED.add(uri)
    return mlflow


def mlflow_client(uri: str | None = None) -> Any:
    mlflow = mlflow_module(uri)
    return mlflow.MlflowClient()


def missing_sqlite_store(uri: str | None) -> bool:
    """Whether ``uri`` (the default store when None) names a SQLite file that is not there: opening it would
    create an empty store, where a reader wants to be told of a mistyped path."""
    db = _sqlite_path(uri or default_tracking_uri())
    return db is not None and not db.exists()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


@contextmanager
def _locked(db: Path | None) -> Iterator[None]:
    """An exclusive lock beside a SQLite store (nothing for other stores), held across its first open."""
    if db is None or not db.parent.is_dir():
        yield
        return
    lock = db.parent / f".{db.name}.lock"
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _open(mlflow: Any, uri: str) -> None:
    db = _sqlite_path(uri)
    if db is not None and db.exists() and not db.is_file():
        raise ConfigError(f"The tracking store {uri!r} names a folder, not a SQLite file: pass --tracking-uri "
                          "sqlite:///PATH/mlruns.db.")
    try:
        if db is not None:  # the lock lives beside the store: two first opens of a new folder share it too
            db.parent.mkdir(parents=True, exist_ok=True)
        with _locked(db):
            new = db if db is not None and not db.exists() and db.parent.is_dir() else None
            copied = new is not None and start_from_blank(new)
            client = mlflow.MlflowClient(tracking_uri=uri)
            try:
                client.search_experiments(max_results=1)  # creates and migrates the store, once, under the lock
            except Exception:
                if new is not None and copied:  # a blank MLflow does not accept: gone, the next open migrates
                    discard(new)
                raise
            if new is not None and not copied:
                keep_blank(new)
            _mark_killed_runs(client)
    except ConfigError:
        raise
    except Exception as e:
        raise store_error(e, uri) from None


def _mark_killed_runs(client: Any) -> None:
    """Runs left RUNNING by a process of this machine that is gone (killed mid-way) end as KILLED."""
    host = socket.gethostname()
    ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not ids:
        return
    for run in client.search_runs(ids, filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        owner = tags.get(OWNER_TAG)
        if owner and tags.get(HOST_TAG) == host and not owner_alive(owner):
            client.set_terminated(run.info.run_id, status="KILLED")


def store_error(e: BaseException, uri: str | None) -> ConfigError:
    """One line for a store that cannot be used: what is wrong with it and what to do."""
    uri = uri or default_tracking_uri()
    text = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    low = text.lower()
    db = _sqlite_path(uri)
    if "file is not a database" in low or "file is encrypted" in low:
        return ConfigError(f"The tracking store {uri!r} is not a SQLite database: pass --tracking-uri naming an "
                           "MLflow store, or move that file aside.")
    if "out-of-date database schema" in low:
        return ConfigError(f"The tracking store {uri!r} was made by an older MLflow: back it up, then run 'mlflow db "
                           f"upgrade {uri}', or pass --tracking-uri to use another store.")
    if any(k in low for k in ("alembic", "locate revision", "duplicate column", "no such table", "no such column",
                              "already exists", "malformed")):
        aside = f"move {db.name} aside (mv {db} {db}.damaged) and train again" if db else "restore it from a backup"
        return ConfigError(f"The tracking store {uri!r} is damaged, most likely by a migration that stopped half-way "
                           f"({text[:100]}): {aside}, or pass --tracking-uri to use another store.")
    if isinstance(e, ModuleNotFoundError) or "no module named" in low:
        return ConfigError(f"The tracking store {uri!r} needs a database driver that is not installed ({text}): "
                           "install it (pip install pymysql for mysql://, psycopg2-binary for postgresql://).")
    if ("maintenance mode" in low or "mlflow_allow_file_store" in low) and "://" not in uri and \
            uri.lower().endswith((".db", ".sqlite", ".sqlite3")):  # a SQLite file's path, written without its scheme
        return ConfigError(f"The tracking store {uri!r} is a path without a scheme, which MLflow takes for a folder "
                           f"store: pass --tracking-uri sqlite:///{Path(uri).expanduser().resolve()}.")
    if "maintenance mode" in low or "mlflow_allow_file_store" in low:
        return ConfigError(f"The tracking store {uri!r} is a folder (MLflow's file store), which this MLflow no "
                           "longer opens: pass --tracking-uri sqlite:///PATH/mlruns.db, or set "
                           "MLFLOW_ALLOW_FILE_STORE=true to use the folder anyway.")
    if isinstance(e, OSError) and db is not None:
        return ConfigError(f"The tracking store {uri!r} cannot be written: its folder {str(db.parent)!r} is not a "
                           f"writable folder ({text[:100]}): pass --tracking-uri naming a store in one.")
    if "unable to open database file" in low:
        return ConfigError(f"The tracking store {uri!r} cannot be opened: check that its folder exists and is "
                           "writable, or pass --tracking-uri.")
    return ConfigError(f"The tracking store {uri!r} cannot be used: {text}. Pass --tracking-uri to use another.")


def experiment_id(mlflow: Any, name: str) -> str:
    """The id of experiment ``name``, created if it does not exist (another process may create it at once)."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    artifacts = None
    db = _sqlite_path(mlflow.get_tracking_uri())
    if db is not None:
        artifacts = (db.parent / "mlartifacts").resolve().as_uri()
    try:
        return str(mlflow.create_experiment(name, artifact_location=artifacts))
    except Exception:  # created by another process in between
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)
