"""``ModelWatcher``: a worker's watch over a registry alias. It looks at the alias every ``--poll-interval``
seconds; when the alias moves, it loads and warms the new version in a thread and only then swaps it in, so no
request waits for a load and none sees two models.

A version it cannot take is refused: logged with why, shown in ``mlengineer_model_refused``, and the served
version kept. What makes it try that version again depends on why:

- its files cannot be read now (the folder or its manifest missing or unreadable, the store not answering, as
  while the store is copied or synced): it tries again by itself, at the next look and then less often
  (twice as long each time, at most ``MAX_BACKOFF`` seconds apart), logging again only when the reason changes;
- anything else (files that differ from what was registered, a bundle that does not load, clients of the
  served version it would break): it tries again when an operator points the alias at it again (``promote``
  and ``rollback`` mark the version with the time) or when its files change, not at every look.

A look-up that fails (the registry not answering, or answering that the alias names nothing) keeps the served
version and is held in ``lookup_problem`` with the time the failures began, until a look-up works again.

Over an ``mlflow server`` (an ``http(s)://`` registry) MLflow tries a request again for about 4 minutes before
it fails (7 tries more, at waits from 4 s doubling up to 120 s, each given 120 s to answer): a registry gone
down would show only minutes later, and the watch would stand still meanwhile. Once the model is loaded, the
watcher bounds them (``HTTP_BOUNDS``: 2 tries more, at once and 2 s later, each given the poll interval, 5 to
30 s, to answer), so a look-up of a server that is down fails in about 3 s; so do the downloads of the
versions it swaps in, which it tries again by itself (as files that cannot be read now). Settings a user made
in the environment (``MLFLOW_HTTP_REQUEST_*``) are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..bundle.manifest import UnreadableBundle, folder_stamp
from ..errors import ModelError
from .logs import server_log
from .runtime import ServedModel, serve_model
from .settings import ServeSettings

__all__ = ["HTTP_BOUNDS", "MAX_BACKOFF", "LookupProblem", "ModelWatcher", "Refusal", "http_bounds", "iso_time"]

#: the longest wait, in seconds, between two tries of a version whose files could not be read
MAX_BACKOFF = 60.0
#: MLflow's settings for its requests to an ``mlflow server`` while a watcher looks at it (the timeout: per
#: request, from the poll interval, see ``http_bounds``)
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


@dataclass(frozen=True)
class Refusal:
    """A version the alias names that the server refused, and what makes it try that version again."""

    version: str
    #: whether the alias was forced onto it, and when promote or rollback last pointed the alias at it
    marks: tuple[bool, str | None]
    reason: str
    #: its files could not be read: tried again after ``next_try``; else when ``marks`` or its files change
    passing: bool
    path: Path | None = None
    stamp: str | None = None
    tries: int = 1
    next_try: float = 0.0

    def due(self, marks: tuple[bool, str | None], now: float) -> bool:
        """Whether to try the version again now."""
        if marks != self.marks:
            return True
        if self.passing:
            return now >= self.next_try
        return self.path is not None and folder_stamp(self.path) != self.stamp

    def when_again(self) -> str:
        """When the server tries the version again, in words (its health answer says it)."""
        if not self.passing:
            return "when an operator points the alias at it again (mlengineer promote) or its files change"
        at = iso_time(time.time() + max(self.next_try - time.monotonic(), 0.0))
        return (f"by itself at the first look from {at} and then less often, as its "
                "files cannot be read now")


@dataclass(frozen=True)
class LookupProblem:
    """Look-ups of the alias that fail, one after the other: why the last one failed, and when."""

    error: str
    #: whether the registry answered (and said that the reference names no version), or could not be reached
    answered: bool
    #: when the first of these failures happened (``time.time()``)
    since: float
    #: when the server looks again (``time.time()``)
    next_look: float


def http_bounds(uri: str | None, poll_interval: float) -> dict[str, str]:
    """The MLflow settings that bound a watcher's requests to the registry at ``uri`` (the default store when
    None), where it is an ``mlflow server``; none for another store (a database answers or fails at once)."""
    from ..tracking.store import default_tracking_uri

    uris = (uri or default_tracking_uri(), os.environ.get("MLFLOW_REGISTRY_URI") or "")
    if not any(u.lower().startswith(("http://", "https://")) for u in uris):
        return {}
    return {**HTTP_BOUNDS, "MLFLOW_HTTP_REQUEST_TIMEOUT": str(min(max(math.ceil(poll_interval), 5), 30))}


def may_pass(error: BaseException) -> bool:
    """Whether a failure to load a version may pass by itself: files that cannot be read now, a store that
    does not answer."""
    from mlflow.exceptions import MlflowException

    return isinstance(error, UnreadableBundle | OSError | MlflowException)


class ModelWatcher:
    """Polls a registry reference every ``interval`` seconds and swaps in the version it names when it moves."""

    def __init__(self, settings: ServeSettings, *, get: Callable[[], ServedModel],
                 swap: Callable[[ServedModel], None]) -> None:
        self.settings = settings
        self.get = get
        self.swap = swap
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-watch")
        self._client: Any = None
        #: the version the alias names that this server refused, while it does
        self.refusal: Refusal | None = None
        #: why look-ups fail and since when, while they do (logged when it starts, changes and ends)
        self.lookup_problem: LookupProblem | None = None
        #: called with a version refused (metrics count and show it), and with None when none is any more
        self.on_refused: Callable[[str | None], None] | None = None
        #: called with ``lookup_problem`` when a look-up fails, and with None at the start and once they work
        self.on_lookup: Callable[[LookupProblem | None], None] | None = None
        self._bounded: list[str] = []  # the MLflow settings the watcher set (none the user set), unset at stop

    def start(self) -> None:
        """Look at the alias every poll interval, from now on (the model served is loaded already: only the
        watcher's requests to an ``mlflow server`` are bounded, see the module's notes)."""
        for name, value in http_bounds(self.settings.tracking_uri, self.settings.poll_interval).items():
            if name not in os.environ:
                os.environ[name] = value
                self._bounded.append(name)
        if self.on_lookup is not None:
            self.on_lookup(None)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)
        for name in self._bounded:
            os.environ.pop(name, None)
        self._bounded.clear()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                new = await loop.run_in_executor(self._executor, self.check)
            except Exception as e:  # the registry being down must not stop serving the current version
                self._failed(e)
                continue
            if self.lookup_problem is not None:
                server_log.info("registry look-up works again", extra={"fields": {
                    "previous_error": self.lookup_problem.error,
                    "failing_since": iso_time(self.lookup_problem.since)}})
                self.lookup_problem = None
                if self.on_lookup is not None:
                    self.on_lookup(None)
            if new is not None:
                old = self.get()
                self.swap(new)
                server_log.info("model swapped", extra={"fields": {
                    "model": new.name, "version": new.version, "previous_version": old.version}})

    def _failed(self, error: Exception) -> None:
        """Hold a look-up that failed in ``lookup_problem``, keeping when the failures began; logged once, not
        at every poll: again only when the reason changes."""
        from ..tracking.store import masked

        now = time.time()
        before = self.lookup_problem
        problem = LookupProblem(masked(str(error), self.settings.tracking_uri)[:300] or type(error).__name__,
                                isinstance(error, ModelError), before.since if before is not None else now,
                                now + self.settings.poll_interval)
        self.lookup_problem = problem
        if self.on_lookup is not None:
            self.on_lookup(problem)
        if before is None or before.error != problem.error:
            server_log.warning("registry look-up failed; still serving the version it has, and looking again at "
                               "every poll", extra={"fields": {"error": problem.error, "serving": self.get().version,
                                                               "failing_since": iso_time(problem.since)}})

    def check(self) -> ServedModel | None:
        """The newly promoted version, loaded and warmed; None when the reference has not moved, or names a
        version refused that is not due to be tried again (see the module's notes). A version that fails to load,
        whose files differ from what was registered, whose inputs the clients of the served version could not
        send, or whose answers they would misread (another task, target or fewer classes) is refused: logged with
        why, and the served version kept; unless an operator pointed the alias at it all the same
        (``promote --force``, ``rollback``), which is followed with a warning."""
        from ..tracking.artifacts import local_path
        from ..tracking.registry import DEFAULT_ALIAS, ModelRef, lookup
        from ..tracking.store import mlflow_client

        ref = ModelRef.parse(self.settings.model)
        if self._client is None:
            self._client = mlflow_client(self.settings.tracking_uri)
        info = lookup(ref, client=self._client)
        current = self.get()
        if info.version == current.version:
            if self.refusal is not None:  # the alias came back
                self.refusal = None
                if self.on_refused is not None:
                    self.on_refused(None)
            return None
        alias = ref.alias or DEFAULT_ALIAS
        # promote --force or rollback, over the version this server serves: it follows
        forced = info.forced.get(alias) == current.version
        marks = (forced, info.promoted.get(alias))
        held = self.refusal if self.refusal is not None and self.refusal.version == info.version else None
        if held is not None and not held.due(marks, time.monotonic()):
            return None
        path = stamp = None
        try:
            path = local_path(info.source, name=info.name, version=info.version,
                              tracking_uri=self.settings.tracking_uri)
            stamp = folder_stamp(path)  # before reading: files that change while they are read are tried again
            served = self._load(info, current, forced)
        except Exception as e:
            self._refuse(Refusal(info.version, marks, str(e)[:500], may_pass(e), path, stamp), held, current)
            return None
        self.refusal = None
        return served

    def _load(self, info: Any, current: ServedModel, forced: bool) -> ServedModel:
        """The version ``info`` names, checked against its recorded digest and against the clients of the
        served version (``forced``: followed all the same, with a warning), loaded and warmed."""
        from ..bundle.compat import client_problems
        from ..tracking.registry import load_version as load_registered

        model = load_registered(info, tracking_uri=self.settings.tracking_uri)
        problems = client_problems(current.model, model)
        if problems and forced:
            server_log.warning("swapping in a version an operator pointed the alias at all the same; clients of "
                               "the served version may fail", extra={"fields": {
                                   "version": info.version, "serving": current.version,
                                   "problems": "; ".join(problems)[:500]}})
        elif problems:
            raise ModelError(f"clients of the served version would fail against it: {'; '.join(problems)}")
        return serve_model(self.settings, model, ref=self.settings.model, version=info.version, name=info.name)

    def _refuse(self, new: Refusal, held: Refusal | None, current: ServedModel) -> None:
        """Keep the refusal ``new`` (``held``: the one before, of the same version), logged and counted unless it
        is a try after a wait that failed as the one before did."""
        again = held is not None and held.passing and new.passing and held.marks == new.marks
        tries = held.tries + 1 if again and held is not None else 1
        wait = min(self.settings.poll_interval * 2 ** (tries - 1), max(MAX_BACKOFF, self.settings.poll_interval))
        self.refusal = Refusal(new.version, new.marks, new.reason, new.passing, new.path, new.stamp, tries,
                               time.monotonic() + wait)
        if again and held is not None and held.reason == new.reason:
            return
        retry = (f"by itself, in {wait:g} s and then less often, as its files cannot be read now" if new.passing
                 else "when an operator points the alias at it again (mlengineer promote) or its files change")
        server_log.error("new model version refused; still serving the old one", extra={"fields": {
            "version": new.version, "serving": current.version, "reason": new.reason, "tries_again": retry}})
        if self.on_refused is not None:
            self.on_refused(new.version)


def iso_time(t: float) -> str:
    """A ``time.time()`` in ISO 8601 (UTC), to the second (its fraction left out)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
