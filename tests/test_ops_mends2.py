"""The registry and the server as an operator meets them (the ops exploration's findings 1-3, 5, 9-12): a server
on an alias tries again a version it refused, by itself when its files could not be read, and when an operator
promotes it again; a version whose files cannot be read is said to be unreadable, not replaced; ``register``
and ``promote --force`` say their problems in one line, and ``--force`` says that servers follow; /explain's
access lines carry rows and version; binary tensors are told NaN is their missing value and that bytes are not
UTF-8; a far value is quoted short; the server and ``predict`` name the same years for dates."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pandas as pd
import pytest

import mlengineer
from mlengineer.bundle.manifest import UnreadableBundle, folder_stamp
from mlengineer.bundle.notes import number_text, shown, some_of
from mlengineer.data.values import DATETIME_MAX, DATETIME_MIN
from mlengineer.errors import ModelError
from mlengineer.serving.watcher import Refusal

from .conftest import FIXTURES, run_cli
from .test_serve_basic import ServerProcess, running_server

CHURN = FIXTURES / "churn_800.csv"


def _stored(source: str) -> Path:
    return Path(unquote(urlparse(source).path))


def _records(n: int = 2, start: int = 20) -> list[dict[str, Any]]:
    df = pd.read_csv(CHURN).drop(columns=["churn"]).iloc[start:start + n]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


# -- 1. a refused version is tried again -------------------------------------------------------------------------

def test_a_refusal_is_due_again_after_its_wait_when_promoted_again_or_when_its_files_change(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("a")
    marks = (False, "2026-01-01 00:00:00+00:00")
    kept = Refusal("3", marks, "clients would fail", passing=False, path=folder, stamp=folder_stamp(folder))
    assert not kept.due(marks, now=time.monotonic() + 3600)  # not at every look, however long it waits
    assert kept.due((False, "2026-01-02 00:00:00+00:00"), now=0.0)  # promoted again
    assert kept.due((True, marks[1]), now=0.0)  # forced
    (folder / "MLmodel").write_text("b")
    assert kept.due(marks, now=0.0)  # its files changed
    unreadable = Refusal("3", marks, "cannot read", passing=True, next_try=100.0)
    assert not unreadable.due(marks, now=99.0) and unreadable.due(marks, now=100.0)


def _log_events(text: str, event: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and str(item.get("event", "")).startswith(event):
            out.append(item)
    return out


@pytest.mark.slow
def test_a_server_tries_again_a_version_it_refused(churn_model_dir: Path, tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, register
    from mlengineer.tracking.store import mlflow_client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    second = _stored(register(churn_model_dir, "churn", tracking_uri=uri).source)
    third = _stored(register(churn_model_dir, "churn", tracking_uri=uri).source)
    rows = _records()

    def served(srv: ServerProcess) -> str | None:
        return httpx.post(f"{srv.url}/predict", json={"records": rows}, timeout=30).headers.get("x-model-version")

    def wait_for(srv: ServerProcess, what: Any, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not what():
            time.sleep(0.2)
        assert what(), srv.output()[-3000:]

    def refused(srv: ServerProcess, version: str) -> bool:
        return f'mlengineer_model_refused{{model="churn",version="{version}"}} 1.0' in \
            httpx.get(f"{srv.url}/metrics").text

    with running_server("models:/churn@champion", "--tracking-uri", uri, "--poll-interval", "0.3",
                        cwd=tmp_path) as srv:
        # the store's copy of version 2 is away (a copy or sync in progress) when the alias moves to it
        away = second.with_name("model.moving")
        second.rename(away)
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "2")
        wait_for(srv, lambda: refused(srv, "2"))
        time.sleep(2)  # several looks while the files are away
        assert served(srv) == "1"
        away.rename(second)  # the files are back, unchanged: the server follows by itself
        wait_for(srv, lambda: served(srv) == "2")

        # version 3 tampered with (one byte), refused; the byte put back with the file's size and time kept
        # as the server saw them: only promoting it again makes the server look at it again
        target = third / "MLmodel"
        original = target.read_bytes()
        target.write_bytes(original[:-1] + (b"#" if original[-1:] != b"#" else b"!"))
        seen = target.stat()
        mlflow_client(uri).set_registered_model_alias("churn", "champion", "3")
        wait_for(srv, lambda: refused(srv, "3"))
        target.write_bytes(original)
        os.utime(target, ns=(seen.st_atime_ns, seen.st_mtime_ns))
        time.sleep(2)
        assert served(srv) == "2"  # not tried at every look
        r = run_cli("promote", "churn", "3", "--tracking-uri", uri, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        wait_for(srv, lambda: served(srv) == "3")
        assert not refused(srv, "3")
    log = srv.output()
    refusals = _log_events(log, "new model version refused")
    by_version = {v: [e for e in refusals if e.get("version") == v] for v in ("2", "3")}
    # once while the files were away, however many looks failed; version 3 once before it was promoted again
    assert len(by_version["2"]) == 1, by_version["2"]
    assert "cannot read" in by_version["2"][0]["reason"] and "does not exist" in by_version["2"][0]["reason"]
    assert "replaced" not in by_version["2"][0]["reason"] and "by itself" in by_version["2"][0]["tries_again"]
    assert len(by_version["3"]) == 1 and "MLmodel does not match its manifest" in by_version["3"][0]["reason"]
    assert "promote" in by_version["3"][0]["tries_again"]
    swaps = [(e.get("previous_version"), e.get("version")) for e in _log_events(log, "model swapped")]
    assert swaps == [("1", "2"), ("2", "3")], swaps


# -- 3. files that cannot be read are said so -------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    from mlengineer.tracking.registry import register

    folder = tmp_path_factory.mktemp("ops2-registry")
    uri = f"sqlite:///{folder / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    return uri, folder


def test_a_version_whose_files_cannot_be_read_is_said_so_not_replaced(registry: tuple[str, Path]) -> None:
    from mlengineer.tracking.registry import ModelRef, load_version, lookup
    from mlengineer.tracking.store import mlflow_client

    uri, _ = registry
    info = lookup(ModelRef("churn", version="1"), client=mlflow_client(uri))
    stored = _stored(info.source)
    away = stored.with_name("model.away")
    stored.rename(away)
    try:
        with pytest.raises(UnreadableBundle) as err:
            load_version(info, tracking_uri=uri)
    finally:
        away.rename(stored)
    text = str(err.value)
    assert f"cannot read {stored}: the folder does not exist" in text and "replaced" not in text, text
    assert "Restore the files there" in text
    manifest = stored / "manifest.json"
    saved = manifest.read_bytes()
    manifest.write_bytes(saved[: len(saved) // 2])  # cut short, as by a copy in progress
    try:
        with pytest.raises(UnreadableBundle, match="it is not the manifest mlengineer writes"):
            load_version(info, tracking_uri=uri)
    finally:
        manifest.write_bytes(saved)
    assert load_version(info, tracking_uri=uri).task.kind == "binary"


def test_promote_marks_the_version_each_time_it_points_the_alias_at_it(registry: tuple[str, Path]) -> None:
    from mlengineer.tracking.registry import ModelRef, lookup, promote
    from mlengineer.tracking.store import mlflow_client

    uri, _ = registry
    client = mlflow_client(uri)
    promote("churn", "1", alias="staging", tracking_uri=uri)
    first = lookup(ModelRef("churn", alias="staging"), client=client).promoted["staging"]
    time.sleep(0.01)
    promote("churn", "1", alias="staging", tracking_uri=uri)  # the same version again: servers look again
    assert lookup(ModelRef("churn", alias="staging"), client=client).promoted["staging"] > first


# -- 2, 5. register and promote --force: one line each, and the truth about servers -----------------------------

@pytest.fixture(scope="module")
def salary_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small regression model of other columns, to register under the churn classifier's name."""
    df = pd.read_csv(FIXTURES / "salaries_1500.csv").head(300).drop(columns=["salary", "salary_currency"])
    out = tmp_path_factory.mktemp("ops2-salary") / "salary"
    mlengineer.train(df, "salary_in_usd", time_budget=2, families=["linear"], out=out, track=False)
    return out


