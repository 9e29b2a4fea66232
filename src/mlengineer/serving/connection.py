"""The HTTP protocol each worker's uvicorn runs: httptools' own, with TCP_NODELAY and bounds on a request's
arrival (uvicorn itself bounds neither headers nor body, so a stalled client would hold its connection, and
every shutdown, indefinitely).

- TCP_NODELAY on each connection: without it a keep-alive client's small requests can wait on the kernel's
  delayed ACK (~40 ms).
- As nginx's client header and body timeouts: a request's headers must arrive within ``read_timeout`` of its
  first byte (of the connection, for its first request), and its body may not pause that long; else a JSON
  408 and the connection closed. A connection that sends nothing is closed after as long.
- At shutdown, a request still arriving is finished if its body keeps moving (an upload in progress when a
  rollout's SIGTERM comes), and cut with a JSON 503 once it pauses ``SHUTDOWN_PAUSE_S`` (or the read timeout,
  if shorter), rather than holding the shutdown for its whole grace period; uvicorn closes a connection whose
  headers are not in at once.

One timer a request; the body's chunks only note the time. A request whose headers are in is cut by putting
the error in its scope (``READ_CUT``) for the middleware's body reader to raise, so its route answers it as
any error, in JSON (with MLflow's fields on /invocations), counted and logged.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..errors import MLEngineerError, ServingError
from .errors import RequestTimeout
from .middleware import READ_CUT

__all__ = ["SHUTDOWN_PAUSE_S", "ServiceProtocol", "service_protocol"]

#: at shutdown, the longest pause of a request's body before it is cut
SHUTDOWN_PAUSE_S = 2.0


def service_protocol(read_timeout: float) -> type[ServiceProtocol]:
    """The protocol class with its read timeout."""
    return type("ServiceProtocol", (ServiceProtocol,), {"read_timeout": float(read_timeout)})


class ServiceProtocol(HttpToolsProtocol):
    read_timeout = 30.0
    _read_timer: Any = None
    _arriving = False  # a request has begun and has not arrived whole
    _last_read: float | None = None  # when its body last moved (None: its headers are not in yet)
    _stopping_at: float | None = None  # when shutdown began

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._read_timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arriving, self._last_read = True, None
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._last_read = self.loop.time()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._last_read = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._arriving = False
        self._stop_timer()

    def shutdown(self) -> None:
        if self._arriving and self._last_read is not None:  # a body still arriving: finished only if it moves
            self._stopping_at = self.loop.time()
            self._stop_timer()
            self._read_timer = self.loop.call_later(self._pause_bound(), self._timed_out)
        super().shutdown()

    def _pause_bound(self) -> float:
        return min(self.read_timeout, SHUTDOWN_PAUSE_S) if self._stopping_at is not None else self.read_timeout

    def _stop_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if not self._arriving:  # a connection that sent nothing: closed without a word
            self.transport.close()
            return
        if self._last_read is None:
            self._cut(RequestTimeout(f"The request's headers did not arrive within {self.read_timeout:g} s (the "
                                     "server's --read-timeout): send the request without pausing."))
            return
        bound = self._pause_bound()
        paused = self.loop.time() - max(self._last_read, self._stopping_at or self._last_read)
        if paused < bound:  # the body is moving: look again when it would have paused that long
            self._read_timer = self.loop.call_later(bound - paused, self._timed_out)
        elif self._stopping_at is not None:
            self._cut(ServingError("The server is shutting down, and the request's body stopped arriving: send "
                                   "it again."))
        else:
            self._cut(RequestTimeout(f"The request's body stopped arriving for {self.read_timeout:g} s (the "
                                     "server's --read-timeout): send it without pausing."))

    def _cut(self, error: MLEngineerError) -> None:
        """End a request that has not arrived whole: its route answers ``error`` (the middleware's body reader
        raises it) once its headers are in, else it is answered here; the connection then closes."""
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            if cycle.response_complete:  # answered without its body (a 413, a 415): nothing more to read
                self.transport.close()
            elif READ_CUT not in self.scope:
                self.scope[READ_CUT] = error  # type: ignore[literal-required]
                cycle.keep_alive = False
                cycle.message_event.set()
            return
        body = orjson.dumps({"error": str(error)})
        head = [STATUS_LINE[error.http_status], *(n + b": " + v + b"\r\n" for n, v in self.server_state.default_headers),
                b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
