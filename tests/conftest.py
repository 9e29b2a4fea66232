"""Shared fixtures: small real and synthetic tables, models trained once per test run, and helpers that
drive the real CLI as a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# one cache for the whole run (measured costs, the blank tracking store), not the user's: every run of the
# suite starts from what a new machine has, and the CLI commands it starts share it
os.environ.setdefault("MLENGINEER_CACHE_DIR", tempfile.mkdtemp(prefix="mlengineer-test-cache-"))


@pytest.fixture(scope="session")
def salaries_csv() -> Path:
    """1,500 rows of the bundled AI/ML salary survey (CC0): a regression on salary_in_usd."""
    return FIXTURES / "salaries_1500.csv"


@pytest.fixture(scope="session")
def churn_csv() -> Path:
    """800 synthetic customers: a binary task (churn yes/no) with an id, a date and missing values."""
    return FIXTURES / "churn_800.csv"


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlruns.db'}"


@pytest.fixture(scope="session")
def churn_model_dir(tmp_path_factory: pytest.TempPathFactory, churn_csv: Path, tracking_uri: str) -> Path:
    """A churn model trained once for the whole run (small budget), saved as a bundle."""
    import mlengineer

    out = tmp_path_factory.mktemp("models") / "churn-model"
    mlengineer.train(churn_csv, "churn", time_budget=8, out=out, tracking_uri=tracking_uri)
    return out


@pytest.fixture(scope="session")
def salary_model_dir(tmp_path_factory: pytest.TempPathFactory, salaries_csv: Path, tracking_uri: str) -> Path:
    """A salary regression model trained once for the whole run, with the leaky columns dropped."""
    import mlengineer

    out = tmp_path_factory.mktemp("models") / "salary-model"
    mlengineer.train(salaries_csv, "salary_in_usd", time_budget=8, out=out, tracking_uri=tracking_uri,
                     drop=["salary", "salary_currency"])
    return out


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mlengineer`` command as a user would, capturing its output."""
    exe = Path(sys.executable).parent / "mlengineer"
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    if "MLFLOW_TRACKING_URI" not in (env or {}):
        # MLflow puts the last store used in this process into the environment: a command run here should
        # find the store a user's would (./mlruns.db in its folder, or --tracking-uri)
        full_env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def run_clis(*commands: list[str] | tuple[str, ...], cwd: Path | None = None, timeout: float = 300,
             env: dict[str, str] | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Run several independent ``mlengineer`` commands side by side (each its own process, as ``run_cli``
    runs it), their results in the order given: most of a short command's seconds are its start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, len(commands) or 1)) as pool:
        return list(pool.map(lambda args: run_cli(*args, cwd=cwd, timeout=timeout, env=env), commands))


def pin_lightgbm_costs(stored: Path, fallback: dict[str, Any] | None = None) -> None:
    """Pin the LightGBM costs in a cost-cache file (``fallback``: its content, where a run forgot it as stale)
    to values that leave a 10 s plan room for tuning on any machine, unchecked by the first candidate: the
    plan follows measured costs, and a slow machine measures dearer rounds."""
    cache = json.loads(stored.read_text()) if stored.exists() else fallback
    assert cache is not None, stored
    cache["values"]["probe:lightgbm"].update(fixed=0.005, unit=0.0004, exponent=1.0, late=1.0)
    cache["values"]["calibration:lightgbm"] = 1.0  # the first candidate's check keeps the pinned costs
    stored.write_text(json.dumps(cache))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_any(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
