"""Prometheus metrics of the service, served at ``/metrics``.

With several worker processes, prometheus-client's multiprocess mode is on (the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` before starting them), so any worker answers ``/metrics`` for all of them.

    mlengineer_requests_total{endpoint,method,status}        requests answered
    mlengineer_request_duration_seconds{endpoint}            latency histogram
    mlengineer_request_errors_total{endpoint,reason}         4xx/5xx answers by reason
    mlengineer_predicted_rows_total{model,version}           rows predicted
    mlengineer_batch_rows{model}                             rows per call of the model (requests batched together)
    mlengineer_predicted_class_total{model,version,label}    classifiers: predicted labels
    mlengineer_prediction_confidence{model,version}          classifiers: probability of the predicted label
    mlengineer_prediction_value{model,version}               regressors: predicted values (buckets from validation)
    mlengineer_unseen_categories_total{model,version,column}  requests with a category the model never saw
    mlengineer_unseen_category_rows_total{model,version,column}  rows holding one: over predicted_rows_total,
                                                             the share of rows ``mlengineer monitor`` reports
    mlengineer_far_values_total{model,version,column}        rows holding a number far outside the column's
                                                             training range (what the answer's warnings say)
    mlengineer_model_info{model,version}                     1 for the version being served
    mlengineer_model_reloads_total{outcome}                  registry versions loaded (or failed)
    mlengineer_model_refused{model,version}                  1 for a version the alias names that the server
                                                             refused (it serves mlengineer_model_info's)
    mlengineer_registry_lookup_failing{model}                with a registry alias followed: 1 while the
                                                             server's look-ups of it fail (the registry out of
                                                             reach, or the alias naming nothing), 0 while they work
    mlengineer_registry_lookup_failing_since_seconds{model}  when those failures began (Unix time), while they last
    mlengineer_prediction_log_dropped_rows_total             rows the prediction log could not keep up with
    mlengineer_drift_score{model,version,column,test,measure}  live monitoring: the statistic that decides a
                                                             column's drift; ``measure`` says what it is
                                                             (p_value: smaller is worse; distance, roc_auc: larger)
    mlengineer_drift_p_value{model,version,column}           the column's test p-value, wherever one is computed
    mlengineer_drift_distance{model,version,column}          numbers: Wasserstein distance over the training SD,
                                                             whichever test decides (one unit to alert on)
    mlengineer_drift_detected{model,version,column}          1 when the column drifted over the recent rows
    mlengineer_estimated_performance{model,version,metric,bound}  the metric estimated without outcomes
    mlengineer_monitor_window_rows{model,version}            recent rows those gauges compare
    mlengineer_missing_share{model,version,column,rows}      share of an input's values missing over the recent
                                                             rows (rows="recent") and in training ("training"):
                                                             a feed gone dead shows here, not as drift alone

The gauges of a version no longer served (``model_info``, ``model_refused``, the live-monitoring gauges) are
removed. With several workers prometheus-client cannot remove a gauge's value from its files, so it is set
to NaN there and left out of the page: after a swap, only the version served shows, whichever worker answers.
With several workers each worker's gauges carry its ``pid`` label, except ``model_refused`` and the
``registry_lookup_*`` gauges: a refusal and a registry out of reach are the server's, so they read one series
as with one worker (1 while any live worker refuses the version, or fails to look the alias up; failing since
the earliest of those failures).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384)
_CONFIDENCE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def value_buckets(pred: np.ndarray | None) -> tuple[float, ...]:
    """Histogram buckets for predicted values: deciles of the validation predictions, so the distribution
    of live predictions can be compared with the one at training."""
    if pred is None or len(pred) < 10:
        return (0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
    edges = np.unique(np.quantile(np.asarray(pred, dtype=float), np.linspace(0.05, 0.95, 10)))
    return tuple(float(f"{e:.6g}") for e in edges)


class Metrics:
    """The service's metrics; ``render()`` is the body of ``GET /metrics``."""

    def __init__(self, *, value_buckets: tuple[float, ...] = value_buckets(None)) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        disable_created_metrics()  # the *_created series double the page and say nothing a scraper needs
        # one registry per app, so apps made in one process (tests) do not collide
        reg = None if self.multiprocess else CollectorRegistry()
        self.registry = reg
        kw: dict[str, Any] = {"registry": reg}
        self.requests = Counter("mlengineer_requests", "Requests answered.", ["endpoint", "method", "status"], **kw)
        self.latency = Histogram("mlengineer_request_duration_seconds", "Seconds from request to answer.",
                                 ["endpoint"], buckets=_LATENCY, **kw)
        self.errors = Counter("mlengineer_request_errors", "Error answers by reason.", ["endpoint", "reason"], **kw)
        self.rows = Counter("mlengineer_predicted_rows", "Rows predicted.", ["model", "version"], **kw)
        self.batch_rows = Histogram("mlengineer_batch_rows", "Rows per call of the model.", ["model"],
                                    buckets=_ROWS, **kw)
        self.classes = Counter("mlengineer_predicted_class", "Predicted labels.", ["model", "version", "label"], **kw)
        self.confidence = Histogram("mlengineer_prediction_confidence", "Probability of the predicted label.",
                                    ["model", "version"], buckets=_CONFIDENCE, **kw)
        self.values = Histogram("mlengineer_prediction_value", "Predicted values.", ["model", "version"],
                                buckets=value_buckets, **kw)
        self.unseen = Counter("mlengineer_unseen_categories", "Requests with a category the model never saw.",
                              ["model", "version", "column"], **kw)
        self.unseen_rows = Counter("mlengineer_unseen_category_rows", "Rows holding a category the model never saw "
                                   "(over mlengineer_predicted_rows_total: the share of rows).",
                                   ["model", "version", "column"], **kw)
        self.far = Counter("mlengineer_far_values", "Rows holding a number far outside the column's training range "
                           "(beyond its min or max by more than their distance).", ["model", "version", "column"], **kw)
        gauge_kw = {**kw, "multiprocess_mode": "liveall"} if self.multiprocess else kw
        self.model_info = Gauge("mlengineer_model_info", "1 for the model version being served.",
                                ["model", "version"], **gauge_kw)
        self.reloads = Counter("mlengineer_model_reloads", "Registry versions loaded, by outcome.", ["outcome"], **kw)
        self._refused: tuple[str, str] | None = None
        self.refused = Gauge("mlengineer_model_refused", "1 for the version the alias names that the server refused "
                             "to swap in (it keeps serving the version of mlengineer_model_info).",
                             ["model", "version"], **gauge_kw)
        self.lookup_failing = Gauge("mlengineer_registry_lookup_failing", "1 while the server's look-ups of its "
                                    "registry alias fail (the registry out of reach, or the alias naming nothing), "
                                    "0 while they work.", ["model"], **gauge_kw)
        self.lookup_since = Gauge("mlengineer_registry_lookup_failing_since_seconds", "When the failing look-ups of "
                                  "the registry alias began (Unix time); shown while they fail.", ["model"], **gauge_kw)
        self._since_shown: tuple[str] | None = None
        self.log_dropped = Counter("mlengineer_prediction_log_dropped_rows",
                                   "Rows the prediction log dropped because the disk could not keep up.", **kw)
        # live monitoring (monitoring/live.py): the latest window of served rows against the training rows
        self.drift_score = Gauge("mlengineer_drift_score", "The statistic that decides an input column's (or the "
                                 "prediction's) drift over the recent rows; measure says what it is (p_value: smaller "
                                 "is worse; distance, roc_auc: larger is worse).",
                                 ["model", "version", "column", "test", "measure"], **gauge_kw)
        self.drift_p = Gauge("mlengineer_drift_p_value", "P-value of the drift test of an input column (or the "
                             "prediction) over the recent rows, where one is computed.",
                             ["model", "version", "column"], **gauge_kw)
        self.drift_distance = Gauge("mlengineer_drift_distance", "Wasserstein distance over the training SD between "
                                    "the recent and the training values of a numeric column (or the prediction).",
                                    ["model", "version", "column"], **gauge_kw)
        self.drift_detected = Gauge("mlengineer_drift_detected", "1 when the column (or the prediction) drifted over the "
                                    "recent rows.", ["model", "version", "column"], **gauge_kw)
        self.estimated = Gauge("mlengineer_estimated_performance", "The metric estimated on the recent rows without "
                               "outcomes (estimate, low, high) and on the reference rows.",
                               ["model", "version", "metric", "bound"], **gauge_kw)
        self.monitor_rows = Gauge("mlengineer_monitor_window_rows", "Recent rows the drift gauges compare.",
                                  ["model", "version"], **gauge_kw)
        self.missing = Gauge("mlengineer_missing_share", "Share of an input column's values missing over the recent "
                             "rows (rows=recent) and in training (rows=training).",
                             ["model", "version", "column", "rows"], **gauge_kw)
        self._serving: tuple[str, str] | None = None  # the version set_model last made the served one
        self._live: set[tuple[Any, tuple[str, ...]]] = set()  # the live gauges' label sets now shown
        self._live_lock = threading.Lock()  # the monitor's thread sets them; a swap retires them

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: prometheus-client takes a lock and builds a key each call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_predictions(self, *, model: str, version: str, labels: np.ndarray, raw: np.ndarray,
                            classification: bool) -> None:
        self.child(self.rows, model, version).inc(len(labels))
        if classification:
            counts: dict[str, int] = {}
            for v in labels.tolist():
                k = str(v)
                counts[k] = counts.get(k, 0) + 1
            for k, c in counts.items():
                self.child(self.classes, model, version, k).inc(c)
            hist = self.child(self.confidence, model, version)
            for p in raw.max(axis=1).tolist():
                hist.observe(p)
        else:
            hist = self.child(self.values, model, version)
            for v in np.asarray(labels, dtype=float).tolist():
                if v == v:
                    hist.observe(v)

    def observe_unseen(self, *, model: str, version: str, rows: Mapping[str, int]) -> None:
        """One request's categories the model never saw: ``rows`` holding one, per column."""
        for column, n in rows.items():
            self.child(self.unseen, model, version, column).inc()
            self.child(self.unseen_rows, model, version, column).inc(n)

    def observe_far(self, *, model: str, version: str, rows: Mapping[str, int]) -> None:
        """One request's numbers far outside the training range: ``rows`` holding one, per column."""
        for column, n in rows.items():
            self.child(self.far, model, version, column).inc(n)

    def set_live(self, *, model: str, version: str, snapshot: dict[str, Any]) -> None:
        """The gauges of one live-monitoring refresh (called from its thread); a refresh of a version no longer
        served (its monitor was stopping when the swap came) is dropped."""
        with self._live_lock:
            if (model, version) != self._serving:
                return
            for gauge, labels, value in _live_values(model, version, snapshot, self):
                gauge.labels(*labels).set(value)
                self._live.add((gauge, labels))

    def refused_version(self, model: str, version: str | None) -> None:
        """A version the server refused (counted, and shown until it swaps or the alias comes back), or None."""
        if self._refused is not None:
            self._retire(self.refused, self._refused)
        self._refused = None if version is None else (model, version)
        if version is not None:
            self.reloads.labels("refused").inc()
            self.refused.labels(model, version).set(1.0)

    def registry_lookup(self, model: str, since: float | None) -> None:
        """Look-ups of the registry alias that fail since ``since`` (``time.time()``), or that work (None)."""
        self.lookup_failing.labels(model).set(0.0 if since is None else 1.0)
        if self._since_shown is not None and since is None:
            self._retire(self.lookup_since, self._since_shown)
        self._since_shown = None if since is None else (model,)
        if since is not None:
            self.lookup_since.labels(model).set(since)

    def clear_live(self) -> None:
        """Forget the gauges of a version no longer served."""
        with self._live_lock:
            for gauge, labels in self._live:
                self._retire(gauge, labels)
            self._live.clear()

    def set_model(self, *, model: str, version: str, previous: tuple[str, str] | None) -> None:
        self._children.clear()  # children of the old version's labels are not needed any more
        self._serving = (model, version)
        if previous is not None and previous != self._serving:
            self._retire(self.model_info, previous)
        self.model_info.labels(model, version).set(1)

    def _retire(self, gauge: Any, labels: tuple[str, ...]) -> None:
        """A gauge's series gone from the page. prometheus-client's multiprocess files keep a value through
        ``remove``: there it is set to NaN, which ``render`` leaves out."""
        if self.multiprocess:
            gauge.labels(*labels).set(float("nan"))
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)

    def render(self) -> bytes:
        if self.multiprocess:
            from prometheus_client import multiprocess

            reg = CollectorRegistry()
            reg.register(_Shown(multiprocess.MultiProcessCollector(None)))
            return generate_latest(reg)
        assert self.registry is not None
        return generate_latest(self.registry)


