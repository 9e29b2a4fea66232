"""One monitoring pass: live rows against the bundle's reference, overall and window by window.

    >>> live = from_log(model, "logs/")                  # doctest: +SKIP
    >>> result = monitor(model, live, window="1d")      # doctest: +SKIP
    >>> result["alarms"], result["summary"]              # doctest: +SKIP

The result is plain JSON-ready data (``mlengineer monitor --json`` prints it; the HTML report and the
terminal table read it): per-column drift, prediction drift, data quality, estimated performance (and
realised performance where outcomes are known), the alarms and a summary in plain words.

Alarms: ``drift`` when the dataset-level rule of ``drift.dataset_verdict`` fires on all rows; ``performance``
when the headline metric (the model's own, when it can be estimated) is worse than on the reference rows by
more than a tolerance (1 point for scores between 0 and 1, 5% for errors) and beyond chance (a one-sided 97.5%
test of the change, ``change.py``; the other metrics' changes are only said, ``also_worse``), or when
the outcomes show it worse than its own estimate for the same rows (concept drift: the inputs promised
better; unless inputs went missing far more often than in training and the rows that hold them keep the
promise: then ``missing_inputs`` names them, a data problem). Realised metrics decide when at least ``MIN_LABELLED`` rows have outcomes; until then the estimate
does, compared with the same estimator on the reference rows, so its own bias cancels. ``relation`` when, with
outcomes and no input drifted, an input's bearing on the outcome changed (``relation.py``: concept drift
column by column, seen even where the model leans on other columns and its metric holds).
Picture columns are left out of every test (``unmonitored``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import get_metric
from .columns import Prepared, conformed, prepare, unmonitored
from .current import Current
from .drift import ColumnDrift, compare_column, dataset_verdict
from .estimate import Estimate, estimable, estimate_classifier, realised, scorer
from .quality import check_quality
from .reference import Reference, prediction_values, reference_of
from .windows import parse_window, split_windows, untimed

__all__ = ["MIN_LABELLED", "MIN_ROWS", "monitor"]

MIN_ROWS = 30  # a window with fewer live rows is listed, not tested
MIN_LABELLED = 30
ESTIMATE_ROWS = 100_000  # regression estimates encode at most this many rows (a random sample beyond)
MOVED_SHARE = 0.05  # drifted inputs holding this share of the model's attention suspend the relation tests


def monitor(model: Any, current: Current, *, window: str | pd.Timedelta | None = None, by_version: bool = False,
            reference: Reference | None = None, seed: int = 0, weights: bool = True,
            registered: tuple[str, str] | None = None) -> dict[str, Any]:
    """Monitor ``current`` (live rows with the model's predictions) against ``model``'s reference. Realised
    metrics count each labelled row by the model's weight column where the rows (or their outcomes) hold it,
    as ``evaluate`` does (``weights=False``: each row once). ``registered``: the registry's name and version of
    the model, when a ``models:/`` reference named it; the result's ``model`` names it so (``bundle``: the
    bundle's own name, its training folder's).

    Each window has ``start`` and ``end``, its bounds (``end`` excluded; None for a version's window without
    ``--window``, which has no time bounds), and ``first_row``/``last_row``, the times of its first and last rows."""
    ref = reference or reference_of(model)
    if len(current) < MIN_ROWS:
        raise DataError(f"{current.source} has {len(current)} rows: monitoring needs at least {MIN_ROWS}.")
    length = parse_window(window) if isinstance(window, str) else window
    if length is not None and current.times is None:
        raise DataError("--window needs times: monitor a prediction log, or pass --time-column.")
    cols = {c: prepare(current.frame[c], role, _fmt(model, c), name=c, categories=ref.columns[c].categories)
            for c, role in ref.roles.items()}
    ctx = _Context(model, ref, current, cols, seed)
    ctx.w, ctx.weighted_by = _live_weights(model, current, weights=weights)
    overall = ctx.assess(np.arange(len(current)), plots=True)
    overall["quality"] = check_quality(model, ref.columns, cols, unknown_columns=current.unknown_columns)
    overall["relation"] = _relation(ref, cols, current, overall["drift"])
    windows = []
    for w in split_windows(current.times, current.versions, window=length, by_version=by_version):
        part = ctx.assess(w.rows, plots=False) if len(w.rows) >= MIN_ROWS else {"rows": int(len(w.rows)),
                                                                                  "tested": False}
        windows.append({"label": w.label, "version": w.version, "start": _iso(w.start), "end": _iso(w.end),
                        **_row_span(current, w.rows), **part})
    name, version = registered or (model.name, None)
    result = {
        "model": {"name": name, "version": version, "bundle": model.name, "task": model.task.kind,
                  "target": model.target, "metric": model.metadata.get("metric"), "path": str(model.path or "")},
        "reference": {"rows": int(len(ref.drift_rows)), "scored_rows": int(len(ref.scored)),
                      "performance": {k: v.to_dict() for k, v in ref.performance.items()}},
        "current": {"source": current.source, "rows": int(len(current)), "labelled": int(current.labelled.sum()),
                    "labels": current.labels_source, "start": _iso(_tmin(current)), "end": _iso(_tmax(current)),
                    "versions": sorted(map(str, current.versions.unique())) if current.versions is not None else [],
                    "untimed": untimed(current.times) if length is not None else 0, "notes": list(current.notes)},
        **overall, "windows": windows,
        "unmonitored": unmonitored(model),
    }
    result["alarms"] = {"drift": bool(overall["drift"]["verdict"]["alarm"]),
                        "performance": bool(overall["performance"].get("alarm")),
                        "relation": bool(overall["relation"]["changed"])}
    from .words import summary_sentences

    result["summary"] = summary_sentences(result, importance=model.metadata.get("feature_importance") or {},
                                          min_rows=MIN_ROWS)
    return result


class _Context:
    """What every window's assessment shares: the prepared columns, decisions and expected errors."""

    def __init__(self, model: Any, ref: Reference, current: Current, cols: dict[str, Prepared], seed: int) -> None:
        self.model, self.ref, self.current, self.cols, self.seed = model, ref, current, cols, seed
        self.task = model.task.kind
        self.raw = current.raw
        self.d = None if self.task == "regression" else ref.decided(self.raw)
        self.est_raw = self.raw if self.d is None else self._for_estimate()  # what CBPE reads
        values, kind = prediction_values(self.task, self.raw, self.d)
        self.pred_col = Prepared("prediction", kind, kind, values) if kind == "numeric" else prepare(
            pd.Series(values.astype(np.int64).astype(str)), "categorical", name="prediction",
            categories=ref.predictions.categories)
        self.metrics = estimable(self.task, model.metadata.get("metric"))
        self.expected_error, self.sampled = self._expected_errors()
        self.w: np.ndarray | None = None  # each row's weight where its outcome is known (``_live_weights``)
        self.weighted_by: str | None = None

    def _for_estimate(self) -> np.ndarray:
        """Classifiers: the live probabilities as CBPE reads them; a multiclass correctness model reads the
        encoded inputs too, encoded ``ESTIMATE_ROWS`` at a time so a large log never sits encoded whole."""
        assert self.d is not None
        if self.ref.correctness is None:
            return self.ref.for_estimate(self.raw, self.d)
        out = np.empty_like(self.raw, dtype=np.float64)
        for start in range(0, len(self.current), ESTIMATE_ROWS):
            rows = slice(start, start + ESTIMATE_ROWS)
            X = self.model.encoder.transform(conformed(self.model, self.current.frame.iloc[rows]))
            out[rows] = self.ref.for_estimate(self.raw[rows], self.d[rows], X)
        return out

    def _expected_errors(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Regression: each live row's expected error size (on a random sample of rows for large data)."""
        loss = self.ref.loss_model()
        if loss is None:
            return None, None
        n = len(self.current)
        rows = np.arange(n) if n <= ESTIMATE_ROWS else np.sort(
            np.random.default_rng(self.seed).choice(n, ESTIMATE_ROWS, replace=False))
        X = self.model.encoder.transform(conformed(self.model, self.current.frame.iloc[rows]))
        full = np.full(n, np.nan)
        full[rows] = loss.expected_error(X, self.raw[rows])
        return full, rows

    def assess(self, rows: np.ndarray, *, plots: bool) -> dict[str, Any]:
        """Drift, prediction drift and performance of the live rows ``rows``."""
        columns = [compare_column(self.ref.columns[c], col.take(rows), seed=self.seed) for c, col in self.cols.items()]
        pred = compare_column(self.ref.predictions, self.pred_col.take(rows), seed=self.seed)
        verdict = dataset_verdict(columns, importance=self.model.metadata.get("feature_importance"), prediction=pred)
        out: dict[str, Any] = {
            "rows": int(len(rows)), "tested": True,
            "drift": {"columns": [_drop_plot(c, plots) for c in columns], "prediction": _drop_plot(pred, plots),
                      "verdict": verdict},
            "performance": self.performance(rows, missing=self._missing_inputs(columns)),
        }
        return out

    def _estimate(self, name: str, rows: np.ndarray) -> Estimate | None:
        if self.task != "regression":
            assert self.d is not None
            return estimate_classifier(name, self.est_raw[rows], self.d[rows], seed=self.seed)
        loss = self.ref.loss_model()
        if loss is None or self.expected_error is None:
            return None
        m = self.expected_error[rows]
        known = ~np.isnan(m)
        if not known.any():
            return None
        return loss.estimate(name, m[known], self.raw[rows][known], rows=len(rows), seed=self.seed)

    def _realised(self, name: str, rows: np.ndarray, *, weighted: bool = False) -> Estimate:
        assert self.current.y is not None
        y = self.current.y[rows].astype(np.int64) if self.task != "regression" else self.current.y[rows]
        w = self.w[rows] if weighted and self.w is not None else None
        return realised(name, y, self.raw[rows], d=None if self.d is None else self.d[rows], seed=self.seed, weights=w)

    def performance(self, rows: np.ndarray, *, missing: list[str] | None = None) -> dict[str, Any]:
        """Each metric: reference, estimate, realised (where outcomes are known) and the estimate's error.
        ``missing``: inputs whose missing share rose (``_missing_inputs``), which may explain outcomes worse
        than the estimate."""
        y = self.current.y
        labelled = rows[~np.isnan(y[rows])] if y is not None else rows[:0]
        metrics: dict[str, Any] = {}
        for name in self.metrics:
            est = self._estimate(name, rows)
            entry: dict[str, Any] = {"estimated": est.to_dict() if est else None, "realised": None, "error": None,
                                     "reference": _dict(self.ref.performance.get(name)),
                                     "reference_estimated": _dict(self.ref.estimated.get(name))}
            if len(labelled) >= MIN_LABELLED:
                real = self._realised(name, labelled)  # every row once: like for like with the estimate
                on_same = self._estimate(name, labelled)
                entry["realised"] = real.to_dict()
                if self._weighs(labelled):  # what the user reads, as evaluate counts it; alarms stay like for like
                    entry["realised_every_row"] = entry["realised"]
                    entry["realised"] = self._realised(name, labelled, weighted=True).to_dict()
                if on_same is not None:
                    entry["estimated_on_labelled"] = on_same.to_dict()
                    entry["error"] = on_same.value - real.value
                    entry["against_estimate"] = self._gap(name, labelled)
                if entry["reference"] is not None:
                    entry["change_from_reference"] = self._change(name, labelled)
            metrics[name] = entry
        head = self.metrics[0]
        alarm = {**_performance_alarm(self.task, head, _every_row(metrics[head])), "missing_inputs": []}
        # the other metrics' changes are said, not alarmed on: one test decides, so chance fires it no more often
        alarm["also_worse"] = [] if alarm["against_reference"] else [
            name for name in self.metrics[1:] if _performance_alarm(self.task, name, _every_row(metrics[name]))[
                "against_reference"]]
        if alarm["concept_drift"] and missing and not self._gap_holds(head, labelled, missing, metrics[head]):
            # the gap is the missing values': the model answers those rows from values it never learnt from,
            # and the estimate trusts those answers; a data problem. The alarm stays: the answers are worse
            alarm.update(concept_drift=False, missing_inputs=missing)
        return {"metrics": metrics, "headline": head, "labelled": int(len(labelled)),
                "weighted_by": self.weighted_by if "realised_every_row" in metrics[head] else None, **alarm}

    def _gap(self, name: str, rows: np.ndarray) -> dict[str, Any] | None:
        """The outcomes of the labelled ``rows`` against the estimate for the same rows, every row counted once
        as the estimate counts them, both resampled together (``change.estimate_gap``)."""
        from .change import calibration_se, estimate_gap, promised_scorer

        assert self.current.y is not None
        loss = self.ref.loss_model() if self.task == "regression" else None
        if loss is not None:
            assert self.expected_error is not None
            rows = rows[~np.isnan(self.expected_error[rows])]
            promised = promised_scorer(name, loss=loss, m=self.expected_error[rows], pred=self.raw[rows])
        else:
            assert self.d is not None
            promised = promised_scorer(name, proba=self.est_raw[rows], d=self.d[rows])
        if len(rows) < MIN_LABELLED:
            return None
        higher = get_metric(name, self.task).greater_is_better
        value = promised(np.arange(len(rows)))
        est = None if loss is not None else self._estimate(name, rows)  # CBPE: the realised value's own null
        chance = None if est is None else max(est.value - est.low if higher else est.high - est.value, 0.0)
        y = self.current.y[rows] if self.task == "regression" else self.current.y[rows].astype(np.int64)
        real = scorer(name, y, self.raw[rows], d=None if self.d is None else self.d[rows])
        spread = calibration_se(name, value, loss=loss, reference=self.ref.performance.get(name))
        return estimate_gap(real, promised, len(rows), higher=higher, tolerance=_tolerance(higher, value),
                            spread=spread, full=loss is not None, chance=chance, seed=self.seed)

    def _change(self, name: str, labelled: np.ndarray) -> dict[str, Any] | None:
        """The change of ``name`` from the reference rows to the live rows ``labelled``, both realised, every
        row counted once (``change.realised_change``)."""
        from .change import realised_change

        assert self.current.y is not None
        y = self.current.y[labelled]
        now = (y if self.task == "regression" else y.astype(np.int64), self.raw[labelled],
               None if self.d is None else self.d[labelled])
        ref_d = None if self.task == "regression" else self.ref.decided(self.ref.raw)
        before = (self.ref.y if self.task != "regression" else self.ref.y.astype(np.float64), self.ref.raw, ref_d)
        higher = get_metric(name, self.task).greater_is_better
        return realised_change(name, now, before, higher=higher, seed=self.seed)

    def _weighs(self, rows: np.ndarray) -> bool:
        """Whether the realised metrics of ``rows`` count them by their weights: there are weights, and these
        rows' (a window's, a version's) do not all weigh 0."""
        return self.w is not None and bool(np.nansum(self.w[rows]) > 0)

    def _missing_inputs(self, columns: list[ColumnDrift]) -> list[str]:
        """Inputs whose missing share rose beyond chance, each carrying at least ``MOVED_SHARE`` of the model's
        attention (any, when the bundle records none)."""
        rose = [c.column for c in columns if c.missing_drifted and c.missing_current > c.missing_reference]
        importance = self.model.metadata.get("feature_importance") or {}
        return [c for c in rose if not importance or _attention(importance, [c]) >= MOVED_SHARE]

    def _gap_holds(self, name: str, labelled: np.ndarray, missing: list[str], entry: dict[str, Any]) -> bool:
        """Whether the outcomes still fall below the estimate on the labelled rows where every input of
        ``missing`` is present: concept drift there too. False with fewer than ``MIN_LABELLED`` such rows."""
        gone = np.zeros(len(labelled), dtype=bool)
        for c in missing:
            gone |= self.cols[c].missing[labelled]
        rows = labelled[~gone]
        est = self._estimate(name, rows) if len(rows) >= MIN_LABELLED else None
        if est is None:
            return False
        check = {**entry, "estimated": None, "reference_estimated": None, "estimated_on_labelled": est.to_dict(),
                 "realised": self._realised(name, rows).to_dict(), "against_estimate": self._gap(name, rows)}
        return bool(_performance_alarm(self.task, name, check)["concept_drift"])


def _relation(ref: Reference, cols: dict[str, Prepared], current: Current, drift: dict[str, Any]) -> dict[str, Any]:
    """Each input's relation to the outcome, reference against the live rows whose outcomes are known
    (``relation.py``); not tested (``tested`` False, ``why``) without ``MIN_LABELLED`` of them, or when an
    input drifted (a shift of one input changes the outcome given any input correlated with it)."""
    from .relation import relation_changes

    live = current.labelled
    known = ~np.isnan(ref.drift_y)
    out: dict[str, Any] = {"tested": False, "why": None, "labelled": int(live.sum()), "columns": [], "changed": []}
    importance = ref.model.metadata.get("feature_importance") or {}
    moved = [c["column"] for c in drift["columns"] if c["drifted"]]
    if live.sum() < MIN_LABELLED or known.sum() < MIN_LABELLED or current.y is None:
        out["why"] = f"fewer than {MIN_LABELLED} rows with known outcomes"
        return out
    # a drifted input the model hardly looks at bears little on the outcome, so it cannot move the outcome
    # given another input much (one stray flag among 78 columns must not silence the test)
    share = _attention(importance, moved)
    if share >= MOVED_SHARE:
        out["why"] = (f"inputs drifted ({', '.join(moved[:3])}{', ...' if len(moved) > 3 else ''}; {share:.0%} of "
                      "the model's attention), which alone changes the outcome given any correlated input")
        return out
    tests = relation_changes({c: p.take(known) for c, p in ref.columns.items()}, ref.drift_y[known],
                             {c: p.take(live) for c, p in cols.items()}, current.y[live], task=ref.task,
                             importance=importance)
    out.update(tested=True, columns=[t.to_dict() for t in tests], changed=[t.column for t in tests if t.changed])
    return out


def _live_weights(model: Any, current: Current, *, weights: bool) -> tuple[np.ndarray | None, str | None]:
    """Each row's weight where its outcome is known (NaN elsewhere) and the column's name, or (None, None):
    no weight column, rows that do not hold it, or ``weights`` False. Bad weights are one DataError."""
    from ..evaluation.evaluate import labelled_weights

    column = model.metadata.get("weight_column")
    if not weights or not column or current.weights is None or current.y is None:
        return None, None
    known = current.labelled
    w, named = labelled_weights(model, pd.DataFrame({column: current.weights}), pd.Series(known), weights=True)
    if w is None:
        return None, None
    full = np.full(len(current), np.nan)
    full[known] = w
    return full, named


def _every_row(entry: dict[str, Any]) -> dict[str, Any]:
    """A metric's entry with the realised value counting every row once, as the estimate and reference do."""
    return {**entry, "realised": entry.get("realised_every_row") or entry["realised"]}


def _attention(importance: dict[str, Any], columns: list[str]) -> float:
    """The share of the model's attention ``columns`` carry (1 for any column when none is recorded)."""
    total = sum(max(float(v), 0.0) for v in importance.values())
    return sum(max(float(importance.get(c, 0.0)), 0.0) for c in columns) / total if total > 0 else float(bool(columns))


def _performance_alarm(task: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Whether the headline metric fell, in either of two ways (each beyond the tolerance: 1 point for
    scores, 5% for errors):

    - against the reference rows: realised against the reference's realised value when outcomes are known,
      else the estimate against the estimator's value on the reference rows; both sides are samples (the
      reference may hold a few hundred rows), so the change itself must be worse beyond chance, one-sided at
      the 97.5% level (``change.py``: a bootstrap of both sets of rows, or from both estimates' intervals);
    - against its own estimate (concept drift): with outcomes, worse than the estimate for those same rows
      (what the inputs promised if their relation to the outcome held) by more than the tolerance, beyond
      chance, one-sided at 97.5% (``against_estimate``, ``change.estimate_gap``: a regressor's two resampled
      together, a classifier's from CBPE's interval; the estimate's error from its reference rows added: a
      regressor's in full, one offset all of this model's batches share). Measured on regression batches of 100
      rows drawn like training: 38 of 300 alarmed when neither the estimate's own noise nor that error was
      counted; 10 of 300 with it in quadrature (a reference whose estimate is 5% low); 3 of 300 in full.
    """
    higher = get_metric(name, task).greater_is_better
    out: dict[str, Any] = {"alarm": False, "basis": None, "change": None, "against_reference": False,
                           "concept_drift": False}
    basis, now, ref = "realised", entry["realised"], entry["reference"]
    if now is None:
        basis, now, ref = "estimated", entry["estimated"], entry["reference_estimated"] or entry["reference"]
    if now is not None and ref is not None:
        from .change import estimated_change

        change = now["value"] - ref["value"]
        worse = -change if higher else change
        tolerance = _tolerance(higher, ref["value"])
        test = (entry.get("change_from_reference") if basis == "realised" else None) or estimated_change(
            now, ref, higher=higher)
        fell = bool(worse > tolerance and test["bound"] > 0)
        out.update(alarm=fell, against_reference=fell, basis=basis, change=float(change),
                   relative_change=float(change / ref["value"]) if ref["value"] else None, tolerance=tolerance,
                   margin=float(worse - test["bound"]), p_value=test["p_value"], test=test["method"],
                   beyond_chance=bool(test["bound"] > 0))
    test = entry.get("against_estimate")
    if test is not None:
        out.update(concept_drift=bool(test["bound"] > 0), concept_p_value=test["p_value"])
        out["alarm"] = bool(out["alarm"] or out["concept_drift"])
        out["basis"] = out["basis"] or "realised"
    return out


def _tolerance(higher: bool, value: float) -> float:
    """How much worse a metric may be before it matters: 1 point for scores, 5% for errors."""
    return 0.01 if higher else 0.05 * abs(value)


def _drop_plot(c: ColumnDrift, plots: bool) -> dict[str, Any]:
    d = c.to_dict()
    if not plots:
        d.pop("plot", None)
    return d


def _dict(e: Estimate | None) -> dict[str, Any] | None:
    return None if e is None else e.to_dict()


def _fmt(model: Any, column: str) -> str | None:
    return model.schema[column].datetime_format


def _row_span(current: Current, rows: np.ndarray) -> dict[str, str | None]:
    """The times of the first and last of ``rows`` (none without times or rows)."""
    if current.times is None or not len(rows):
        return {}
    t = pd.to_datetime(current.times.iloc[rows], utc=True)
    return {"first_row": _iso(t.min()), "last_row": _iso(t.max())}


def _tmin(current: Current) -> pd.Timestamp | None:
    return None if current.times is None else pd.to_datetime(current.times, utc=True).min()


def _tmax(current: Current) -> pd.Timestamp | None:
    return None if current.times is None else pd.to_datetime(current.times, utc=True).max()


def _iso(t: pd.Timestamp | None) -> str | None:
    return None if t is None or pd.isna(t) else t.isoformat()
