"""The Model bundle: schema + cleaning plan + feature encoder + fitted predictor + metadata, in one folder.

The folder is an MLflow model (pyfunc flavour), so ``mlflow.pyfunc.load_model(path).predict(df)`` works;
mlengineer itself reads the bundle's own files directly (no MLflow import on the serving path). Its layout
and the atomic save are in ``store.py``, the MLflow side in ``flavor.py``.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.clean import CleaningPlan, check_columns
from ..data.images import image_root, table_folder
from ..data.nested import flat_frame, flat_nested, nested_gaps, nested_prefixes
from ..data.schema import Schema
from ..errors import Argument, InputWarning, MLEngineerError, ModelError, SchemaError, python_words
from ..tasks import Task
from .notes import DateNotes, RecordNotes, new_tally
from .rowpath import RowPath
from .rows import as_rows
from .store import BUNDLE_SUBDIR, read_parts, write_bundle

__all__ = ["BUNDLE_SUBDIR", "RECALIBRATE", "SMALL_BATCH", "Model", "load"]

#: what a message suggests running, said in Python: the call that does it
RECALIBRATE = {"'mlengineer calibrate MODEL --data ROWS'": "mlengineer.recalibrate(model, rows)",
               "'mlengineer calibrate MODEL'": "mlengineer.recalibrate(model)"}

SMALL_BATCH = 64  # up to this many rows, prediction works on column arrays instead of DataFrames


class Model:
    """A trained model, ready to predict on raw rows shaped like the training table."""

    def __init__(self, *, schema: Schema, plan: CleaningPlan, encoder: Any, predictor: Any, task: Task,
                 metadata: dict[str, Any], validation: dict[str, np.ndarray] | None = None,
                 extras: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.plan = plan
        self.encoder = encoder
        self.predictor = predictor
        self.task = task
        self.metadata = metadata
        self.validation = validation or {}
        #: fitted add-ons of later stages (calibrator, conformal scores, explainer), saved with the bundle
        self.extras: dict[str, Any] = dict(extras or {})
        self.path: Path | None = None
        #: the training sample monitoring compares with (bundle/reference.py; read from the bundle on demand)
        self.reference: pd.DataFrame | None = None
        #: False sends one record the batch way too (benchmarks compare the two; tests check they agree)
        self.use_row_path = True
        self._row: tuple[tuple[int, int, int], RowPath | None] | None = None
        self._notes: RecordNotes | None = None  # the input check of the Python face's warnings, built on first use
        self._dates: DateNotes | None = None  # its check of dates far outside the training range
        #: names whose objects a record may nest, as the training table's JSON did ('user' for 'user.age')
        self.nested = nested_prefixes(plan.feature_columns)

    # -- facts ---------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "model")

    @property
    def target(self) -> str:
        return str(self.schema.target)

    @property
    def classes(self) -> list[Any]:
        return list(self.task.classes)

    @property
    def feature_names(self) -> list[str]:
        return self.plan.feature_columns

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, task={self.task.kind!r}, target={self.target!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (joblib, multiprocessing, a Spark closure) without the compiled row path, a cache of local
        functions that no pickle takes: the copy compiles it again on its first record."""
        state = dict(self.__dict__)
        state["_row"] = state["_notes"] = state["_dates"] = None
        return state

    # -- predicting ----------------------------------------------------------------------------------------
    def to_frame(self, data: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Rows as a DataFrame: a DataFrame as is, one record (a mapping, or a row of a frame: ``df.iloc[0]``),
        or a list of records."""
        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, pd.Series):
            return pd.DataFrame([_series_record(data)], index=_index_of(data))
        return pd.DataFrame(_records(data, self.nested))

    def encode(self, data: Any) -> np.ndarray:
        """Raw rows (a DataFrame, one record, or a list of records) to the feature matrix, through the one
        cleaning code path. A few rows skip building DataFrames: the plan and the encoder work on column
        arrays with the same per-value conversions, which keeps one-row latency low."""
        # image paths in a table read from a file are relative to its folder
        if isinstance(data, pd.DataFrame):
            twice = [c for c in data.columns[data.columns.duplicated()] if c in self.feature_names]
            if twice:  # which of the two would be read is anyone's guess: neither is (a column not read may be)
                raise SchemaError(f"The rows name the column {twice[0]!r} twice: give each column its own name.")
            if self.nested:  # a frame of nested objects (or their JSON text, or nulls); a key none of them holds
                data = nested_gaps(flat_frame(data, self.nested), self.nested, self.feature_names)
        with image_root(table_folder(data) if isinstance(data, pd.DataFrame) else None):
            return self._encode(data)

    def _encode(self, data: Any) -> np.ndarray:
        if isinstance(data, pd.DataFrame):
            if len(data) == 0:
                raise SchemaError("No rows to predict: send at least one row.")
            if len(data) > SMALL_BATCH:
                return self.encoder.transform(self.plan.apply(data, training=False))
            # one conversion of the whole frame: pulling columns one by one costs ~20 us each in pandas 3
            matrix = (np.asarray([data.iloc[0].tolist()], dtype=object) if len(data) == 1
                      else data.to_numpy(dtype=object))
            position: dict[Any, int] = {}
            for i, c in enumerate(data.columns):
                position.setdefault(c, i)
            cols = {c: matrix[:, position[c]] for c in self.feature_names if c in position}
            if len(cols) < len(self.feature_names):  # named with the rows' own near spellings (' Age')
                check_columns(position, self.feature_names)
        else:
            records = _records(data, self.nested)
            cols = {}
            for c in self.feature_names:
                present = [c in r for r in records]
                if any(present):
                    arr = np.empty(len(records), dtype=object)
                    arr[:] = [r.get(c) for r in records]
                    cols[c] = arr
            if len(cols) < len(self.feature_names):
                check_columns({k for r in records for k in r}, self.feature_names)
        return self.encoder.transform(self.plan.apply_arrays(cols))

    def row_path(self) -> RowPath | None:
        """The compiled single-record path (``rowpath.py``), built on first use; None when a column is text
        or a picture, or the plan has a step without a one-row form."""
        key = (id(self.plan), id(self.encoder), id(self.predictor))
        if self._row is None or self._row[0] != key:
            try:
                path = RowPath.compile(self)
            except Exception:  # noqa: BLE001 - a model the row path cannot follow still predicts the batch way
                path = None
            self._row = (key, path)
        return self._row[1]

    def predict_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """``predict_raw`` of one record, the fast path the server answers one record by: a classifier's (1, k)
        probabilities, column i that of ``classes[i]`` (sorted label order), or a regression's (1,) value. Through
        the row path when the model has one. ``predict_proba(record)`` gives the same numbers named by their
        class (a one-row DataFrame: ``.iloc[0].to_dict()`` is {label: probability})."""
        if isinstance(record, pd.Series):
            record = _series_record(record)
        record = flat_nested(record, self.nested)  # objects (their JSON text, null) under a nested JSON column's name
        path = self.row_path() if self.use_row_path else None
        if path is not None and path.accepts(record):
            raw = path.predict_raw(record)
        else:
            raw = self.predictor.predict_raw(self.encode(record))
        return self.calibrated(raw)

    def rows(self, data: Any) -> Any:
        """``data`` as rows the model reads: a table file's path (str or Path) read as ``mlengineer predict``
        reads it, with training's thousands dots and decimal commas; a numpy array of the training columns
        (``feature_names``) in their order; a pyarrow Table; a DataFrame or records as they are."""
        return as_rows(data, self.feature_names, self.metadata)

    def predict_raw(self, data: Any) -> np.ndarray:
        """Probabilities (n, k) for classification, in the order of ``classes``; values (n,) for regression.
        ``data``: what ``rows`` takes."""
        data = self.rows(data)
        if isinstance(data, pd.Series):  # one row of a frame (df.iloc[0], df.loc[key]): its index names the columns
            data = _series_record(data)
        one = data if isinstance(data, Mapping) else data[0] if _one_record(data) else None
        if one is not None:
            return self.predict_record(one)
        return self.calibrated(self.predictor.predict_raw(self.encode(data)))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """The ensemble's raw outputs through the bundle's calibrator, where a classifier has one (else as
        they are): what ``predict_raw`` answers."""
        calibrator = self.extras.get("calibrator")
        if calibrator is not None and self.task.is_classification:
            raw = calibrator.transform(raw)
        return raw

    def predict(self, data: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression), in the input's row order. Rows holding a
        category the model never saw, a number far outside its training range or a column it does not know are
        answered all the same, with an ``InputWarning`` saying so (once a call). ``data``: a DataFrame, one
        record, a list of records, a table file's path, a numpy array of the training columns in their order
        (``feature_names``) or a pyarrow Table."""
        data = self.rows(data)
        raw = self.predict_raw(data)
        if _from_outside():
            self.warn_inputs(data)
        return self.decide(raw)

    def input_notes(self, data: Any) -> list[str]:
        """What ``data`` holds that the model never learnt from, a line a column in the words ``mlengineer
        predict`` prints (``notes.RecordNotes``); [] where nothing is."""
        notes = self._notes
        if notes is None:
            notes = self._notes = RecordNotes(self)
        data = self.rows(data)
        if isinstance(data, pd.Series):  # one row of a frame: its index names the columns
            data = _series_record(data)
        dates = self._far_dates(data)
        if isinstance(data, Mapping) and notes.plain(data):  # the one-record path: as cheap as can be
            return dates
        if isinstance(data, pd.DataFrame):
            tally = notes.of_frame(data)
        else:
            tally = new_tally()
            rows = [data] if isinstance(data, Mapping) else data if isinstance(data, list | tuple) else ()
            for row in rows:
                if isinstance(row, Mapping):
                    notes.of_record(row, tally)
        return [*(notes.lines(tally) if tally["unknown"] or tally["unseen"] or tally["far"] else []), *dates]

    def _far_dates(self, data: Any) -> list[str]:
        """``DateNotes``' lines on ``data`` (a DataFrame, one record or a list of records)."""
        if getattr(self, "_dates", None) is None:  # (a Model pickled before it had one)
            self._dates = DateNotes(self)
        assert self._dates is not None
        if not self._dates.spans or not isinstance(data, pd.DataFrame | Mapping | list | tuple):
            return []
        dates = copy.copy(self._dates)
        dates.far = {}
        dates.add(data)
        return dates.lines()

    def warn_inputs(self, data: Any) -> None:
        """Warn (``InputWarning``, at the caller's line) of what ``input_notes`` finds in ``data``."""
        lines = self.input_notes(data)
        if lines:
            warnings.warn(" ".join(lines), InputWarning, stacklevel=3)

    def decide(self, raw: np.ndarray) -> np.ndarray:
        """Labels or values from raw outputs. A binary model with a chosen decision threshold (set by
        ``mlengineer calibrate``) answers its positive class from that probability on, not from 50%. The
        threshold's ``value`` says the decision on the second class's probability whichever class it is about
        (``--positive-class``; ``evaluation.threshold.choose_threshold``), as every reader of it applies it."""
        threshold = self.extras.get("threshold")
        if threshold is not None and self.task.kind == "binary":
            return self.task.labels_at((raw[:, 1] >= threshold["value"]).astype(np.int64))
        return self.task.decode(raw)

    def predict_proba(self, data: Any) -> pd.DataFrame:
        """Class probabilities, one column per class (named by the class itself, as in ``classes``) in sorted
        label order; a DataFrame's rows keep its index."""
        if not self.task.is_classification:
            raise ModelError("predict_proba needs a classification model; this one predicts values (regression).")
        data = self.rows(data)
        raw = self.predict_raw(data)
        if _from_outside():
            self.warn_inputs(data)
        return pd.DataFrame(raw, columns=list(self.classes), index=_index_of(data))

    def predict_frame(self, data: Any, *, interval: float | None = None) -> pd.DataFrame:
        """One row per input row: ``prediction``, and ``proba_<class>`` columns for classification.

        ``interval`` (a coverage such as 0.9) adds ``lower`` and ``upper`` columns for regression, and a
        ``prediction_set`` column (a list of labels a row) for classification: conformal ranges and sets that
        hold the truth that often on rows like the calibration rows.
        """
        data = self.rows(data)
        raw = self.predict_raw(data)
        if _from_outside():
            self.warn_inputs(data)
        try:
            return self._frame(data, raw, interval)
        except MLEngineerError as e:  # a coverage the calibration rows cannot promise: the call that refits them
            e.args = (python_words(str(e), {}, RECALIBRATE) if _from_outside() else str(e),)
            raise

    def _frame(self, data: Any, raw: np.ndarray, interval: float | None) -> pd.DataFrame:
        out = pd.DataFrame({"prediction": self.decide(raw)}, index=_index_of(data))  # a frame's own index
        if self.task.is_classification:
            for i, c in enumerate(self.classes):
                out[f"proba_{c}"] = raw[:, i]
        if interval is not None and self.task.is_classification:
            sets = np.empty(len(out), dtype=object)
            for i, labels in enumerate(self.prediction_set(raw, interval)):
                sets[i] = labels
            out["prediction_set"] = sets
        elif interval is not None:
            out["lower"], out["upper"] = self.prediction_interval(raw, interval)
        return out

    def check_interval(self, coverage: float) -> float:
        """``coverage`` as a float, or the error that ranges or sets of that coverage would raise: a coverage
        outside (0, 1), a model without the calibration rows they are fitted on, or a coverage more than those
        rows can promise. Lets a caller fail before it predicts anything (Spark checks on the driver before it
        starts the job)."""
        from ..evaluation.intervals import check_coverage, check_supported

        coverage = check_coverage(coverage)
        conformal = self.extras.get("conformal")
        if conformal is None:
            if self.task.is_classification:
                raise ModelError("This model has no conformal calibration: run 'mlengineer calibrate MODEL' first.")
            if "y" not in self.validation:
                raise ModelError("This model kept no validation rows, so it cannot give prediction intervals.")
            return check_supported(coverage, len(self.validation["y"]), ranges=True)
        return conformal.check(coverage)  # a coverage more than its calibration rows can promise is refused

    def prediction_interval(self, raw: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around regression predictions ``raw`` for the wanted ``coverage``."""
        from ..evaluation.intervals import interval_bounds

        if self.task.is_classification:
            raise ModelError("Prediction intervals are for regression; this model predicts classes: use prediction_set.")
        coverage = self.check_interval(coverage)
        conformal = self.extras.get("conformal")
        if conformal is not None:
            return conformal.bounds(raw, coverage)
        return interval_bounds(raw, self.validation["y"], self.validation["pred"], coverage)

    def prediction_set(self, raw: np.ndarray, coverage: float) -> list[list[Any]]:
        """For each row of class probabilities ``raw``, the labels that together hold the true label with
        probability ``coverage`` (a conformal prediction set; the most probable label is always in it)."""
        if not self.task.is_classification:
            raise ModelError("Prediction sets are for classification; this model predicts values: use prediction_interval.")
        member = self.extras["conformal"].sets(raw, self.check_interval(coverage))
        return [[c for c, m in zip(self.classes, row, strict=True) if m] for row in member]

    def leaderboard(self) -> pd.DataFrame:
        """The candidates the search tried, as the bundle's metadata recorded them (the ensemble's row first, then
        the candidates best first): ``model``,
        ``family``, ``phase``, ``score`` (validation, by ``attrs["metric"]``), ``fit_seconds``,
        ``predict_ms_per_row``, ``status``, ``in_ensemble`` and its ``weight`` there (0 outside it). The row
        ``ensemble`` is the blend of the members, which the model answers with."""
        weights = {e["model"]: float(e["weight"]) for e in self.metadata.get("ensemble") or []}
        columns = ["model", "family", "phase", "score", "fit_seconds", "predict_ms_per_row", "status",
                   "in_ensemble", "weight"]
        rows = [[r.get("model"), r.get("family"), r.get("phase"), r.get("score"), r.get("fit_s"),
                 r.get("predict_ms_per_row"), r.get("status"), r.get("model") in weights,
                 weights.get(r.get("model"), 0.0)] for r in self.metadata.get("leaderboard") or []]
        board = pd.DataFrame(rows, columns=columns)
        board.attrs["metric"] = self.metadata.get("metric")
        return board

    # -- saving and loading --------------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the bundle to ``path`` atomically and return the path."""
        try:
            self.path = write_bundle(self, path, overwrite=overwrite)
        except MLEngineerError as e:  # "choose another --out": the argument here is path
            e.args = (python_words(str(e), _SAVE) if _from_outside() else str(e),)
            raise
        return self.path


_SAVE = {"--out": Argument("path")}


def _from_outside() -> bool:
    """Whether the public method calling this was called from outside mlengineer: from the user's notebook or
    script, whom the Python face speaks to. mlengineer's own callers (``mlengineer predict``'s batches, Spark
    scoring, the MLflow flavour) say the same in their own way: a line on the console, a note."""
    return not str(sys._getframe(2).f_globals.get("__name__", "")).startswith("mlengineer.")


def _index_of(data: Any) -> pd.Index | None:
    """A DataFrame's index, which the answers for its rows keep (a pandas user assigns them back by it); a row
    of a frame (a Series) keeps its label."""
    if isinstance(data, pd.Series):
        return None if data.name is None else pd.Index([data.name])
    return data.index if isinstance(data, pd.DataFrame) else None


def _series_record(row: pd.Series) -> dict[str, Any]:
    """One row of a frame as the record it is: its index names the columns."""
    if row.index.has_duplicates:
        twice = row.index[row.index.duplicated()][0]
        raise SchemaError(f"The row names the column {twice!r} twice: give each column its own name.")
    return {str(k): v for k, v in row.items()}


def _one_record(data: Any) -> bool:
    return isinstance(data, list | tuple) and len(data) == 1 and isinstance(data[0], Mapping)


def _records(data: Any, nested: frozenset[str] = frozenset()) -> list[Mapping[str, Any]]:
    """One record or a list of records, checked to be JSON-object-like rows."""
    if isinstance(data, Mapping):
        return _records([data], nested)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if len(data) == 0:
            raise SchemaError("No rows to predict: send at least one record.")
        if not all(isinstance(r, Mapping) for r in data):
            raise SchemaError("Each row must be a JSON object of column: value.")
        return [flat_nested(r, nested, f", row {i}" if len(data) > 1 else "") for i, r in enumerate(data)]
    raise SchemaError(f"Cannot predict on {type(data).__name__}: pass a DataFrame or records.")


def load(path: str | Path) -> Model:
    """Load a bundle written by ``Model.save`` (or by ``mlengineer train``)."""
    parts = read_parts(path)
    location = parts.pop("path")
    model = Model(**parts)
    model.path = location
    return model
