"""Fit the add-ons that make a model honest about its uncertainty: the probability calibrator and the
conformal sets or intervals, from rows the model did not learn from.

Both come from the same calibration rows (the trainer's validation rows, or held-out rows the user gives).
For classification the conformal scores are taken on out-of-fold calibrated probabilities, so the rows that
fitted the calibrator do not also grade it. Rows with weights (the user's weight column) count for them in
both: a weighted calibrator and weighted conformal quantiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .calibration import cross_fitted, describe, fit_calibrator
from .intervals import ConformalClassifier, ConformalRegressor

__all__ = ["fit_uncertainty", "recalibrate"]


def fit_uncertainty(task_kind: str, y: np.ndarray, pred: np.ndarray, *, calibration: str = "auto",
                    seed: int = 0, held_out: bool = False, weights: np.ndarray | None = None) -> dict[str, Any]:
    """``{"calibrator": ..., "conformal": ...}`` for a model whose out-of-sample outputs on calibration
    rows with truth ``y`` (encoded) are ``pred``; the calibrator is None when none is wanted or helps.

    ``held_out``: the rows were never seen by the final model (given held-out rows, or rows the trainer kept
    apart from every fit), so a calibrator's gain of one standard error is trusted; validation rows'
    out-of-fold predictions come from weaker models than the final refit ones, so there it takes two.
    ``weights``: the rows' weights (None: each counts once)."""
    if task_kind == "regression":
        return {"calibrator": None, "conformal": ConformalRegressor().fit(y, pred, weights)}
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=float)
    calibrator = fit_calibrator(y, pred, method=calibration, seed=seed, min_gain_se=1.0 if held_out else 2.0,
                                weights=weights)
    if calibrator is None:
        scored = pred
    else:
        scored = cross_fitted(calibrator.method, y, pred, folds=5 if len(y) >= 100 else 2, seed=seed, weights=weights)
    return {"calibrator": calibrator, "conformal": ConformalClassifier().fit(y, scored, weights)}


