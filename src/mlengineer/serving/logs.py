"""Structured logs of the service: one JSON object per line on stderr.

Access lines (logger ``mlengineer.access``) say what each request was and how it ended; server lines
(logger ``mlengineer.serving``) say what the service did (start, model loaded or swapped, errors). Lines go
through a queue to a background thread, so a slow terminal or pipe never holds up a request.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from typing import Any

import orjson

__all__ = ["JsonFormatter", "LogPipe", "access_log", "json_line", "server_log"]

access_log = logging.getLogger("mlengineer.access")
server_log = logging.getLogger("mlengineer.serving")


def json_line(*, created: float, level: str, logger: str, event: str, fields: dict[str, Any] | None = None,
              exception: str | None = None) -> str:
    """One line: ``{"ts", "level", "logger", "pid", "event", ...fields}`` (and ``exception``), as every line
    of the service is written, by ``JsonFormatter`` and ``LogPipe.access`` alike."""
    out: dict[str, Any] = {"ts": _timestamp(created), "level": level, "logger": logger, "pid": os.getpid(),
                           "event": event}
    out.update(fields or {})
    if exception is not None:
        out["exception"] = exception
    return orjson.dumps(out, default=str).decode()


_stamp: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """UTC to the millisecond; the seconds' text is made once a second, not once a line."""
    global _stamp
    second, stamp = int(created), _stamp  # one read: lines are formatted on several threads
    if stamp[0] != second:
        stamp = _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{stamp[1]}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """``json_line`` of a record; fields come from ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        return json_line(created=record.created, level=record.levelname.lower(), logger=record.name,
                         event=record.getMessage(), fields=getattr(record, "fields", None),
                         exception=self.formatException(record.exc_info) if record.exc_info else None)


class LogPipe:
    """Routes the service's loggers through a queue to stderr as JSON; ``start`` and ``stop`` around serving.

    Lines are formatted on the caller's side and written by one thread, which takes every line waiting in
    the queue and writes them at once (one write and one flush for a burst of requests, not one per line).
    Access lines skip ``logging``'s records altogether (``access``): building, copying and formatting a
    LogRecord cost more than the rest of a one-row prediction's bookkeeping (measured: 1,600 against 1,904
    requests/s on one worker with the line on and off, bench/RESULTS.md "The server's own time")."""

    def __init__(self, *, access: bool = True, stream: Any = None) -> None:
        self.enabled_access = access
        self.stream = stream
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._handler: logging.Handler | None = None

    def start(self) -> LogPipe:
        self._thread = threading.Thread(target=self._write, name="mlengineer-log", daemon=True)
        self._thread.start()
        self._handler = _LineHandler(self._queue)
        self._handler.setFormatter(JsonFormatter())
        for logger, on in ((access_log, self.enabled_access), (server_log, True)):
            logger.handlers = [self._handler]
            logger.propagate = False
            logger.setLevel(logging.INFO if on else logging.CRITICAL + 1)
        return self

    def access(self, fields: dict[str, Any]) -> None:
        """One access line (``json_line``, event "request"), without a LogRecord. Before ``start`` (an app
        used without its lifespan) it goes to the ``mlengineer.access`` logger like any line."""
        if not self.enabled_access:
            return
        if self._thread is None:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("request", extra={"fields": fields})
            return
        self._queue.put(json_line(created=time.time(), level="info", logger=access_log.name, event="request",
                                  fields=fields))

    def _write(self) -> None:
        out = self.stream or sys.stderr
        while True:
            lines = [self._queue.get()]
            while True:  # every line already waiting goes out in the same write
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in lines  # stop() put it last
            text = "".join(f"{line}\n" for line in lines if line is not None)
            try:
                if text:
                    out.write(text)
                    out.flush()
            except Exception:  # noqa: BLE001 - stderr closed, gone or unwritable: serving goes on without
                pass  # its log, and the writer stays alive (a dead one would let the queue grow)
            if done:
                return

    def stop(self) -> None:
        for logger in (access_log, server_log):
            if self._handler in logger.handlers:
                logger.removeHandler(self._handler)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None


class _LineHandler(logging.Handler):
    """Puts each record, formatted here (so its fields and traceback are kept), on the writer's queue."""

    def __init__(self, lines: queue.SimpleQueue[str | None]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.put(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own rule: a bad record never breaks the caller
            self.handleError(record)
