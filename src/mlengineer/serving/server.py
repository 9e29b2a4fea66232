"""Running the service: one uvicorn server per worker process, all on one listening socket.

``serve(settings)`` binds the socket itself (so a port in use is one clear error, before any model loads),
then either serves in this process (one worker) or starts ``settings.workers`` processes that share it,
supervises them (a worker that dies is replaced) and passes SIGTERM/SIGINT on, so each finishes the requests
it has in flight before it exits.

Each accepted connection gets TCP_NODELAY: without it a keep-alive client's small requests can wait on
the kernel's delayed ACK (~40 ms). Each worker runs uvloop and httptools, and its numeric libraries are
limited to ``cores / workers`` threads so that workers do not fight over the cores.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from ..errors import ServingError
from .settings import ServeSettings

__all__ = ["bind_socket", "serve"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by every accepted connection on Linux; the protocol below sets it again to be sure
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ServingError(f"Cannot listen on {host}:{port} ({e.strerror}): choose another --port.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _limit_threads(settings: ServeSettings) -> None:
    n = settings.threads or max(1, (os.cpu_count() or 1) // settings.workers)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass


def _protocol() -> Any:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class NoDelayProtocol(HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    return NoDelayProtocol


def _run_worker(settings_json: str, sock: socket.socket, served: Any = None) -> None:
    """One worker: load the model (unless given), build the app and serve on ``sock`` until told to stop."""
    import uvicorn

    from .app import create_app

    settings = ServeSettings.model_validate_json(settings_json)
    _limit_threads(settings)
    app = create_app(settings=settings, served=served)
    config = uvicorn.Config(app, loop="uvloop", http=_protocol(), lifespan="on", access_log=False,
                            log_level="warning", timeout_keep_alive=int(max(1, settings.keep_alive)),
                            timeout_graceful_shutdown=int(settings.graceful_timeout), backlog=2048)
    # uvicorn raises the signal that stopped it again once it has shut down gracefully; a SIGTERM that
    # finished every request in flight is a clean exit (status 0), not a death by signal
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker_main(settings_json: str, sock: socket.socket) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        _run_worker(settings_json, sock)


def serve(settings: ServeSettings, *, served: Any = None, on_ready: Any = None) -> None:
    """Serve until SIGTERM or SIGINT; with ``workers > 1``, supervise that many worker processes.

    ``served`` (a ServedModel already loaded) saves loading the model again when there is one worker."""
    sock = bind_socket(settings.host, settings.port)
    if on_ready is not None:
        on_ready(sock.getsockname()[1])
    try:
        if settings.workers == 1:
            _run_worker(settings.model_dump_json(), sock, served)
        else:
            Supervisor(settings, sock).run()
    finally:
        sock.close()


class Supervisor:
    """Starts the worker processes, replaces one that dies, and stops them all gracefully on a signal."""

    def __init__(self, settings: ServeSettings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self.ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked thread pools
        self.procs: list[Any] = []
        self.stopping = False
        self.metrics_dir = tempfile.mkdtemp(prefix="mlengineer-metrics-")
        self._recent_deaths: list[float] = []

    def _start(self) -> Any:
        p = self.ctx.Process(target=_worker_main, args=(self.settings.model_dump_json(), self.sock), daemon=False)
        p.start()
        return p

    def run(self) -> None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir  # read by the workers' prometheus-client
        _limit_threads(self.settings)  # the children inherit the environment
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.procs = [self._start() for _ in range(self.settings.workers)]
            while not self.stopping:
                time.sleep(0.2)
                self._replace_dead()
            self._stop_all()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            import shutil

            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _replace_dead(self) -> None:
        from prometheus_client import multiprocess

        for i, p in enumerate(self.procs):
            if p.is_alive():
                continue
            multiprocess.mark_process_dead(p.pid, self.metrics_dir)
            now = time.time()
            self._recent_deaths = [t for t in self._recent_deaths if now - t < 30] + [now]
            if len(self._recent_deaths) > 2 * self.settings.workers:
                print(f"mlengineer serve: workers keep dying (last exit code {p.exitcode}); stopping.",
                      file=sys.stderr)
                self.stopping = True
                return
            self.procs[i] = self._start()

    def _stop_all(self) -> None:
        # this process's copy of the listening socket would keep the port accepting into the backlog
        # while the workers drain; closing it lets new clients be refused at once
        self.sock.close()
        for p in self.procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.time() + self.settings.graceful_timeout + 10
        for p in self.procs:
            p.join(timeout=max(0.1, deadline - time.time()))
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join()