def recalibrate(model: Any, data: Any = None, *, method: str = "auto", cost_fp: float | None = None,
                cost_fn: float | None = None, target_precision: float | None = None,
                target_recall: float | None = None, seed: int = 0, weights: bool = True,
                positive: int | None = None) -> dict[str, Any]:
    """Refit ``model``'s calibrator and conformal scores, and optionally choose its decision threshold, on
    calibration rows: labelled ``data`` the model never saw (best: rows kept apart from training and from
    any test set), or by default the validation rows the trainer kept. Changes ``model.extras`` in place
    and returns what was done, with the calibration error on those rows before (the model as it was, its
    calibrator included: ``ece_before``; without any: ``ece_uncalibrated``) and after. The keys of given
    ``data``'s rows are kept (``seen.keep_calibration_rows``) so that a measure on them says so. Rows count for the
    weights of the model's weight column (the data's, or those the trainer kept), unless ``weights`` is False.
    ``positive``: the class (0 or 1) a binary model's threshold is about (``threshold.choose_threshold``).
    ``model.metadata["recalibrated"]`` records that the model is no longer the one its training run logged (the
    run, its name and the rows it was calibrated on), so that a report of it is not attached to that run."""
    from ..errors import DataError, ModelError
    from .calibration import expected_calibration_error
    from .evaluate import labelled_frame, labelled_weights
    from .seen import keep_calibration_rows

    asked = {k: v for k, v in (("cost_fp", cost_fp), ("cost_fn", cost_fn), ("target_precision", target_precision),
                               ("target_recall", target_recall), ("positive", positive)) if v is not None}
    if asked and model.task.kind != "binary":  # before any work, and for a regression model too (not ignored)
        raise ModelError("A decision threshold is for two-class models; this one " + (
            f"has {len(model.classes)} classes." if model.task.is_classification else
            f"predicts a number ({model.target!r}): leave the threshold's rule out."))
    w: np.ndarray | None = None
    if data is not None:
        data = labelled_frame(data)
        target = model.target
        if target not in data.columns:
            raise DataError(f"The calibration data has no column {target!r}: calibration needs the true values.")
        mask = data[target].notna()
        labelled = data.loc[mask]
        if len(labelled) < 20:
            raise DataError(f"Only {len(labelled)} labelled calibration rows: give at least 20 (a few hundred is better).")
        w, column = labelled_weights(model, data, mask, weights=weights)
        y = model.task.encode(labelled[target])
        pred = model.predictor.predict_raw(model.encode(labelled.drop(columns=[target])))
        source = f"{len(y):,} held-out rows given" + (f", weighted by {column!r}" if column else "")
    elif "y" in model.validation:
        y, pred = model.validation["y"], model.validation["pred"]
        w = model.validation.get("weight") if weights else None
        apart = bool(model.metadata.get("calibration_rows_apart"))
        source = (f"the {len(y):,} rows kept apart from every fit" if apart else
                  f"the {len(y):,} validation rows (out-of-fold predictions)")
        source += f", weighted by {model.metadata.get('weight_column')!r}" if w is not None else ""
    else:
        raise ModelError("This model kept no validation rows: pass --data with labelled rows it never saw.")
    held_out = data is not None or bool(model.metadata.get("calibration_rows_apart"))
    before = model.calibrated(pred)  # what the model answers now (its calibrator, if it has one), as evaluate shows
    fitted = fit_uncertainty(model.task.kind, y, pred, calibration=method if model.task.is_classification else "none",
                             seed=seed, held_out=held_out, weights=w)
    model.extras.update(fitted)
    if data is not None:  # the rows it was fitted on, so that evaluate and the report can tell them again
        keep_calibration_rows(model, labelled, seed=seed)
    else:
        model.extras.pop("calibration_rows", None)
    summary: dict[str, Any] = {"rows": int(len(y)), "source": source}
    # no longer the model its training run logged: the report says so rather than attach itself to that run
    first = model.metadata.get("recalibrated") or {}
    model.metadata["recalibrated"] = {"source": source, "run_id": first.get("run_id", model.metadata.get("run_id")),
                                      "name": first.get("name", model.name)}
    if model.task.is_classification:
        cal = fitted["calibrator"]
        after = cal.transform(pred) if cal is not None else pred
        described = describe(cal)
        summary.update(method=described["method"], ece_before=expected_calibration_error(y, before, weights=w),
                       ece_after=expected_calibration_error(y, after, weights=w),
                       ece_uncalibrated=expected_calibration_error(y, pred, weights=w))
        model.metadata["calibration"] = {**described, "rows": int(len(y)), "source": source}
        _rethreshold(model, summary, asked, y, after[:, 1] if model.task.kind == "binary" else None, w)
    return summary


def _rethreshold(model: Any, summary: dict[str, Any], asked: dict[str, float], y: np.ndarray, p: np.ndarray | None,
                 w: np.ndarray | None) -> None:
    """The decision threshold on the new probabilities ``p``: by the rule ``asked``, or else by the rule the model's
    threshold was chosen by (chosen on the old probabilities, it no longer fits the new ones). A threshold from an
    older bundle, which kept no rule to apply again, is removed, and ``summary["threshold_removed"]`` says so."""
    from ..errors import ConfigError
    from .threshold import choose_threshold

    old = model.extras.get("threshold")
    rule = asked or (old or {}).get("args")
    if p is None or (not rule and old is None):
        return
    if not rule:
        model.extras.pop("threshold", None)
        model.metadata.pop("threshold", None)
        summary["threshold_removed"] = old
        return
    try:
        threshold = {**choose_threshold(y, p, weights=w, **rule), "args": dict(rule)}
    except ConfigError as e:
        if asked:
            raise
        # the rule it was chosen by cannot be met on these rows: removed rather than kept where it no longer fits
        model.extras.pop("threshold", None)
        model.metadata.pop("threshold", None)
        summary["threshold_removed"], summary["threshold_why"] = old, f"its rule ({old['rule']}) cannot be met: {e}"
        return
    # the class it is about, by its label, so that whoever reads the bundle needs no knowledge of the class order
    threshold["positive"] = model.classes[int(threshold.get("positive_index", 1))]
    model.extras["threshold"] = model.metadata["threshold"] = summary["threshold"] = threshold
    summary["threshold_again"] = not asked
