"""The registry end to end: register and promote with the real CLI, serve models:/NAME@champion, and promote a
new version while clients keep sending requests: no request fails and the answers switch to the new model."""

from __future__ import annotations

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
def flipped_model_dir(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second churn model that learnt the opposite labels, so its answers cannot be mistaken for the first's."""
    import mlengineer

    df = pd.read_csv(churn_csv)
    df["churn"] = df["churn"].map({"yes": "no", "no": "yes"})
    out = tmp_path_factory.mktemp("models") / "churn-flipped"
    mlengineer.train(df, "churn", time_budget=3, out=out, track=False)
    return out


@pytest.fixture(scope="module")
def rows(churn_csv: Path) -> list[dict[str, Any]]:
    df = pd.read_csv(churn_csv).drop(columns=["churn"]).iloc[20:24]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def _cli_ok(*args: str, cwd: Path) -> str:
    r = run_cli(*args, cwd=cwd)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def test_register_and_promote_commands(churn_model_dir: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    out = _cli_ok("register", str(churn_model_dir), "--name", "churn", "--tracking-uri", uri, cwd=tmp_path)
    assert "Registered churn version 1" in out
    from mlengineer.tracking.registry import register

    assert register(churn_model_dir, "churn", tracking_uri=uri).version == "2"
    assert "models:/churn@champion is now version 2" in _cli_ok("promote", "churn", "2", "--tracking-uri", uri,
                                                                 cwd=tmp_path)
    from mlengineer.tracking.registry import resolve

    info, path = resolve("models:/churn@champion", tracking_uri=uri)
    assert info.version == "2" and (path / "MLmodel").is_file()
    # a version is a copy: it does not change when the folder it came from does
    assert path.resolve() != churn_model_dir.resolve()


@pytest.fixture(scope="module")
def registry(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registry holding churn version 1."""
    from mlengineer.tracking.registry import register

    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    return uri


@pytest.mark.parametrize(("call", "words"), [
    (lambda r, uri: r.promote("churn", "9", tracking_uri=uri), "has no version 9; its versions are 1"),
    (lambda r, uri: r.promote("nobody", "1", tracking_uri=uri), "No registered model named 'nobody'"),
    (lambda r, uri: r.promote("churn", "1", alias="v1", tracking_uri=uri), "--alias"),
    (lambda r, uri: r.register("NOT_A_BUNDLE", "churn", tracking_uri=uri), "does not exist"),
    (lambda r, uri: r.resolve("models:/churn@gold", tracking_uri=uri), "has no alias 'gold'"),
    (lambda r, uri: r.resolve("models:/churn/7", tracking_uri=uri), "has no version 7"),
    (lambda r, uri: r.resolve("models:/churn@@x", tracking_uri=uri), "not a registry reference"),
])
def test_registry_mistakes_name_what_to_do(registry: str, call: Any, words: str) -> None:
    from mlengineer.errors import MLEngineerError
    from mlengineer.tracking import registry as r

    with pytest.raises(MLEngineerError) as err:
        call(r, registry)
    assert words in str(err.value)


@pytest.mark.parametrize("args", [["promote", "churn", "9"], ["serve", "models:/churn@gold"],
                                  ["register", "BUNDLE", "--name", "a/b"]])
def test_registry_mistakes_on_the_command_line_are_one_line_and_exit_2(
        registry: str, churn_model_dir: Path, tmp_path: Path, args: list[str]) -> None:
    args = [str(churn_model_dir) if a == "BUNDLE" else a for a in args]
    r = run_cli(*args, "--tracking-uri", registry, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_promoted_version_is_served_without_a_restart_or_a_failed_request(
        churn_model_dir: Path, flipped_model_dir: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", alias="champion", tracking_uri=uri)
    expected = {v: mlengineer.load(p).predict_proba(pd.DataFrame(rows))["yes"].to_numpy()
                for v, p in (("1", churn_model_dir), ("2", flipped_model_dir))}
    assert not np.allclose(expected["1"], expected["2"])

    with running_server("models:/churn@champion", "--tracking-uri", uri, "--poll-interval", "0.3",
                        cwd=tmp_path) as srv:
        answers: list[tuple[int, str | None, list[float] | str]] = []
        stop = threading.Event()
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                while not stop.is_set():
                    try:
                        r = c.post("/predict", json={"records": rows})
                        got: list[float] | str = ([p["probabilities"]["yes"] for p in r.json()["predictions"]]
                                                  if r.status_code == 200 else r.text)
                        item = (r.status_code, r.headers.get("x-model-version"), got)
                    except httpx.HTTPError as e:  # a refused or dropped connection is a failed request too
                        item = (0, None, repr(e))
                    with lock:
                        answers.append(item)

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            while len(answers) < 30:
                time.sleep(0.05)
            register(flipped_model_dir, "churn", tracking_uri=uri)
            _cli_ok("promote", "churn", "2", "--alias", "champion", "--tracking-uri", uri, cwd=tmp_path)
            deadline = time.time() + 90
            while time.time() < deadline and not any(v == "2" for _, v, _ in answers[-5:]):
                time.sleep(0.1)
            n = len(answers)
            while len(answers) < n + 30 and time.time() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        metrics = httpx.get(f"{srv.url}/metrics").text
        log = srv.output()

    failed = [a for a in answers if a[0] != 200]
    assert not failed, failed[:3]
    versions = [v for _, v, _ in answers]
    assert versions[0] == "1" and versions[-1] == "2", versions[-5:]
    switched = versions.index("2")
    assert versions.count("1") >= 30 and versions[switched:].count("1") <= len(threads)  # only requests in flight
    for _, v, probs in answers:
        np.testing.assert_allclose(probs, expected[str(v)], atol=1e-6)
    assert 'mlengineer_model_reloads_total{outcome="loaded"} 1.0' in metrics
    assert 'mlengineer_model_info{model="churn",version="2"} 1.0' in metrics
    assert '"event":"model swapped"' in log and '"previous_version":"1"' in log
