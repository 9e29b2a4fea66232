"""Running the service: one uvicorn server per worker process, all on one listening socket.

``serve(settings)`` binds the socket itself (so a port in use, or a host that is not this machine's, is one
clear error), then either serves in this process (one worker) or has a ``Supervisor`` (``supervisor.py``)
start ``settings.workers`` processes that share it, each serving the version the server accepted, replace
one that dies and pass SIGTERM/SIGINT on, so each finishes the requests it has in flight before it exits.

Each worker's uvicorn runs ``connection.py``'s protocol: TCP_NODELAY on each connection, a JSON 408 for a
request whose headers or body stall past ``read_timeout``, and at shutdown a 503 for one whose body stalls
rather than the whole grace period waited. Each worker runs uvloop and httptools, and its numeric libraries
are limited to ``cores / workers`` threads so that workers do not fight over the cores.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ..errors import ServingError
from .settings import ServeSettings
from .supervisor import Pin, Supervisor, limit_threads, mark_ready, record_swap, worker_failed

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
        raise ServingError(_bind_problem(host, port, e)) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _bind_problem(host: str, port: int, e: OSError) -> str:
    """Why ``host:port`` cannot be listened on, naming the option at fault."""
    where = f"Cannot listen on {host}:{port}"
    if isinstance(e, socket.gaierror):
        return (f"{where}: the host {host!r} is not known ({e.strerror}): give --host a name or address of this "
                "machine, such as 127.0.0.1 (this machine only) or 0.0.0.0 (every network it is on).")
    if e.errno == errno.EADDRNOTAVAIL:
        return (f"{where}: {host} is not an address of this machine ({e.strerror}): give --host one of its "
                "addresses, such as 127.0.0.1 (this machine only) or 0.0.0.0 (every network it is on).")
    if e.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use ({e.strerror}): choose another --port."
    if e.errno == errno.EACCES:
        return f"{where} ({e.strerror}): a port below 1024 needs more rights than this user has: choose another --port."
    return f"{where} ({e.strerror}): check --host and --port."


def _run_worker(settings_json: str, sock: socket.socket, served: Any = None) -> None:
    """One worker: load the model (unless given), build the app and serve on ``sock`` until told to stop."""
    import uvicorn

    from .app import create_app
    from .connection import service_protocol

    settings = ServeSettings.model_validate_json(settings_json)
    limit_threads(settings)
    app = create_app(settings=settings, served=served)
    home = settings.supervisor_dir
    if home is not None:  # tell the supervisor: this worker serves, and which version it swaps in
        app.state.service.on_swap.append(lambda new: record_swap(Path(home), new))
        mark_ready(Path(home))
    # uvicorn takes fractions of a second for both (its annotations say int)
    config = uvicorn.Config(app, loop="uvloop", http=service_protocol(settings.read_timeout), lifespan="on",
                            access_log=False, log_level="warning",
                            timeout_keep_alive=settings.keep_alive,  # type: ignore[arg-type]
                            timeout_graceful_shutdown=settings.graceful_timeout,  # type: ignore[arg-type]
                            backlog=2048)
    # uvicorn raises the signal that stopped it again once it has shut down gracefully; a SIGTERM that
    # finished every request in flight is a clean exit (status 0), not a death by signal
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


def worker_main(settings_json: str, sock: socket.socket) -> None:
    """A worker process started by the supervisor; a failure is one JSON line and an exit status."""
    try:
        _run_worker(settings_json, sock)
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001 - said as one line, never a bare traceback among the JSON lines
        sys.exit(worker_failed(e))


def serve(settings: ServeSettings, *, served: Any = None, on_ready: Any = None) -> None:
    """Serve until SIGTERM or SIGINT; with ``workers > 1``, supervise that many worker processes.

    ``served``: the model already loaded (a ServedModel), which one worker serves as it is; with several, what
    they are to serve (the ServedModel, or its ``Pin`` where the caller keeps no model in memory)."""
    sock = bind_socket(settings.host, settings.port)
    if on_ready is not None:
        on_ready(sock.getsockname()[1])
    try:
        if settings.workers == 1:
            _run_worker(settings.model_dump_json(), sock, None if isinstance(served, Pin) else served)
        else:
            pin = served if isinstance(served, Pin) or served is None else Pin.of(served)
            Supervisor(settings, sock, pin=pin, target=worker_main).run()
    finally:
        sock.close()
