"""Monitoring inside the server: drift per input column, prediction drift and the estimated performance over
the most recent rows, for ``/metrics``, so Prometheus can alert without a batch job.

A request only appends references to its validated columns and outputs to a bounded deque (well under a
microsecond); a background thread, every ``every_s`` seconds when new rows came, takes the last
``window_rows`` rows, runs the same tests as ``mlengineer monitor`` against the bundle's reference sample and
hands the numbers to ``on_update`` (the service's Prometheus gauges). Nothing is computed on the request
path.

    MLENGINEER_MONITOR_WINDOW_ROWS   rows compared (default 2,000)
    MLENGINEER_MONITOR_EVERY_S       seconds between refreshes (default 30: about a Prometheus scrape interval;
                                     a refresh of 2,000 rows x 20 columns costs about 50 ms of CPU, so 30 s keeps
                                     it under 20 us per request at 100 requests a second, bench/monitoring.py)
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .columns import Prepared, conformed, prepare
from .drift import compare_column
from .estimate import LossModel, estimable, estimate_classifier
from .reference import Reference, prediction_values, reference_of

__all__ = ["LiveMonitor"]

log = logging.getLogger("mlengineer.monitoring")
MIN_ROWS = 50
LIVE_DRAWS = 50  # outcome draws behind the estimate's interval: enough for a gauge, at a quarter of the cost


class LiveMonitor:
    """Rolling drift scores and the estimated performance of one served model version."""

    def __init__(self, model: Any, reference: Reference, *, window_rows: int | None = None,
                 every_s: float | None = None, on_update: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.model = model
        self.reference = reference
        self.window_rows = window_rows or int(os.environ.get("MLENGINEER_MONITOR_WINDOW_ROWS", "2000"))
        self.every_s = every_s or float(os.environ.get("MLENGINEER_MONITOR_EVERY_S", "30"))
        self.on_update = on_update
        self.metric = estimable(model.task.kind, model.metadata.get("metric"))[0]
        self.latest: dict[str, Any] | None = None
        self.refreshes = 0
        self._chunks: deque[tuple[Mapping[str, Any], np.ndarray, int]] = deque(maxlen=self.window_rows)
        self._new = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loss: LossModel | None = None

    @classmethod
    def for_model(cls, model: Any, **kwargs: Any) -> LiveMonitor | None:
        """A monitor of ``model``, or None (said once in the log) for a bundle without a reference sample."""
        try:
            return cls(model, reference_of(model), **kwargs)
        except Exception as e:  # monitoring must never keep a model from being served
            log.warning("no live monitoring for %s: %s", getattr(model, "name", "model"), str(e)[:300])
            return None

    # -- the request side -----------------------------------------------------------------------------------
    def observe(self, columns: Mapping[str, Any], raw: np.ndarray, n_rows: int) -> None:
        """Keep a reference to one request's validated columns and raw outputs (no copy, no computing)."""
        with self._lock:
            self._chunks.append((columns, raw, n_rows))
            self._new += n_rows

    # -- the background side --------------------------------------------------------------------------------
    def start(self) -> LiveMonitor:
        self._thread = threading.Thread(target=self._run, name="live-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Stop refreshing; ``wait`` for a refresh in progress (not on the event loop: it may take a while)."""
        self._stop.set()
        if self._thread is not None and wait:
            self._thread.join(timeout=30)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            if not self._new:
                continue
            try:
                self.refresh()
            except Exception:  # a failed refresh leaves the last numbers in place; serving goes on
                log.exception("live monitoring could not refresh")

    def _window(self) -> tuple[list[tuple[Mapping[str, Any], np.ndarray, int]], int]:
        with self._lock:
            chunks = list(self._chunks)
            self._new = 0
        taken, rows = [], 0
        for chunk in reversed(chunks):
            if rows >= self.window_rows:
                break
            taken.append(chunk)
            rows += chunk[2]
        return taken[::-1], rows

    def refresh(self) -> dict[str, Any] | None:
        """Compare the most recent rows with the reference now; the numbers (also handed to ``on_update``),
        or None when fewer than ``MIN_ROWS`` rows came."""
        start = time.perf_counter()
        chunks, rows = self._window()
        if rows < MIN_ROWS:
            return None
        ref = self.reference
        frame = _columns(chunks, list(self.model.feature_names))  # images too: the loss model reads them
        columns = {}
        for name, role in ref.roles.items():
            live = prepare(frame[name], role, self.model.schema[name].datetime_format, name=name,
                           categories=ref.columns[name].categories)
            columns[name] = compare_column(ref.columns[name], live)
        raw = np.concatenate([r for _, r, _ in chunks])
        snapshot: dict[str, Any] = {"rows": rows, "columns": {n: _gauge(c) for n, c in columns.items()},
                                    "prediction": _gauge(self._prediction_drift(raw)),
                                    "metric": self.metric, "estimate": self._estimate(frame, raw)}
        ref_est = ref.estimated.get(self.metric)  # the estimator on the reference rows: like with like
        snapshot["reference"] = None if ref_est is None else ref_est.value
        snapshot["seconds"] = time.perf_counter() - start
        self.latest = snapshot
        self.refreshes += 1
        if self.on_update is not None:
            self.on_update(snapshot)
        return snapshot

    def _prediction_drift(self, raw: np.ndarray) -> Any:
        ref = self.reference
        d = None if ref.task == "regression" else ref.decided(raw)
        values, kind = prediction_values(ref.task, raw, d)
        live = Prepared("prediction", "numeric", "numeric", values) if kind == "numeric" else prepare(
            pd.Series(values.astype(np.int64).astype(str)), "categorical", name="prediction",
            categories=ref.predictions.categories)
        return compare_column(ref.predictions, live)

    def _estimate(self, frame: dict[str, pd.Series], raw: np.ndarray) -> dict[str, float] | None:
        ref = self.reference
        if ref.task != "regression":
            d = ref.decided(raw)
            # multiclass: the correctness model reads the encoded window (as the loss model does below), so
            # the gauge is the same estimator as ``ref.estimated`` and the batch monitor
            X = self._encoded(frame) if ref.correctness is not None else None
            e = estimate_classifier(self.metric, ref.for_estimate(raw, d, X), d, draws=LIVE_DRAWS)
        else:
            loss = ref.loss_model()
            if loss is None:
                return None
            e = loss.estimate(self.metric, loss.expected_error(self._encoded(frame), raw), raw)
        return {"value": e.value, "low": e.low, "high": e.high}

    def _encoded(self, frame: dict[str, pd.Series]) -> np.ndarray:
        rows = pd.DataFrame({n: frame[n] for n in self.model.feature_names})
        return np.asarray(self.model.encoder.transform(conformed(self.model, rows)))


def _columns(chunks: list[tuple[Mapping[str, Any], np.ndarray, int]], names: list[str]) -> dict[str, pd.Series]:
    """The requests' columns joined: validated columns are float arrays (numbers, booleans) or lists (the
    rest), the same kind in every request."""
    requests = [columns for columns, _, _ in chunks]
    out = {}
    for n in names:
        p = [columns[n] for columns in requests]
        if isinstance(p[0], np.ndarray) and p[0].dtype.kind == "f":
            out[n] = pd.Series(np.concatenate(p))
        else:
            out[n] = pd.Series(list(itertools.chain.from_iterable(p)), dtype=object)
    return out


def _gauge(c: Any) -> dict[str, Any]:
    return {"test": c.test, "statistic": c.statistic, "measure": c.measure, "p_value": c.p_value,
            "distance": c.distance, "threshold": c.threshold, "drifted": bool(c.drifted),
            "missing": float(c.missing_current), "missing_training": float(c.missing_reference)}
