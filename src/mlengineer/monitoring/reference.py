"""The monitoring side of a bundle's reference sample: its columns ready to compare, its out-of-sample
predictions (through the bundle's calibrator, as ``Model.predict_raw`` gives live ones), the model's
performance on those rows, and the loss model regression estimates use.

    >>> ref = reference_of(model)          # doctest: +SKIP
    >>> ref.columns["tenure"].present()    # the reference values of one column, missing ones removed
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..bundle.reference import DRIFT, PRED, load_reference, proba_column
from ..errors import MLEngineerError, ModelError
from .columns import Prepared, prepare, role_of
from .estimate import (
    ConfidenceCalibrator,
    CorrectnessModel,
    Estimate,
    LossModel,
    decisions,
    estimable,
    estimate_classifier,
    realised,
)

__all__ = ["Reference", "prediction_values", "reference_of"]


def reference_of(model: Any) -> Reference:
    """The model's reference; a ModelError saying what to do for a bundle saved without one."""
    try:
        frame = load_reference(model)
    except (OSError, ValueError) as e:
        raise ModelError(f"The reference sample of {model.name!r} cannot be read ({type(e).__name__}: "
                         f"{str(e)[:120]}): retrain the model to monitor it.") from None
    if frame is None:
        raise ModelError(f"Model {model.name!r} keeps no reference sample of its training rows (it was saved before "
                         "monitoring existed, or by another tool), so there is nothing to compare live rows with: "
                         "retrain it with 'mlengineer train' to monitor it.")
    return Reference(model, frame)


