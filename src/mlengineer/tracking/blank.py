"""A new SQLite tracking store from a blank copy instead of MLflow's migrations.

MLflow builds a new SQLite store by running every schema migration since its first release, which takes
2-4 s of CPU; each new project folder (and each test's) pays it once. The first store this machine creates
with a given MLflow version is copied, right after its migrations, into the user's cache folder with
MLflow's default experiment removed; later new stores start as a copy of it, and MLflow adds the default
experiment itself on open (with this store's own artifact location). A copy that MLflow does not accept
is removed and the store migrated as before.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from ..data.files import cache_dir

__all__ = ["blank_path", "discard", "keep_blank", "start_from_blank"]

log = logging.getLogger(__name__)


def blank_path() -> Path | None:
    """Where the blank store for this MLflow version lives (None: set MLENGINEER_BLANK_STORE=0 to turn off)."""
    if os.environ.get("MLENGINEER_BLANK_STORE", "1") == "0":
        return None
    import mlflow

    return cache_dir() / f"mlflow-{mlflow.__version__}-blank.db"


def start_from_blank(db: Path) -> bool:
    """Copy the blank store to ``db`` (which does not exist yet); False when there is none to copy."""
    blank = blank_path()
    if blank is None or not blank.is_file():
        return False
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        _copy(blank, tmp)
        os.replace(tmp, db)
        return True
    except (OSError, sqlite3.Error) as e:
        log.debug("blank store not used: %s", e)
        tmp.unlink(missing_ok=True)
        if isinstance(e, sqlite3.Error):  # not a database: made again from the next migrated store
            blank.unlink(missing_ok=True)
        return False


def keep_blank(db: Path) -> None:
    """Keep a copy of a store MLflow has just created and migrated, its default experiment removed, as the
    blank store for the next new one. Best effort: a cache that cannot be written only means no copy."""
    blank = blank_path()
    if blank is None or blank.is_file():
        return
    tmp = blank.with_name(f".{blank.name}.{os.getpid()}.tmp")
    try:
        blank.parent.mkdir(parents=True, exist_ok=True)
        _copy(db, tmp)
        with sqlite3.connect(tmp) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "experiments" not in tables or con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                raise sqlite3.Error("not a fresh store")
            for table in ("experiment_tags", "experiments"):
                con.execute(f"DELETE FROM {table} WHERE experiment_id = 0")  # noqa: S608 (fixed names)
        con.close()
        os.replace(tmp, blank)
    except (OSError, sqlite3.Error) as e:
        log.debug("blank store not kept: %s", e)
        tmp.unlink(missing_ok=True)


def discard(db: Path) -> None:
    """A copied store MLflow refused: remove it and the blank it came from."""
    db.unlink(missing_ok=True)
    blank = blank_path()
    if blank is not None:
        blank.unlink(missing_ok=True)


def _copy(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file (its backup API, so a copy taken mid-write is still whole)."""
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
