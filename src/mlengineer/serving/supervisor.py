"""Several worker processes on one listening socket: started, replaced when one dies, stopped on a signal.

Every worker serves the same version. The supervisor hands each one the version the server accepted (a
``Pin``): ``models:/NAME/VERSION`` with its digest for a registry reference, which the worker then follows
as the others do (its alias polled, a new version swapped in or refused alike), or, for a bundle folder, a
private snapshot copied and verified once at start. A replacement therefore serves what its siblings serve,
whatever became of the reference or the folder since: a worker that swaps a version in writes it to
``served.json`` in the supervisor's folder, and the next replacement starts on that one.

A worker writes ``ready-PID`` there once its model is loaded. One that dies is logged (one JSON line: its
pid, exit code or signal, how long it lived) and replaced: at once if it had been serving, else after a
delay that doubles with each failed start (0.5 s up to 30 s), so a replacement that cannot start never takes
the healthy workers down. Only when no worker has ever started and they keep failing does the server stop.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MLEngineerError, ServingError
from .logs import json_line
from .runtime import ServedModel
from .settings import ServeSettings

__all__ = ["Pin", "Supervisor", "limit_threads", "mark_ready", "record_swap", "worker_failed"]

#: the longest wait before a worker that keeps failing to start is tried again
MAX_BACKOFF_S = 30.0
SWAP_FILE = "served.json"


@dataclass(frozen=True)
class Pin:
    """What every worker loads at start: ``models:/NAME/VERSION`` or a bundle folder, and its digest."""

    source: str
    digest: str | None

    @classmethod
    def of(cls, served: ServedModel) -> Pin:
        """The version ``served`` is, as a worker can load it again (a registry alias pinned to its number)."""
        from ..tracking.registry import is_model_ref

        if is_model_ref(served.source):
            return cls(f"models:/{served.name}/{served.version}", served.digest)
        return cls(str(served.model.path or served.source), served.digest)

    @classmethod
    def look_up(cls, settings: ServeSettings) -> Pin:
        """The version ``settings.model`` names now, where no loaded model says it (the library's ``serve``)."""
        from ..tracking.registry import is_model_ref, resolve

        if not is_model_ref(settings.model):
            return cls(settings.model, None)
        info, _ = resolve(settings.model, tracking_uri=settings.tracking_uri)
        return cls(f"models:/{info.name}/{info.version}", info.digest)


def record_swap(folder: Path, served: ServedModel) -> None:
    """Called in a worker that swapped ``served`` in: the version replacements are to start on."""
    pin = Pin.of(served)
    tmp = folder / f".{SWAP_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"source": pin.source, "digest": pin.digest}), encoding="utf-8")
    os.replace(tmp, folder / SWAP_FILE)


def mark_ready(folder: Path) -> None:
    """Called in a worker whose model is loaded: it serves from now on."""
    (folder / f"ready-{os.getpid()}").touch()


def limit_threads(settings: ServeSettings) -> None:
    """Numeric libraries limited to ``cores / workers`` threads each (children inherit the environment)."""
    n = settings.threads or max(1, (os.cpu_count() or 1) // settings.workers)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass


def _say(level: str, event: str, **fields: Any) -> None:
    """One JSON line on stderr, as the workers write theirs."""
    print(json_line(created=time.time(), level=level, logger="mlengineer.serving", event=event, fields=fields),
          file=sys.stderr, flush=True)


@dataclass
class _Slot:
    proc: Any = None
    started: float = 0.0
    ready: bool = False
    failures: int = 0  # failed starts in a row
    next_start: float = 0.0


class Supervisor:
    """Starts the worker processes, replaces one that dies, and stops them all gracefully on a signal."""

    def __init__(self, settings: ServeSettings, sock: socket.socket, *, pin: Pin | None,
                 target: Callable[[str, socket.socket], None]) -> None:
        self.settings = settings
        self.sock = sock
        self.pin = pin
        self.target = target
        self.ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked thread pools
        self.slots: list[_Slot] = []
        self.stopping = False
        self.home = Path(tempfile.mkdtemp(prefix="mlengineer-serve-"))  # 0700: this user's alone
        self.metrics_dir = self.home / "metrics"
        self.metrics_dir.mkdir()
        self.ever_ready = False
        self.failed_starts = 0
        self.gave_up: str | None = None

    def run(self) -> None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)  # read by the workers' prometheus-client
        limit_threads(self.settings)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.pin = self._snapshot(self.pin or Pin.look_up(self.settings))
            self.slots = [_Slot() for _ in range(self.settings.workers)]
            while not self.stopping:
                self._tend()
                time.sleep(0.2)
            self._stop_all()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            shutil.rmtree(self.home, ignore_errors=True)
        if self.gave_up is not None:
            raise ServingError(self.gave_up)

    def _snapshot(self, pin: Pin) -> Pin:
        """A bundle folder copied to this server's own folder and checked against its manifest (and against the
        digest of the bundle the server loaded): what every worker loads, whatever becomes of the folder."""
        from ..bundle.manifest import verify_manifest
        from ..tracking.registry import is_model_ref

        if is_model_ref(pin.source):
            return pin
        src = Path(pin.source)
        dest = self.home / "bundle" / src.name
        try:
            shutil.copytree(src, dest, symlinks=False)
        except OSError as e:
            raise ServingError(f"Cannot copy the bundle {str(src)!r} for the workers ({e}): free some room in "
                               f"{tempfile.gettempdir()} (or set TMPDIR), or serve with one worker.") from None
        digest = verify_manifest(dest)
        if pin.digest is not None and digest != pin.digest:
            raise ServingError(f"The bundle {str(src)!r} changed on disk while the server was starting: start it "
                               "again.")
        return Pin(str(dest), digest)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _start(self) -> Any:
        pin = self._current_pin()
        settings = self.settings.model_copy(update={"pinned": pin.source, "pinned_digest": pin.digest,
                                                    "supervisor_dir": self.home})
        p = self.ctx.Process(target=self.target, args=(settings.model_dump_json(), self.sock), daemon=False)
        p.start()
        return p

    def _current_pin(self) -> Pin:
        """The version the workers serve now: the last one a worker swapped in, else the one the server began with."""
        assert self.pin is not None
        try:
            found = json.loads((self.home / SWAP_FILE).read_text(encoding="utf-8"))
            return Pin(str(found["source"]), found.get("digest"))
        except (OSError, ValueError, KeyError, TypeError):
            return self.pin

    def _tend(self) -> None:
        """Start what is due, note which workers are ready, and replace the dead."""
        now = time.monotonic()
        for slot in self.slots:
            p = slot.proc
            if p is not None and p.is_alive():
                if not slot.ready and (self.home / f"ready-{p.pid}").exists():
                    slot.ready = self.ever_ready = True
                continue
            if p is not None:
                self._died(slot, p, now)
                if self.stopping:
                    return
            if slot.proc is None and now >= slot.next_start and not self.stopping:
                slot.proc, slot.started, slot.ready = self._start(), now, False

    def _died(self, slot: _Slot, p: Any, now: float) -> None:
        """Log a worker's death and decide when its replacement starts (or, when none ever started, give up)."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(p.pid, str(self.metrics_dir))
        slot.proc = None
        ready = slot.ready or (self.home / f"ready-{p.pid}").exists()
        code = p.exitcode
        how = {"exit_code": code} if code is None or code >= 0 else {"signal": _signal_name(-code)}
        slot.failures = 0 if ready else slot.failures + 1
        delay = 0.0 if ready else min(MAX_BACKOFF_S, 0.5 * 2 ** (slot.failures - 1))
        slot.next_start = now + delay
        _say("error", "worker died", worker_pid=p.pid, **how, seconds_alive=round(now - slot.started, 1),
             had_started=ready, next_start_in_s=delay)
        if not ready:
            self.failed_starts += 1
            if not self.ever_ready and self.failed_starts > 2 * self.settings.workers:
                said = f"exit code {code}" if "exit_code" in how else f"signal {how['signal']}"
                self.gave_up = f"The workers keep failing to start (the last: {said}); the server stops: see the lines above."
                self.stopping = True

    def _stop_all(self) -> None:
        # this process's copy of the listening socket would keep the port accepting into the backlog
        # while the workers drain; closing it lets new clients be refused at once
        self.sock.close()
        procs = [s.proc for s in self.slots if s.proc is not None]
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.time() + self.settings.graceful_timeout + 10
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.time()))
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def worker_failed(error: BaseException) -> int:
    """Said in a worker whose start (or serving) failed: one JSON line, never a bare traceback among them; the
    exit status to leave with."""
    import traceback

    if isinstance(error, MLEngineerError):
        _say("error", "worker could not start", error=str(error))
        return 3
    _say("error", "worker failed", error=f"{type(error).__name__}: {str(error)[:300]}",
         exception="".join(traceback.format_exception(error)))
    return 1