def prediction_values(task: str, raw: np.ndarray, d: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """What prediction drift compares, and its kind: predicted values, the probability of the positive
    class, or (multiclass) the answered class."""
    if task == "regression":
        return np.asarray(raw, dtype=np.float64), "numeric"
    if raw.shape[1] == 2:
        return np.asarray(raw[:, 1], dtype=np.float64), "numeric"
    return (decisions(raw) if d is None else d).astype(np.float64), "categorical"


class Reference:
    """A model's reference sample, prepared for comparisons."""

    def __init__(self, model: Any, frame: pd.DataFrame) -> None:
        self.model = model
        self.frame = frame
        self.roles = role_of(model)
        missing = [c for c in self.roles if c not in frame.columns]
        if missing:
            raise ModelError(f"The reference sample of {model.name!r} lacks the column {missing[0]!r}: it does not "
                             "belong to this model. Retrain the model to monitor it.")
        self.drift_rows = frame.loc[frame[DRIFT].to_numpy(dtype=bool)] if DRIFT in frame.columns else frame
        self._loss: LossModel | None = None

    @property
    def task(self) -> str:
        return str(self.model.task.kind)

    @cached_property
    def columns(self) -> dict[str, Prepared]:
        """Each feature column of the drift sample, prepared (dates parsed as training parsed them)."""
        fmts = {c.name: c.datetime_format for c in self.model.schema.columns}
        return {c: prepare(self.drift_rows[c], role, fmts.get(c), name=c) for c, role in self.roles.items()}

    @cached_property
    def drift_y(self) -> np.ndarray:
        """The drift sample's outcomes as the model encodes them (class index or value), NaN where unknown."""
        target = self.model.target
        y = np.full(len(self.drift_rows), np.nan)
        if target not in self.drift_rows.columns:
            return y
        known = self.drift_rows[target].notna().to_numpy()
        try:
            y[known] = self.model.task.encode(self.drift_rows[target][known])
        except (ValueError, MLEngineerError):  # an outcome the model does not know: no relation tests
            y[:] = np.nan
        return y

    @cached_property
    def scored(self) -> pd.DataFrame:
        """The rows that carry an out-of-sample prediction."""
        cols = [PRED] if self.task == "regression" else [proba_column(i) for i in range(len(self.model.classes))]
        if not all(c in self.frame.columns for c in cols):
            return self.frame.iloc[:0]
        return self.frame.loc[self.frame[cols].notna().all(axis=1).to_numpy()]

    @cached_property
    def raw(self) -> np.ndarray:
        """The scored rows' predictions as the model gives them live (classifiers: calibrated)."""
        if self.task == "regression":
            return self.scored[PRED].to_numpy(dtype=np.float64)
        raw = self.scored[[proba_column(i) for i in range(len(self.model.classes))]].to_numpy(dtype=np.float64)
        calibrator = self.model.extras.get("calibrator")
        return calibrator.transform(raw) if calibrator is not None else raw

    @cached_property
    def y(self) -> np.ndarray:
        return np.asarray(self.model.task.encode(self.scored[self.model.target]))

    def decided(self, raw: np.ndarray) -> np.ndarray:
        threshold = self.model.extras.get("threshold")
        return decisions(raw, None if threshold is None else float(threshold["value"]))

    @cached_property
    def confidence(self) -> ConfidenceCalibrator | None:
        """Multiclass: the estimator's own calibration of the answered class (``ConfidenceCalibrator``), fitted
        on the scored rows; None for other tasks or fewer than 50 scored rows."""
        if self.task != "multiclass" or len(self.scored) < 50:
            return None
        return ConfidenceCalibrator().fit(self.raw, self.decided(self.raw), self.y)

    @cached_property
    def correctness(self) -> CorrectnessModel | None:
        """Multiclass: the model of each answer's chance of being right (``CorrectnessModel``), fitted on the
        scored rows; None (``confidence`` alone) with fewer than ``CorrectnessModel.MIN_ROWS`` of them or
        without LightGBM."""
        if self.confidence is None or len(self.scored) < CorrectnessModel.MIN_ROWS:
            return None
        try:
            import lightgbm  # noqa: F401
        except ImportError:
            return None
        d = self.decided(self.raw)
        return CorrectnessModel(self.confidence).fit(self.encoded, self.raw, d, self.y)

    @cached_property
    def encoded(self) -> np.ndarray:
        """The scored rows' inputs as the model encodes them."""
        return np.asarray(self.model.encode(self.scored[self.model.feature_names]))

    def for_estimate(self, raw: np.ndarray, d: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``raw`` (answered ``d``) as CBPE reads them: through ``correctness`` where there is
        one and the rows' encoded inputs ``X`` are given, else through ``confidence`` where there is one."""
        if X is not None and self.correctness is not None:
            return self.correctness.transform(X, raw, d)
        return raw if self.confidence is None else self.confidence.transform(raw, d)

    @cached_property
    def predictions(self) -> Prepared:
        """The scored rows' predictions, prepared for the prediction drift test."""
        values, kind = prediction_values(self.task, self.raw, None if self.task == "regression" else
                                         self.decided(self.raw))
        return _prediction_column(values, kind)

    @cached_property
    def performance(self) -> dict[str, Estimate]:
        """The model's metrics on the scored rows (out of sample), with bootstrap intervals."""
        out: dict[str, Estimate] = {}
        if len(self.scored) < 20:
            return out
        for name in estimable(self.task, self.model.metadata.get("metric")):
            d = None if self.task == "regression" else self.decided(self.raw)
            out[name] = realised(name, self.y, self.raw, d=d)
            out[name].method = "out-of-sample predictions of the reference rows"
        return out

    @cached_property
    def estimated(self) -> dict[str, Estimate]:
        """The estimators applied to the scored rows themselves: what live estimates are compared with, so
        that an estimator's own bias does not read as a change. Regressors: each row's expected error from
        the loss model's cross-fitting (``LossModel.cross_fitted``, from a model that did not see the row),
        as a live row's is from a model that did not see it; the final loss model's sizes for the rows it
        was fitted on put the estimate 1-7% above the loss model's level on fresh rows (4% on average over
        16 models, bench/RESULTS.md), so a live batch had to be that much worse to reach it."""
        out: dict[str, Estimate] = {}
        if len(self.scored) < 30:
            return out
        loss = self.loss_model()
        m = None if loss is None else loss.cross_fitted
        for name in estimable(self.task, self.model.metadata.get("metric")):
            if self.task != "regression":
                d = self.decided(self.raw)
                # in sample for the correctness model: its trees are few and shallow enough not to matter
                X = self.encoded if self.correctness is not None else None
                out[name] = estimate_classifier(name, self.for_estimate(self.raw, d, X), d)
            elif loss is not None and m is not None:
                out[name] = loss.estimate(name, m, self.raw)
        return out

    def loss_model(self) -> LossModel | None:
        """Regression: the model of the error size, fitted on first use (about a second); None without
        enough scored rows."""
        if self.task != "regression" or len(self.scored) < 50:
            return None
        if self._loss is None:
            self._loss = LossModel(seed=0).fit(self.encoded, self.raw, self.y.astype(np.float64))
        return self._loss


def _prediction_column(values: np.ndarray, kind: str) -> Prepared:
    if kind == "numeric":
        return Prepared("prediction", "numeric", "numeric", np.asarray(values, dtype=np.float64))
    return prepare(pd.Series(values.astype(np.int64).astype(str)), "categorical", name="prediction")
