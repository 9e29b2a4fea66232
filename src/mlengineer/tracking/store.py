"""The tracking store behind every run and registry call: which store, and one handle on MLflow for it.

The default store is a SQLite file, ``./mlruns.db``, with artifacts under ``./mlartifacts``; set
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` to use another. MLflow is imported only when tracking is used.

Several processes may use one store at once (trainings from cron, CI and a notebook side by side). MLflow
creates and migrates a SQLite store on first use, and two processes doing that at once break it for good;
so the first open of a SQLite store in a process happens under a file lock beside it (``.NAME.lock``), and
SQLite's own locking (MLflow waits up to 20 s on a busy database) serialises the writes after that. At that
first open, runs that a killed process left RUNNING on this machine are marked KILLED (their nested runs too).
A store that cannot be used (damaged, not a database, a driver missing, a server that cannot be reached or
refuses the password) is one ConfigError naming it, its password masked (``shown_uri``), and what to do.

A database URI that names no driver (``postgresql://``, ``mysql://``) opens with the driver installed
(``engine_uri``): SQLAlchemy's own default (psycopg 3 for PostgreSQL since SQLAlchemy 2.1) is not what the
``sql`` extra installs. A database server is first reached once with a short timeout: MLflow itself retries a
failing engine for about 100 s, logging a traceback at each try.
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
from urllib.parse import unquote, urlsplit

from ..data.files import owner_alive, owner_tag
from ..data.sql import DRIVERS, installed_drivers, with_driver
from ..errors import ConfigError
from .blank import discard, keep_blank, start_from_blank

__all__ = ["OWNER_TAG", "check_outer_run", "default_tracking_uri", "engine_uri", "experiment_id",
           "masked", "missing_sqlite_store", "mlflow_client", "mlflow_module", "owner_tags", "quiet_downloads",
           "recording_run", "shown_uri", "store_error"]

#: run tags that say which process on which machine a run belongs to, so a killed one can be found
OWNER_TAG, HOST_TAG = "mlengineer.owner", "mlengineer.host"
_OPENED: set[str] = set()
_SERVERS = ("postgresql", "mysql", "mssql")  # databases behind a server: reached once, quickly, before MLflow


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def owner_tags() -> dict[str, str]:
    """Tags for a run this process starts: a later open of the store marks it KILLED if the process dies."""
    return {OWNER_TAG: owner_tag(), HOST_TAG: socket.gethostname()}


def shown_uri(uri: str | None) -> str:
    """``uri`` (the default store when None) as it may be printed: a password in it masked
    (``postgresql://user:***@host/db``)."""
    uri = uri or default_tracking_uri()
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    if not password:
        return uri
    users, _, host = parts.netloc.rpartition("@")
    user = users.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def masked(text: str, uri: str | None) -> str:
    """``text`` (a driver's or MLflow's message) with the password of ``uri`` masked wherever it shows."""
    uri = uri or default_tracking_uri()
    try:
        password = urlsplit(uri).password
    except ValueError:
        return text
    text = text.replace(uri, shown_uri(uri))
    for secret in {password, unquote(password)} if password else ():
        text = text.replace(secret, "***")
    return text


def _backend(uri: str) -> str:
    scheme, sep, _ = uri.partition("://")
    return scheme.split("+", 1)[0].lower() if sep else ""


def engine_uri(uri: str) -> str:
    """The URI MLflow is given for the store ``uri``: a PostgreSQL or MySQL URI that names no driver gets the
    one installed, by the rule reading data with --db follows (``data.sql.with_driver``)."""
    return with_driver(uri)


@contextmanager
def quiet_downloads() -> Iterator[None]:
    """MLflow's artifact downloads without their progress bar on stderr (one bar per file it copies)."""
    before = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = before


def mlflow_module(uri: str | None) -> Any:
    """MLflow, pointed at the store ``uri`` (the default store if None), which is created, migrated and
    swept of killed runs on its first use in this process."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_TRACKING_INSECURE_TLS", "false")
    for name in ("alembic", "mlflow.tracking.fluent", "mlflow.store.sql"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # its engine retries log a warning with the driver's whole message (the password's user, the server) each
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.ERROR)
    import mlflow

    given = uri or default_tracking_uri()
    uri = engine_uri(given)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # MLflow also writes the uri into the environment, where the next call without one (a notebook's next
    # train) would take it for the user's choice instead of ./mlruns.db
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if uri.startswith("sqlite:") or _backend(uri) in _SERVERS:  # the registry lives in the same database
        mlflow.set_registry_uri(uri)
    elif _backend(uri) in ("http", "https"):  # the server's registry, unless the user names another one
        mlflow.set_registry_uri(registry or uri)
    # MLflow writes the registry's uri into the environment as well, where a later store's registry (a server's)
    # and the commands started from here would take it for the user's choice
    if registry is None:
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
    else:
        os.environ["MLFLOW_REGISTRY_URI"] = registry
    if uri not in _OPENED:
        _open(mlflow, uri, given)
        _OPENED.add(uri)
    return mlflow


def check_outer_run(uri: str | None) -> str | None:
    """The id of the MLflow run active in this thread (``with mlflow.start_run():`` in a notebook) that a run
    recorded in the store ``uri`` will nest under, as MLflow nests runs; None when there is none. A run active
    in another store cannot be a parent there: refused, before any training, with the tracking URI left as
    the caller had it so its own run can still end."""
    import mlflow

    active = mlflow.active_run()
    if active is None:
        return None
    before, env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    client = mlflow_client(uri)
    try:
        client.get_run(active.info.run_id)
    except Exception:
        mlflow.set_tracking_uri(before)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env
        raise ConfigError(f"An MLflow run ({active.info.run_id}) is active, in another tracking store than "
                          f"{shown_uri(uri)!r} where this run would be recorded, so it cannot be nested under it: "
                          "pass tracking_uri=mlflow.get_tracking_uri(), end that run first (mlflow.end_run()), "
                          "or pass track=False.") from None
    return str(active.info.run_id)


@contextmanager
def recording_run(mlflow: Any, *, experiment_id: str, run_name: str, tags: dict[str, str]) -> Iterator[Any]:
    """``mlflow.start_run`` for a run of mlengineer's own (a training, a registration), which ends FINISHED,
    FAILED on an error, or KILLED on Ctrl-C (as a run of a killed process is marked). Nested under the run
    active in this thread, if any (``check_outer_run`` says whether it may be).

    ``MLFLOW_RUN_ID`` in the environment is ignored (and left there): launchers set it (MLflow Projects, CI
    runners) for the run of their own step, and MLflow would resume that run, of another experiment, and log
    a training's params, leaderboard and bundle into it, where ``mlengineer runs`` and the registry never
    find it and where a second training's params clash with the first's. A run of its own, which names the
    launcher's run in the tag ``mlengineer.launcher_run``, keeps both readable.
    """
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)  # out of MLflow's sight until the run ends (end_run unsets it)
    try:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=mlflow.active_run() is not None,
                               tags={**tags, **({"mlengineer.launcher_run": launcher} if launcher else {})})
        status = "FINISHED"
        try:
            yield run
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            try:
                mlflow.end_run(status=status)
            except Exception:
                if status == "FINISHED":
                    raise
    finally:
        if launcher is not None:
            os.environ["MLFLOW_RUN_ID"] = launcher


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


def _open(mlflow: Any, uri: str, given: str) -> None:
    db = _sqlite_path(uri)
    if db is not None and db.exists() and not db.is_file():
        raise ConfigError(f"The tracking store {uri!r} names a folder, not a SQLite file: pass --tracking-uri "
                          "sqlite:///PATH/mlruns.db.")
    try:
        _reach(uri, given)
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
        raise store_error(e, given) from None


def _reach(uri: str, given: str) -> None:
    """Connect once to a database server with a short timeout, so that one that is down or refuses the
    password is one line within seconds, not MLflow's 100 s of retries."""
    backend = _backend(uri)
    if backend in ("http", "https"):
        _reach_server(uri, given)
        return
    if backend not in _SERVERS:
        return
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    timeout = {"connect_timeout": 5} if backend in ("postgresql", "mysql") else {}
    engine = sa.create_engine(uri, poolclass=NullPool, connect_args=timeout)  # a missing driver raises here
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as e:
        why = str(getattr(e, "orig", None) or e).strip().splitlines()
        text = masked(why[0][:200].rstrip(". ") if why else type(e).__name__, given)
        raise ConfigError(f"The tracking store {shown_uri(given)!r} cannot be reached: {text}. Check the user, "
                          "password, host, port and database in --tracking-uri (MLFLOW_TRACKING_URI).") from None
    finally:
        engine.dispose()


def _reach_server(uri: str, given: str) -> None:
    """Open one connection to an MLflow tracking server, within 5 s: one that is down or not there is one line
    now, not MLflow's four minutes of retries. A server that answers is left to MLflow's own requests."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=5).close()
    except OSError as e:
        why = "nothing listens there" if isinstance(e, ConnectionRefusedError) else \
            masked(str(e).strip() or type(e).__name__, given)
        raise ConfigError(f"The tracking server {shown_uri(given)!r} cannot be reached ({why}): start it, or check "
                          "the host and port in --tracking-uri (MLFLOW_TRACKING_URI).") from None


def _mark_killed_runs(client: Any) -> None:
    """Runs left RUNNING by a process of this machine that is gone (killed mid-way) end as KILLED, and with
    them their nested runs still RUNNING (a candidate the search was recording), tagged or not."""
    host = socket.gethostname()
    ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not ids:
        return
    running = client.search_runs(ids, filter_string="attributes.status = 'RUNNING'", max_results=1000)
    killed: set[str] = set()
    for run in running:
        tags = run.data.tags
        owner = tags.get(OWNER_TAG)
        if owner and tags.get(HOST_TAG) == host and not owner_alive(owner):
            killed.add(run.info.run_id)
    grew = True
    while grew:  # children of killed runs, then their children
        more = {r.info.run_id for r in running if r.data.tags.get("mlflow.parentRunId") in killed} - killed
        killed |= more
        grew = bool(more)
    for run_id in sorted(killed):
        client.set_terminated(run_id, status="KILLED")


def store_error(e: BaseException, uri: str | None) -> ConfigError:
    """One line for a store that cannot be used: what is wrong with it and what to do."""
    given = uri or default_tracking_uri()
    text = masked(str(e).splitlines()[0][:200] if str(e) else type(e).__name__, given)
    low = text.lower()
    db = _sqlite_path(given)
    uri = shown_uri(given)
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
                           f"{_driver_hint(given)}.")
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


def _driver_hint(uri: str) -> str:
    """What to do for a missing driver: use one that is installed, or install one (never one that is)."""
    backend = _backend(uri)
    drivers = DRIVERS.get(backend, ())
    named = uri.partition("://")[0].partition("+")[2].lower()
    there = [(driver, module) for driver, module, _ in installed_drivers(backend) if driver != named]
    if there:
        return f"write {backend}+{there[0][0]}:// to use {there[0][1]}, which is installed"
    if backend == "postgresql":
        return "pip install 'mlengineer[sql]' (psycopg2), or psycopg[binary]"
    if drivers:
        return f"pip install {drivers[-1][2]}"
    return "install the driver the URI names, or pass --tracking-uri sqlite:///PATH/mlruns.db"


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