@pytest.mark.slow
def test_register_and_forced_promote_say_their_problems_in_one_line(registry: tuple[str, Path], salary_like: Path,
                                                                     churn_model_dir: Path) -> None:
    from mlengineer.tracking.registry import promote

    uri, folder = registry
    promote("churn", "1", tracking_uri=uri)
    r = run_cli("register", str(salary_like), "--name", "churn", "--tracking-uri", uri, cwd=folder)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stdout.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "more)" in warnings[0] and "it is a regression model" in warnings[0], r.stdout
    version = r.stdout.split("version ", 1)[1].split(".", 1)[0].strip()
    r = run_cli("promote", "churn", version, "--force", "--tracking-uri", uri, cwd=folder)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and "warning (--force)" in lines[1], r.stdout
    assert f"switch to version {version}" in lines[1] and "422" in lines[1] and "more)" in lines[1]
    assert "keep" not in r.stdout
    r = run_cli("promote", "--help", cwd=folder)
    assert "switch" in r.stdout and "keep their version" not in r.stdout
    promote("churn", "1", tracking_uri=uri, force=True)  # back, for the other tests of this module


def test_some_of_says_how_many_more() -> None:
    assert some_of(["a", "b", "c", "d"], 2) == "a; b (and 2 more)"
    assert some_of(["a"], 3) == "a"
    assert some_of([f"c{i}" for i in range(85)]) == "c0 (and 84 more)"


