"""What a worker holds while it serves: the model being served, a batcher in front of it, and a watcher that
swaps in a newly promoted registry version.

``ServedModel`` pairs a loaded Model with its validator and version; requests take the current one once and
use it to the end, so a swap (one attribute assignment) never mixes two models in one answer.

``Batcher`` gives a worker natural batching: requests that arrive while the model is busy are predicted
together in one call (one DataFrame, one pass of the cleaning plan, encoder and ensemble), which costs little
more than one row. Nothing waits for a batch to fill: a request that finds the model idle is predicted at
once. Small batches run on the event loop itself (no thread hand-off, no GIL convoy); large requests go to
a thread so health checks and small requests keep being answered.

``watcher.ModelWatcher`` polls a registry alias and swaps in the version it names (``serve_model`` makes it
ready).
"""

from __future__ import annotations

import asyncio
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
from .settings import ServeSettings
from .validation import RequestValidator, Validated, schema_column

__all__ = ["Batcher", "Prediction", "ServedModel", "load_served", "serve_model", "typed_frame"]


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
    from ..bundle.manifest import readable_digest

    if expected is not None and readable_digest(path, ref) != expected:  # files that cannot be read: said so
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
