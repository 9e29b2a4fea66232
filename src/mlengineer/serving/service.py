"""What one worker holds while it serves, and the one path every row-taking request goes through.

``Service`` holds the settings, the model being served (``service.served``, read once per request, so a hot
swap never mixes two models in one answer), the batcher, metrics and logs. Each router in ``routes/`` is made
over one Service.

Every route that takes rows (``/predict``, ``/invocations``, ``.../infer``, ``/explain``) decodes its body
to columns (``protocols.py``) and then calls ``validate_rows``: the row limit (413), then
``RequestValidator.validate`` (422 naming the column and row), giving typed columns. Routes that predict go
on through ``Service.predict`` (batcher, metrics, prediction log); ``/explain`` explains the typed columns.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.requests import Request

from ..bundle.model import Model
from .errors import PayloadTooLarge
from .logs import LogPipe, server_log
from .metrics import Metrics, value_buckets
from .protocols import Columns
from .runtime import Batcher, Prediction, ServedModel
from .settings import ServeSettings
from .validation import RequestValidator, Validated
from .watcher import ModelWatcher

__all__ = ["INLINE_ROWS", "Service", "check_rows", "served_from_model", "validate_rows"]

#: up to this many rows a request is validated (and predicted) on the event loop; more go to a thread
INLINE_ROWS = 256


def check_rows(n_rows: int, limit: int) -> None:
    """413 when one request holds more rows than ``limit``."""
    if n_rows > limit:
        raise PayloadTooLarge(f"The request has {n_rows:,} rows; one request may have at most {limit:,}: "
                              "split it into smaller requests.")


async def validate_rows(served: ServedModel, columns: Columns, n_rows: int, *, limit: int,
                        nan_is_missing: bool = False, inline_rows: int = INLINE_ROWS) -> Validated:
    """The one way in for rows: the row limit, then the served model's validator; typed feature columns.

    ``nan_is_missing`` reads NaN as a missing value (MLflow's clients send pandas frames, where NaN is how a
    missing value is written); everywhere else NaN is refused."""
    check_rows(n_rows, limit)
    if n_rows > inline_rows:
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: served.validator.validate(columns, n_rows, nan_is_missing=nan_is_missing))
    return served.validator.validate(columns, n_rows, nan_is_missing=nan_is_missing)


def served_from_model(model: Model, settings: ServeSettings, *, version: str = "1") -> ServedModel:
    """An already loaded Model as a ServedModel, with a validator under ``settings``' policies."""
    return ServedModel(model=model, version=version, source=model.name,
                       validator=RequestValidator(model, unseen_categories=settings.unseen_categories,
                                                  extra_columns=settings.extra_columns))