def _live_values(model: str, version: str, snapshot: dict[str, Any], m: Metrics) -> Iterator[tuple[Any, tuple[str, ...], float]]:
    """(gauge, labels, value) for each live-monitoring gauge a refresh sets."""
    columns = {**snapshot["columns"], "(prediction)": snapshot["prediction"]}
    for column, g in columns.items():
        if g["statistic"] is not None:
            measure = g["measure"].replace("-", "_").replace(" ", "_").lower()
            yield m.drift_score, (model, version, column, g["test"], measure), g["statistic"]
        if g.get("p_value") is not None:
            yield m.drift_p, (model, version, column), g["p_value"]
        if g.get("distance") is not None:
            yield m.drift_distance, (model, version, column), g["distance"]
        yield m.drift_detected, (model, version, column), 1.0 if g["drifted"] else 0.0
    for column, g in snapshot["columns"].items():
        yield m.missing, (model, version, column, "recent"), g["missing"]
        yield m.missing, (model, version, column, "training"), g["missing_training"]
    est = snapshot.get("estimate")
    for bound in ("value", "low", "high"):
        if est is not None and est[bound] == est[bound]:
            yield m.estimated, (model, version, snapshot["metric"], bound), est[bound]
    if snapshot.get("reference") is not None:
        yield m.estimated, (model, version, snapshot["metric"], "reference"), snapshot["reference"]
    yield m.monitor_rows, (model, version), snapshot["rows"]


