"""The ui command: MLflow's own web UI on the store mlengineer records to (the ``ui`` extra)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import typer

from ._common import handle_errors, say

INSTALL_HINT = "pip install 'mlengineer[ui]'"


def ui_available() -> bool:
    """Whether the full MLflow is installed: its server (Flask) and the built web app. mlflow-skinny, which
    mlengineer needs anyway, has neither."""
    try:
        if importlib.util.find_spec("flask") is None or importlib.util.find_spec("mlflow.server") is None:
            return False
        spec = importlib.util.find_spec("mlflow")
    except (ImportError, ValueError):
        return False
    roots = spec.submodule_search_locations if spec is not None else None
    return bool(roots) and any((Path(r) / "server" / "js" / "build" / "index.html").exists() for r in roots or [])


def ui_cmd(
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default ./mlruns.db, "
                                     "where 'train' records)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every one)."),
    port: int = typer.Option(5000, "--port", help="Port to listen on."),
) -> None:
    """Open MLflow's web UI on the tracked runs: metrics, leaderboards, reports and registered models."""
    from ..errors import ConfigError, ServingError
    from ..tracking.store import default_tracking_uri, engine_uri, mlflow_module, shown_uri

    if not ui_available():
        raise ConfigError(f"The MLflow UI needs the full mlflow package (mlflow-skinny has no UI): {INSTALL_HINT}.")
    uri = tracking_uri or default_tracking_uri()
    db = Path(uri.removeprefix("sqlite:///").split("?")[0]) if uri.startswith("sqlite:///") else None
    if db is not None and not db.is_file():
        raise ConfigError(f"No tracking store at {db}: train a model first ('mlengineer train DATA --target COL' "
                          "records its run there), or pass --tracking-uri.")
    _mark_model_training(mlflow_module(uri))  # migrated under mlengineer's lock, not raced by the server
    _check_port(host, port)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", engine_uri(uri), "--host", host,
               "--port", str(port), "--workers", "1"]
    if db is not None:  # runs keep their own artifact folder; new experiments get the one 'train' uses
        command += ["--default-artifact-root", (db.parent / "mlartifacts").resolve().as_uri()]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    say("MLflow UI on ", (shown_uri(uri), "bold"), " at ", (f"http://{shown}:{port}", "bold cyan"), " (Ctrl+C to stop).")
    # its own process group, stopped whole (the server runs uvicorn as a child) on Ctrl+C or SIGTERM
    proc = subprocess.Popen(command, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code != 0:
        raise ServingError(f"The MLflow server stopped with status {code}; its messages are above.")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask the server to stop (it stops its uvicorn child); then its whole group, firmly if need be."""
    for how, wait in ((proc.terminate, 5.0), (lambda: os.killpg(proc.pid, signal.SIGTERM), 5.0),
                      (lambda: os.killpg(proc.pid, signal.SIGKILL), None)):
        try:
            how()
            proc.wait(timeout=wait)
            break
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # the job runner it starts may outlive it
        os.killpg(proc.pid, signal.SIGKILL)


def _mark_model_training(mlflow: object) -> None:
    """Tag mlengineer's experiments as model training, so the UI opens on runs, metrics and models rather
    than on its generative-AI pages (MLflow 3 asks each experiment which kind it is)."""
    try:
        client = mlflow.MlflowClient()  # type: ignore[attr-defined]
        for exp in client.search_experiments(max_results=1000):
            if "mlflow.experimentKind" in exp.tags:
                continue
            ours = client.search_runs([exp.experiment_id], "tags.`mlengineer.task` LIKE '%'", max_results=1)
            if ours:
                client.set_experiment_tag(exp.experiment_id, "mlflow.experimentKind", "custom_model_development")
    except Exception:  # only a nicer first page is at stake
        return


def _check_port(host: str, port: int) -> None:
    from ..errors import ServingError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: closed connections do not count
        try:
            s.bind((host, port))
        except OSError as e:
            raise ServingError(f"Cannot listen on {host}:{port} ({e.strerror}): pass --port with a free port.") from None


def register(app: typer.Typer) -> None:
    app.command("ui")(handle_errors(ui_cmd))
