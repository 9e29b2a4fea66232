"""Structured logs of the service: one JSON object per line on stderr.

Access lines (logger ``mlengineer.access``) say what each request was and how it ended; server lines
(logger ``mlengineer.serving``) say what the service did (start, model loaded or swapped, errors). Lines go
through a queue to a background thread, so a slow terminal or pipe never holds up a request.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import time
from typing import Any

import orjson

__all__ = ["JsonFormatter", "LogPipe", "access_log", "server_log"]

access_log = logging.getLogger("mlengineer.access")
server_log = logging.getLogger("mlengineer.serving")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "pid", "event", ...fields}``; fields come from ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "pid": os.getpid(),
            "event": record.getMessage(),
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class LogPipe:
    """Routes the service's loggers through a queue to stderr as JSON; ``start`` and ``stop`` around serving."""

    def __init__(self, *, access: bool = True, stream: Any = None) -> None:
        self.access = access
        self.stream = stream
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener: logging.handlers.QueueListener | None = None
        self._handler: logging.Handler | None = None

    def start(self) -> LogPipe:
        out = logging.StreamHandler(self.stream or sys.stderr)
        out.setFormatter(logging.Formatter("%(message)s"))
        self._listener = logging.handlers.QueueListener(self._queue, out)
        self._listener.start()
        # formatted on the caller's side (a few microseconds), so the record's fields and traceback are kept
        self._handler = logging.handlers.QueueHandler(self._queue)
        self._handler.setFormatter(JsonFormatter())
        for logger, on in ((access_log, self.access), (server_log, True)):
            logger.handlers = [self._handler]
            logger.propagate = False
            logger.setLevel(logging.INFO if on else logging.CRITICAL + 1)
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        for logger in (access_log, server_log):
            if self._handler in logger.handlers:
                logger.removeHandler(self._handler)