#: gauges that speak for the server, not for one worker: one series per label set, as one worker shows it,
#: holding the largest (or the smallest: the earliest time) value the live workers hold
_SERVER_WIDE = {"mlengineer_model_refused": max, "mlengineer_registry_lookup_failing": max,
                "mlengineer_registry_lookup_failing_since_seconds": min}


class _Shown:
    """The workers' metrics less the gauge series set to NaN: those of versions no longer served. A refused
    version, a registry out of reach, are the server's answer, whichever worker looked: their series are one,
    as without workers (see ``_SERVER_WIDE``), not one per worker's pid."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        for metric in self.source.collect():
            if metric.type == "gauge":
                metric.samples = [s for s in metric.samples if s.value == s.value]
                if metric.name in _SERVER_WIDE:
                    metric.samples = _one_per_label_set(metric.samples, _SERVER_WIDE[metric.name])
            yield metric


def _one_per_label_set(samples: list[Any], pick: Callable[[float, float], float]) -> list[Any]:
    """The samples with their ``pid`` label dropped, one per remaining label set (the value ``pick`` picks)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    for s in samples:
        labels = {k: v for k, v in s.labels.items() if k != "pid"}
        key = (s.name, tuple(sorted(labels.items())))
        if key not in out or pick(s.value, out[key].value) != out[key].value:
            out[key] = s._replace(labels=labels)
    return list(out.values())
