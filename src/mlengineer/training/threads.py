"""BLAS held at one thread while a training runs.

A training's parallelism is its own: folds fitted side by side, LightGBM's and XGBoost's threads, torch's. BLAS
(OpenBLAS under NumPy and SciPy) starts its own threads on top, one a core, for every matrix product, and on
cores another thread keeps busy they wait on each other: a scikit-learn logistic regression of 20,000 rows and
60 columns took 17 s with BLAS's two threads beside one busy process, 0.22 s on one thread; two side by side
(two folds) 25 s against 0.35 s; a 30 s search of the linear family fitted 6 candidates against 226. So a
training holds BLAS at one thread (``one_thread``) and gives the user's setting back when it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["blas_threads", "one_thread"]

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


def blas_threads(threads: int | dict[str, int]) -> dict[str, int]:
    """Set the loaded BLAS libraries' threads (one number for all, or a number by library path, as answered),
    from whichever thread asks, and answer what they were. threadpoolctl lets only one thread at a time set
    OpenBLAS's threads and ignores the others silently; a thread of the search's may not hold that turn, so
    it is taken for the moment and given up at once."""
    import sklearn.linear_model  # noqa: F401 - loads SciPy's BLAS beside NumPy's before they are listed
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
