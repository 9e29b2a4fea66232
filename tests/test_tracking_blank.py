"""A new SQLite tracking store starts as a copy of a blank one instead of running MLflow's migrations."""

from __future__ import annotations

from pathlib import Path

import mlflow.store.db.utils as db_utils
import pytest

from mlengineer.tracking.blank import blank_path, start_from_blank
from mlengineer.tracking.store import mlflow_client


@pytest.fixture()
def migrations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Counts MLflow's real migrations (the function still runs) with the cache in a folder of the test's."""
    monkeypatch.setenv("MLENGINEER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLENGINEER_BLANK_STORE", raising=False)
    calls: list[str] = []
    real = db_utils._initialize_tables

    def counted(engine):  # type: ignore[no-untyped-def]
        calls.append(str(engine.url))
        return real(engine)

    monkeypatch.setattr(db_utils, "_initialize_tables", counted)
    return calls


def _open_in(folder: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    return mlflow_client(f"sqlite:///{folder / 'mlruns.db'}")


def test_second_store_is_copied_and_has_its_own_default_experiment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrations: list[str]) -> None:
    a = _open_in(tmp_path / "a", monkeypatch)
    blank = blank_path()
    assert blank is not None and blank.is_file() and len(migrations) == 1
    b = _open_in(tmp_path / "b", monkeypatch)
    assert len(migrations) == 1  # the second store was not migrated
    assert b.get_experiment("0").artifact_location == str(tmp_path / "b" / "mlruns" / "0")
    assert a.get_experiment("0").artifact_location == str(tmp_path / "a" / "mlruns" / "0")
    exp = b.create_experiment("mine")
    run = b.create_run(exp)
    b.log_metric(run.info.run_id, "m", 1.0)
    assert b.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert [e.name for e in a.search_experiments()] == ["Default"]  # the stores share nothing


def test_a_broken_blank_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      migrations: list[str]) -> None:
    blank = blank_path()
    assert blank is not None
    blank.parent.mkdir(parents=True)
    blank.write_bytes(b"not a database at all" * 100)
    c = _open_in(tmp_path / "c", monkeypatch)
    assert [e.name for e in c.search_experiments()] == ["Default"]
    assert len(migrations) == 1  # migrated as before
    assert blank.read_bytes()[:15] == b"SQLite format 3"  # and the blank made again from it


def test_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLENGINEER_BLANK_STORE", "0")
    assert blank_path() is None
    assert not start_from_blank(tmp_path / "mlruns.db") and not (tmp_path / "mlruns.db").exists()
