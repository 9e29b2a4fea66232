"""How the learners' OpenMP threads wait (issue 16): OpenMP's own spinning on idle cores, passive waiting on
busy ones and always in the server's and Spark's processes, a policy the user set kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mlengineer.training.models.threads import choose_wait_policy, cores_idle, wait_policy


def _policy_after(code: str, env: dict[str, str] | None = None) -> str:
    """OMP_WAIT_POLICY in a fresh interpreter after ``code`` ran ("unset" when it is not set)."""
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code + "\nimport os; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"],
                         env={**base, **(env or {})}, capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


def test_the_server_and_spark_wait_passively_whatever_the_load() -> None:
    assert _policy_after("import mlengineer.serving, mlengineer.training.models") == "PASSIVE"
    assert _policy_after("import mlengineer.spark, mlengineer.training.models") == "PASSIVE"


def test_a_policy_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _policy_after("import mlengineer.training.models", {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert choose_wait_policy() == "PASSIVE" == wait_policy()


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the load is read from Linux's /proc/stat")
def test_busy_cores_make_training_wait_passively(monkeypatch: pytest.MonkeyPatch) -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 60\nwhile time.time() < end: pass"])
                for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)  # the spinners are running
        assert not cores_idle()
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        assert choose_wait_policy() == "PASSIVE" == os.environ["OMP_WAIT_POLICY"]
    finally:
        for p in spinners:
            p.kill()
            p.wait()