class Service:
    """Everything one worker holds: settings, the served model, the batcher, metrics and logs."""

    def __init__(self, settings: ServeSettings, served: ServedModel) -> None:
        self.settings = settings
        self.served = served
        self.batcher = Batcher(max_rows=settings.max_batch_rows, inline_rows=INLINE_ROWS, on_batch=self._on_batch)
        pred = served.model.validation.get("pred")
        buckets = value_buckets(None if pred is None or served.classification else np.asarray(pred).ravel())
        self.metrics = Metrics(value_buckets=buckets)
        self.metrics.set_model(model=served.name, version=served.version, previous=None)
        self.prediction_log: Any = None
        self.live: Any = None  # monitoring/live.py: drift and estimated performance on /metrics
        self.watcher: ModelWatcher | None = None
        self.logs = LogPipe(access=settings.access_log)
        self.on_swap: list[Callable[[ServedModel], None]] = []
        self.short_paths: list[str] = []  # the routes taken the short way (``lanes.py``), said in the start line

    def _on_batch(self, served: ServedModel, rows: int) -> None:
        self.metrics.batch_rows.labels(served.name).observe(rows)

    def swap(self, new: ServedModel) -> None:
        old = self.served
        self.served = new  # one assignment: a request holds the model it started with to its end
        self.metrics.set_model(model=new.name, version=new.version, previous=(old.name, old.version))
        self.metrics.reloads.labels("loaded").inc()
        self.metrics.refused_version(new.name, None)
        self._start_live(new)
        for fn in self.on_swap:
            fn(new)

    def _start_live(self, served: ServedModel) -> None:
        """Live monitoring of the version now served (none for a bundle without a reference sample)."""
        from ..monitoring.live import LiveMonitor

        if self.live is not None:
            self.live.stop(wait=False)
        self.metrics.clear_live()
        self.live = LiveMonitor.for_model(served.model, on_update=lambda snapshot: self.metrics.set_live(
            model=served.name, version=served.version, snapshot=snapshot))
        if self.live is not None:
            self.live.start()

    async def start(self) -> None:
        self.logs.start()
        if self.settings.prediction_log is not None:
            from ..monitoring.prediction_log import PredictionLog

            self.prediction_log = PredictionLog(self.settings.prediction_log)
            self.prediction_log.on_dropped = self.metrics.log_dropped.inc
            self.prediction_log.start()
        self._start_live(self.served)
        from ..tracking.registry import is_model_ref

        if is_model_ref(self.settings.model):
            self.watcher = ModelWatcher(self.settings, get=lambda: self.served, swap=self.swap)
            self.watcher.on_refused = lambda version: self.metrics.refused_version(self.served.name, version)
            self.watcher.on_lookup = lambda problem: self.metrics.registry_lookup(
                self.served.name, None if problem is None else problem.since)
            self.watcher.start()
        server_log.info("serving", extra={"fields": {
            "model": self.served.name, "version": self.served.version, "source": self.served.source,
            "short_paths": self.short_paths}})
        # what is alive now (the model, the libraries) lives as long as the server: keep it out of the garbage
        # collector's full passes, which otherwise walk it all and stall requests (170-190 ms at times, measured)
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        self.batcher.close()
        if self.live is not None:
            self.live.stop()
        if self.prediction_log is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.prediction_log.close)
        server_log.info("stopped", extra={"fields": {"model": self.served.name, "version": self.served.version}})
        self.logs.stop()

    # -- the path every row-taking request takes ------------------------------------------------------------
    async def validate(self, columns: Columns, n_rows: int, *,
                       nan_is_missing: bool = False) -> tuple[ServedModel, Validated]:
        """The model being served now, and the request's rows validated for it (see ``validate_rows``)."""
        served = self.served
        item = await validate_rows(served, columns, n_rows, limit=self.settings.max_batch_rows,
                                   nan_is_missing=nan_is_missing, inline_rows=self.batcher.inline_rows)
        return served, item

    async def predict(self, request: Request, columns: Columns, n_rows: int, *, endpoint: str,
                      nan_is_missing: bool = False) -> tuple[ServedModel, Validated, Prediction]:
        """Validate, predict (batched with other requests), count and log one request's rows."""
        served, item = await self.validate(columns, n_rows, nan_is_missing=nan_is_missing)
        pred = await self.batcher.predict(served, item)
        scope = request.scope
        scope["mlengineer.rows"] = n_rows
        scope["mlengineer.version"] = served.version
        if item.unseen:
            self.metrics.observe_unseen(model=served.name, version=served.version, rows=item.unseen)
        if item.far:
            self.metrics.observe_far(model=served.name, version=served.version, rows=item.far)
        self.metrics.observe_predictions(model=served.name, version=served.version, labels=pred.labels,
                                         raw=pred.raw, classification=served.classification)
        if self.live is not None:
            self.live.observe(item.columns, pred.raw, n_rows)
        if self.prediction_log is not None:
            outputs = {"prediction": pred.labels}
            if served.classification:
                for i, c in enumerate(served.model.classes):
                    outputs[f"proba_{c}"] = pred.raw[:, i]
            if not self.prediction_log.append(columns=item.columns, outputs=outputs, n_rows=n_rows,
                                              request_id=scope.get("mlengineer.request_id", ""), endpoint=endpoint,
                                              model=served.name, version=served.version):
                self.metrics.log_dropped.inc(n_rows)
        return served, item, pred
