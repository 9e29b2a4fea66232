"""How the learners' OpenMP threads wait between parallel stretches, chosen before the learners load.

Waiting threads either spin for a while (OpenMP's default) or sleep at once (``OMP_WAIT_POLICY=PASSIVE``).
On idle cores spinning is far faster: a boosting round is a few short parallel stretches, and waking a
sleeping thread for each costs more than the work (measured on 2 cores, one LightGBM fit on two threads:
26 classes on 10,000 rows 25 ms a round spinning, 95 ms passive; 39,000 rows of a binary census table 3.2
against 4.6; XGBoost 1.0-1.8x). When two processes' thread teams share the cores, spinning is ruinous: each
team's spinners hold the cores the other's need (two such fits at once: 290 ms a round spinning, 75
passive; a spinning one beside a passive one, 110 and 77). So: OpenMP's default (spin a while, then sleep) when
the cores are idle as the learners load, passive waiting when something else already keeps them busy, and
always in processes that run beside others of their kind (the server's workers, Spark's Python workers),
which set ``PASSIVE`` before this runs. A policy the user set is kept. The planner's remembered costs do not
depend on it (a run on a busy machine plans as on an idle one, and takes longer); the run's plan records it.

BLAS (OpenBLAS under NumPy and SciPy) is held at one thread while a training runs (``one_thread``): the
training's parallelism is its own (folds fitted side by side, the boosters' threads, torch's), and BLAS's threads,
one a core for every matrix product, came on top of it and waited on each other. A scikit-learn logistic
regression of 20,000 rows and 60 columns took 0.4 s with BLAS's two threads on idle cores and 0.17 s on one; two
side by side (two folds) 2.1 s against 0.21 s; beside one busy process 17 s against 0.22 s. A 30 s search of
the linear family fitted 71-131 candidates, 226 on one thread (``bench/blas_threads.py``).

After training, only a solver's work is held (``one_thread_unless_set``: a user's own setting of BLAS's threads
is kept): monitoring's domain classifier for a text column, a logistic regression, 0.16 s against 0.46 beside a
busy process. Predicting, evaluating, calibrating, explaining and reporting keep BLAS's threads: their products
are few and large (a network member's layers over thousands of rows), the same CPU time on one thread or two and
no slower on two (34,760 rows predicted in a median 4.2 s against 5.7 on one), and the whole commands measured
the same either way within this shared machine's noise (``bench/blas_commands.py``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["blas_threads", "choose_wait_policy", "cores_idle", "one_thread", "one_thread_unless_set", "user_threads",
           "wait_policy"]

#: the other processes may keep at most this many cores busy for the cores to count as idle
IDLE_CORES = 0.5
#: the settings by which a user says how many threads BLAS starts (OpenBLAS reads OMP_NUM_THREADS too)
THREAD_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: how long the cores are watched (the kernel counts in hundredths of a second: 20 ticks on 2 cores)
WATCH_SECONDS = 0.1


def _cpu_ticks() -> tuple[int, int]:
    """(all ticks, idle ticks) of all cores so far, from the first line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]  # idle and waiting on input/output


def cores_idle(seconds: float = WATCH_SECONDS) -> bool:
    """Whether other processes keep less than ``IDLE_CORES`` of the cores busy over the next ``seconds``
    (False where the kernel does not say: Linux only)."""
    try:
        total0, idle0 = _cpu_ticks()
        time.sleep(seconds)
        total1, idle1 = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        return False
    total = total1 - total0
    if total <= 0:
        return False
    busy_share = 1.0 - (idle1 - idle0) / total
    return busy_share * (os.cpu_count() or 1) < IDLE_CORES


def choose_wait_policy() -> str:
    """``PASSIVE`` for this process's OpenMP threads (``OMP_WAIT_POLICY``) unless the cores are idle, where
    OpenMP's default stays (spin a while, then sleep: ``ACTIVE`` would spin on while the process does other
    work); a policy already set is kept. Returns the policy in force ("default" for OpenMP's own). Only
    effective before LightGBM, XGBoost or torch load."""
    if "OMP_WAIT_POLICY" not in os.environ and not cores_idle():
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return wait_policy()


def wait_policy() -> str:
    """The OpenMP wait policy this process runs with ("default": OpenMP's own), for the run's record."""
    return os.environ.get("OMP_WAIT_POLICY", "default").upper()


_ONE_THREAD_LOCK = threading.Lock()
_one_thread: dict[str, Any] = {"users": 0, "saved": {}}


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS at one thread while the body runs (nested or from several threads at once: the last to leave gives
    back what the first found). BLAS's threads are the process's, not a thread's."""
    with _ONE_THREAD_LOCK:
        if _one_thread["users"] == 0:
            _one_thread["saved"] = blas_threads(1)
        _one_thread["users"] += 1
    try:
        yield
    finally:
        with _ONE_THREAD_LOCK:
            _one_thread["users"] -= 1
            if _one_thread["users"] == 0:
                blas_threads(_one_thread["saved"])


def user_threads() -> str | None:
    """The user's setting of BLAS's threads (``THREAD_SETTINGS``, as ``NAME=value``), None where none is set."""
    return next((f"{v}={os.environ[v]}" for v in THREAD_SETTINGS if os.environ.get(v, "").strip()), None)


@contextmanager
def one_thread_unless_set() -> Iterator[None]:
    """``one_thread`` for a solver's work outside a training (monitoring's domain classifier for a text column),
    unless the user set BLAS's threads in the environment: that setting is kept."""
    if user_threads() is not None:
        yield
        return
    with one_thread():
        yield


def blas_threads(threads: int | dict[str, int]) -> dict[str, int]:
    """Set the loaded BLAS libraries' threads (one number for all, or a number by library path, as answered),
    from whichever thread asks, and answer what they were. threadpoolctl lets only one thread at a time set
    OpenBLAS's threads and ignores the others silently; a thread of the search's may not hold that turn, so
    it is taken for the moment and given up at once."""
    import scipy.linalg  # noqa: F401 - loads SciPy's BLAS beside NumPy's before they are listed (sklearn's is SciPy's)
    from threadpoolctl import OpenBLASController, ThreadpoolController

    release = getattr(OpenBLASController, "clear_controlling_thread", None)
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    before = {lib.filepath: lib.num_threads for lib in libs}
    try:
        for lib in libs:
            n = threads if isinstance(threads, int) else threads.get(lib.filepath)
            if release is not None:
                release(force=True)
            if n is not None:
                lib.set_num_threads(n)
    finally:
        if release is not None:
            release(force=True)
    return before
