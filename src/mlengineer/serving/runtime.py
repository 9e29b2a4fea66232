"""What a worker holds while it serves: the model being served, a batcher in front of it, and a watcher that
swaps in a newly promoted registry version.

``ServedModel`` pairs a loaded Model with its validator and version; requests take the current one once and
use it to the end, so a swap (one attribute assignment) never mixes two models in one answer.

``Batcher`` gives a worker natural batching: requests that arrive while the model is busy are predicted
together in one call (one DataFrame, one pass of the cleaning plan, encoder and ensemble), which costs little
more than one row. Nothing waits for a batch to fill: a request that finds the model idle is predicted at
once. Small batches run on the event loop itself (no thread hand-off, no GIL convoy); large requests go to
a thread so health checks and small requests keep being answered.

``ModelWatcher`` polls a registry alias; when it moves, it loads and warms the new version in a thread and
only then swaps it in. A version that fails to load is logged and skipped; the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bundle.model import Model, load
from ..data.images import example_image
from ..errors import MLEngineerError, ModelError
from .logs import server_log
from .settings import ServeSettings
from .validation import RequestValidator, Validated, schema_column

__all__ = ["Batcher", "ModelWatcher", "Prediction", "ServedModel", "load_served", "typed_frame"]


@dataclass
class Prediction:
    """One request's share of a batch: decoded labels or values, and the raw output (probabilities (n, k)
    for classifiers, values (n,) for regressors)."""

    labels: np.ndarray
    raw: np.ndarray


@dataclass(frozen=True)
class ServedModel:
    model: Model
    version: str
    source: str
    validator: RequestValidator
    #: the registered model's name when served from the registry, else the bundle's own name
    registered_name: str | None = None
    loaded_at: float = field(default_factory=time.time)
    #: the bundle's digest (its manifest's), which a worker replacing another checks it loads again
    digest: str | None = None

    @property
    def name(self) -> str:
        return self.registered_name or self.model.name

    @property
    def classification(self) -> bool:
        return bool(self.model.task.is_classification)

    def predict_many(self, items: list[Validated]) -> list[Prediction]:
        """Predict several requests in one call of the model; answers in the same order."""
        names = self.validator.features
        rows = sum(v.n_rows for v in items)
        if rows <= _SMALL_BATCH:
            # records take the model's small-batch path (column arrays, no DataFrame to build)
            records = [dict(zip(names, values, strict=True))
                       for v in items for values in zip(*(v.columns[n] for n in names), strict=True)]
            raw = self.model.predict_raw(records)
        else:
            raw = self.model.predict_raw(typed_frame([v.columns for v in items], names))
        decide = getattr(self.model, "decide", None)  # honours a decision threshold set on the bundle
        labels = decide(raw) if decide is not None else self.model.task.decode(raw)
        out, start = [], 0
        for v in items:
            stop = start + v.n_rows
            out.append(Prediction(labels[start:stop], raw[start:stop]))
            start = stop
        return out


try:
    from ..bundle.model import SMALL_BATCH as _SMALL_BATCH
except ImportError:  # pragma: no cover - bundles before the small-batch path
    _SMALL_BATCH = 0


def typed_frame(parts: list[dict[str, Any]], names: list[str]) -> pd.DataFrame:
    """One DataFrame of the columns ``names`` from the typed columns of one or more validated requests."""
    if len(parts) == 1:
        cols = parts[0]
    else:
        cols = {}
        for name in names:
            first = parts[0][name]
            if isinstance(first, np.ndarray):
                cols[name] = np.concatenate([p[name] for p in parts])
            else:
                cols[name] = list(itertools.chain.from_iterable(p[name] for p in parts))
    return pd.DataFrame({n: cols[n] for n in names}, copy=False)


def example_record(model: Model) -> dict[str, Any]:
    """A plausible input row built from the schema (means, most frequent categories, earliest dates), for
    warming a model up and for the examples in the API docs."""
    row: dict[str, Any] = {}
    for name in model.feature_names:
        col = schema_column(model, name)
        role = col.role.value if col is not None else "numeric"
        if role == "numeric":
            row[name] = round(col.mean, 4) if col is not None and col.mean is not None else 0.0
        elif role == "boolean":
            row[name] = True
        elif role == "categorical":
            row[name] = col.categories[0] if col is not None and col.categories else None
        elif role == "datetime":
            row[name] = str(col.min)[:10] if col is not None and col.min is not None else None
        elif role == "image":
            row[name] = example_image()  # a grey picture as base64, the way clients send one
        else:
            row[name] = "text"
    return row


def load_served(settings: ServeSettings, *, source: str | None = None) -> ServedModel:
    """Load the model ``settings.model`` names (a bundle folder or a registry reference), warmed up. A
    registry version is checked against the digest recorded when it was registered. A worker of several loads
    what the supervisor pinned (``settings.pinned``: the version the server serves, or its snapshot of the
    folder), checked against the digest the server accepted before anything is unpickled."""
    from ..tracking.registry import is_model_ref, resolve
    from ..tracking.registry import load_version as load_registered

    ref = source or settings.pinned or settings.model
    shown = source or settings.model  # what the served model says it comes from: the reference, the folder
    expected = None if source else settings.pinned_digest
    if is_model_ref(ref):
        info, path = resolve(ref, tracking_uri=settings.tracking_uri)
        _check_digest(ref, path, expected)
        return serve_model(settings, load_registered(info, tracking_uri=settings.tracking_uri), ref=shown,
                           version=info.version, name=info.name)
    _check_digest(ref, Path(ref).expanduser(), expected)
    return load_version(settings, ref=shown, path=Path(ref).expanduser(), version="1")


def _check_digest(ref: str, path: Path, expected: str | None) -> None:
    from ..bundle.manifest import bundle_digest

    if expected is not None and bundle_digest(path) != expected:
        raise ModelError(f"{ref} is not the bundle this server serves (its digest differs from the one the server "
                         "accepted): this worker does not start.")


def load_version(settings: ServeSettings, *, ref: str, path: Path, version: str,
                 name: str | None = None) -> ServedModel:
    """The bundle at ``path``, loaded (checked against its manifest) and warmed up."""
    return serve_model(settings, load(path), ref=ref, version=version, name=name)


def serve_model(settings: ServeSettings, model: Model, *, ref: str, version: str,
                name: str | None = None) -> ServedModel:
    """A loaded model made ready to serve: its validator built and one prediction made."""
    from ..bundle.manifest import bundle_digest

    validator = RequestValidator(model, unseen_categories=settings.unseen_categories,
                                 extra_columns=settings.extra_columns)
    served = ServedModel(model=model, version=version, source=ref, validator=validator, registered_name=name,
                         digest=bundle_digest(model.path) if model.path is not None else None)
    # one prediction before the first request (or the swap): lazy set-up happens now, and a bundle that
    # cannot predict is found before it serves anyone
    example = example_record(model)
    served.predict_many([validator.validate({k: [v] for k, v in example.items()}, 1)])
    return served


@dataclass
class _Job:
    served: ServedModel
    item: Validated
    future: asyncio.Future[Prediction]


class Batcher:
    """Runs predictions for one worker, batching the requests that arrive while the model is busy."""

    def __init__(self, *, max_rows: int = 10_000, inline_rows: int = 256,
                 on_batch: Callable[[ServedModel, int], None] | None = None) -> None:
        self.max_rows = max_rows
        self.inline_rows = inline_rows
        self.on_batch = on_batch
        self._pending: list[_Job] = []
        self._scheduled = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")

    async def predict(self, served: ServedModel, item: Validated) -> Prediction:
        loop = asyncio.get_running_loop()
        if item.n_rows > self.inline_rows:
            if self.on_batch:
                self.on_batch(served, item.n_rows)
            return (await loop.run_in_executor(self._executor, served.predict_many, [item]))[0]
        fut: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append(_Job(served, item, fut))
        if not self._scheduled:
            # runs after the requests already parsed in this turn of the loop have queued theirs
            self._scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        self._scheduled = False
        jobs, self._pending = self._pending, []
        while jobs:
            served = jobs[0].served
            batch: list[_Job] = []
            rest: list[_Job] = []
            rows = 0
            for job in jobs:
                if job.served is served and (not batch or rows + job.item.n_rows <= self.max_rows):
                    batch.append(job)
                    rows += job.item.n_rows
                else:
                    rest.append(job)
            jobs = rest
            self._run(served, batch, rows)

    def _run(self, served: ServedModel, batch: list[_Job], rows: int) -> None:
        live = [j for j in batch if not j.future.done()]
        if not live:
            return
        if self.on_batch:
            self.on_batch(served, rows)
        try:
            results = served.predict_many([j.item for j in live])
        except MLEngineerError as e:
            if len(live) == 1:
                live[0].future.set_exception(e)
                return
            # one request's rows spoil the batch: predict each alone, so only that request fails
            for job in live:
                self._run(served, [job], job.item.n_rows)
            return
        except Exception as e:  # a bug: answer 500 to these requests, keep serving the others
            for job in live:
                job.future.set_exception(e)
            return
        for job, res in zip(live, results, strict=True):
            if not job.future.done():
                job.future.set_result(res)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


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
        self.failed_version: str | None = None
        self.failed_forced = False  # whether the refused version was marked forced then
        #: why the last look-up failed, while it keeps failing (logged when it starts, changes and ends)
        self.lookup_problem: str | None = None
        #: called with a version refused (metrics count and show it), and with None when none is any more
        self.on_refused: Callable[[str | None], None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                new = await loop.run_in_executor(self._executor, self.check)
            except Exception as e:  # the registry being down must not stop serving the current version
                problem = str(e)[:300]
                if problem != self.lookup_problem:  # once, not at every poll: again only when it changes
                    self.lookup_problem = problem
                    server_log.warning("registry look-up failed; still serving the version it has, and looking "
                                       "again at every poll", extra={"fields": {"error": problem,
                                                                                "serving": self.get().version}})
                continue
            if self.lookup_problem is not None:
                server_log.info("registry look-up works again", extra={"fields": {"previous_error": self.lookup_problem}})
                self.lookup_problem = None
            if new is not None:
                old = self.get()
                self.swap(new)
                server_log.info("model swapped", extra={"fields": {
                    "model": new.name, "version": new.version, "previous_version": old.version}})

    def check(self) -> ServedModel | None:
        """The newly promoted version, loaded and warmed; None when the reference has not moved. A version
        that fails to load, whose files differ from what was registered, whose inputs the clients of the
        served version could not send, or whose answers they would misread (another task, target or fewer
        classes) is refused: logged with why, and the served version kept; unless an operator pointed the
        alias at it all the same (``promote --force``, ``rollback``), which is followed with a warning."""
        from ..bundle.compat import client_problems
        from ..tracking.registry import DEFAULT_ALIAS, ModelRef, lookup
        from ..tracking.registry import load_version as load_registered
        from ..tracking.store import mlflow_client

        ref = ModelRef.parse(self.settings.model)
        if self._client is None:
            self._client = mlflow_client(self.settings.tracking_uri)
        info = lookup(ref, client=self._client)
        current = self.get()
        if info.version == current.version and self.failed_version is not None:  # the alias came back
            self.failed_version = None
            if self.on_refused is not None:
                self.on_refused(None)
        # promote --force or rollback, over the version this server serves: it follows (and looks again)
        forced = info.forced.get(ref.alias or DEFAULT_ALIAS) == current.version
        if info.version == current.version or (info.version, forced) == (self.failed_version, self.failed_forced):
            return None
        try:
            model = load_registered(info, tracking_uri=self.settings.tracking_uri)
            problems = client_problems(current.model, model)
            if problems and forced:
                server_log.warning("swapping in a version an operator pointed the alias at all the same; clients of "
                                   "the served version may fail", extra={"fields": {
                                       "version": info.version, "serving": current.version,
                                       "problems": "; ".join(problems)[:500]}})
            elif problems:
                raise ModelError(f"clients of the served version would fail against it: {'; '.join(problems)}")
            served = serve_model(self.settings, model, ref=self.settings.model, version=info.version,
                                 name=info.name)
        except Exception as e:
            self.failed_version, self.failed_forced = info.version, forced
            server_log.error("new model version refused; still serving the old one",
                             extra={"fields": {"version": info.version, "serving": current.version,
                                               "reason": str(e)[:500]}})
            if self.on_refused is not None:
                self.on_refused(info.version)
            return None
        self.failed_version = None
        return served