# -- 9-12. the server's words -------------------------------------------------------------------------------------

def test_a_huge_number_is_quoted_short() -> None:
    assert number_text(1e308) == "1e+308" and number_text(-1.5e300) == "-1.5e+300"
    assert number_text(123_456.0) == "123,456" and number_text(0.1812) == "0.1812"
    assert len(shown("x" * 5000)) < 90


@pytest.fixture(scope="module")
def words(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real server's answers to /explain, binary OIP tensors holding infinity or latin-1 bytes, a far value
    and a date beyond pandas' years; and its access log."""
    folder = tmp_path_factory.mktemp("ops2-words")
    name = mlengineer.load(churn_model_dir).name
    row = _records(1)[0]
    out: dict[str, Any] = {}
    with running_server(churn_model_dir, cwd=folder) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        out["explain"] = c.post("/explain", json={"records": _records(3)})
        out["far"] = c.post("/predict", json={"records": [{**row, "age": 1e308}]})
        out["date"] = c.post("/predict", json={"records": [{**row, "signup_date": "1677-09-21"}]})
        out["date_in"] = c.post("/predict", json={"records": [{**row, "signup_date": "1677-09-22"}]})
        meta = c.get(f"/v2/models/{name}").json()

        def binary(column: str, datatype: str, data: bytes) -> httpx.Response:
            inputs = [{"name": i["name"], "shape": [1], "datatype": i["datatype"], "data": [row[i["name"]]]}
                      for i in meta["inputs"] if i["name"] != column]
            inputs.append({"name": column, "shape": [1], "datatype": datatype,
                           "parameters": {"binary_data_size": len(data)}})
            head = json.dumps({"inputs": inputs}).encode()
            return c.post(f"/v2/models/{name}/infer", content=head + data, headers={
                "Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"})

        out["inf"] = binary("age", "FP64", struct.pack("<d", float("inf")))
        out["nan"] = binary("age", "FP64", struct.pack("<d", float("nan")))
        latin = "prémium".encode("latin-1")
        out["latin"] = binary("plan", "BYTES", struct.pack("<I", len(latin)) + latin)
    out["log"] = srv.output()
    return out


@pytest.mark.slow
def test_explain_access_lines_carry_rows_and_version(words: dict[str, Any]) -> None:
    assert words["explain"].status_code == 200, words["explain"].text
    lines = [json.loads(line) for line in words["log"].splitlines() if line.startswith("{") and '"/explain"' in line]
    access = [e for e in lines if e.get("path") == "/explain" and e.get("status") == 200]
    assert access and access[0]["rows"] == 3 and access[0]["model_version"] == "1", lines


@pytest.mark.slow
def test_binary_tensors_are_told_nan_and_utf8(words: dict[str, Any]) -> None:
    inf = words["inf"]
    assert inf.status_code == 422 and "Input 'age', element 0: the value is infinite" in inf.json()["error"]
    assert "NaN for a missing value" in inf.json()["error"] and "send null" not in inf.json()["error"], inf.text
    assert words["nan"].status_code == 200, words["nan"].text  # NaN: the tensor's missing value
    latin = words["latin"]
    assert latin.status_code == 422 and "not UTF-8 text" in latin.json()["error"], latin.text
    assert "'plan', row 0" in latin.json()["error"] and "must be a category" in latin.json()["error"]


@pytest.mark.slow
def test_a_far_value_is_quoted_in_a_few_characters(words: dict[str, Any]) -> None:
    far = words["far"]
    assert far.status_code == 200, far.text
    warning = next(w for w in far.json()["warnings"] if "'age'" in w)
    assert "1e+308" in warning and len(warning) < 200, warning


@pytest.mark.slow
def test_dates_are_bounded_by_the_same_days_and_words_as_predict(words: dict[str, Any], churn_model_dir: Path,
                                                                  tmp_path: Path) -> None:
    years = f"between {DATETIME_MIN.year} and {DATETIME_MAX.year}"
    assert words["date"].status_code == 422 and years in words["date"].json()["error"], words["date"].text
    assert words["date_in"].status_code == 200, words["date_in"].text  # pandas' first whole day
    rows = pd.DataFrame(_records(2))
    rows.loc[0, "signup_date"] = "1677-09-21"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    r = run_cli("predict", str(churn_model_dir), str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv"),
                cwd=tmp_path)
    assert r.returncode == 2 and years in r.stderr, r.stderr


def test_a_bundle_a_worker_cannot_read_is_said_so(tmp_path: Path) -> None:
    from mlengineer.serving.runtime import load_served
    from mlengineer.serving.settings import ServeSettings

    gone = tmp_path / "gone"
    settings = ServeSettings(model=str(gone), pinned=str(gone), pinned_digest="0" * 64, prediction_log=None)
    with pytest.raises(ModelError, match="cannot read .*gone: the folder does not exist"):
        load_served(settings)
