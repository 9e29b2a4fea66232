"""The Model bundle from a training result: metadata for every later stage, the probability calibrator and
conformal scores, and the explanations, fitted from rows the model did not learn from."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd

from ..bundle.model import Model
from ..bundle.rows import recorded_marks
from ..explain.importance import builtin_importance
from ..training.trainer import TrainResult

__all__ = ["build_model", "data_fingerprint", "read_marks_of"]


def data_fingerprint(df: pd.DataFrame) -> dict[str, Any]:
    """A fingerprint of the training table: shape, columns and a hash of every value."""
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return {"rows": int(len(df)), "columns": int(df.shape[1]), "sha256": h.hexdigest()}


def _versions() -> dict[str, str]:
    """Python's version and the installed versions of the packages the model families and the bundle use."""
    from ..training.models import FAMILIES, load_all, requirements_of

    load_all()
    out = {"python": platform.python_version()}
    for pkg in dict.fromkeys(["mlengineer", "numpy", "pandas", *requirements_of(FAMILIES), "mlflow-skinny"]):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # torch where the deep extra is not installed
            continue
    return out


def read_marks_of(data: pd.DataFrame) -> dict[str, Any] | None:
    """The decimal comma and the columns of thousands dots the training table was read with, from what
    ``load_table`` recorded in its attrs; None where it was read with neither."""
    source = data.attrs.get("source") or {}
    return recorded_marks(source.get("decimal"), source.get("thousands_dots")) or None


def build_model(result: TrainResult, data: pd.DataFrame, *, name: str, source: str | None = None) -> Model:
    """The Model bundle from a training result, with everything later stages need in its metadata."""
    metadata = {
        "name": name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": source,
        "target": result.config.target,
        # the column of row weights training counted rows by: never a feature, never needed to predict;
        # evaluate and compare weight their metrics by it where their rows hold it
        "weight_column": result.config.weight_column,
        "metric": result.metric.name,
        "greater_is_better": result.metric.greater_is_better,
        "validation_score": result.validation_score,
        "split": result.split_strategy,
        "refit_on_all_rows": result.refit,
        "train_seconds": round(result.seconds, 2),
        "timings": result.timings,
        "reproducibility": result.reproducibility,
        "n_train_rows": result.n_train_rows,
        # rows no fit saw, whose predictions by the final model fit the calibrator and conformal scores
        "calibration_rows_apart": 0 if result.calibration_index is None else int(len(result.calibration_index)),
        "leaderboard": result.leaderboard,
        "ensemble": [{"model": n, "weight": w} for n, _, w in result.predictor.members],
        # a regression's members that extrapolate, kept near its trees' answers for each row (``Bounds``)
        "ensemble_bounds": None if result.predictor.bounds is None else result.predictor.bounds.describe(
            result.predictor.names),
        "findings": [f.model_dump() for f in result.findings],
        "cleaning": result.plan.describe(),
        "feature_importance": builtin_importance(result.encoder, result.predictor),
        "config": result.config.model_dump(),
        # what encoding new rows needs beyond the base packages (Pillow for pictures, the embedding model)
        "feature_packages": list(getattr(result.encoder, "packages", [])),
        # what the encoding left out and why, in plain sentences (a text column's sentence embeddings the
        # time budget had no room for): ``mlengineer train`` and the report's model card say them
        "feature_notes": [n for m in getattr(result.encoder, "text_models_", {}).values()
                          for n in getattr(m, "notes", [])],
        "data_fingerprint": data_fingerprint(data),
        # how the table file wrote its numbers where a later file's first rows may not tell: predict, evaluate
        # and monitor read a file's columns so too (``data.formats.sniff_csv``'s marks)
        "read_marks": read_marks_of(data),
        "versions": _versions(),
    }
    validation = {}
    if result.valid_y is not None and result.valid_pred is not None:
        validation = {"y": result.valid_y, "pred": result.valid_pred}
        if result.valid_weight is not None:  # the calibrator, conformal scores and thresholds count rows by them
            validation["weight"] = np.asarray(result.valid_weight, dtype=np.float64)
    model = Model(schema=result.schema, plan=result.plan, encoder=result.encoder, predictor=result.predictor,
                  task=result.task, metadata=metadata, validation=validation)
    _add_uncertainty_and_explanations(model, result, data)
    _add_reference(model, result, data)
    return model


def _add_reference(model: Model, result: TrainResult, data: pd.DataFrame) -> None:
    """The sample of training rows (and validation predictions) that monitoring compares live rows with."""
    from ..bundle.reference import sample_reference

    cfg = result.config
    # every column the schema knows, not only the features: a challenger retrained on this sample must know the
    # identifiers and dropped columns clients still send, or a server would refuse their rows
    columns = [*model.feature_names, cfg.target, *(c.name for c in model.schema.columns),
               *(c for c in (cfg.time_column, cfg.group_column) if c)]
    model.reference = sample_reference(data, columns=list(dict.fromkeys(columns)), rows=result.valid_rows,
                                       pred=result.valid_pred, candidates=np.flatnonzero(data[cfg.target].notna()),
                                       seed=cfg.seed)
    pred = model.reference.filter(regex=r"^_ref_(pred|proba_\d+)$")
    model.metadata["reference"] = {"rows": int(len(model.reference)),
                                   "with_predictions": int(pred.notna().any(axis=1).sum()) if pred.shape[1] else 0}


def _add_uncertainty_and_explanations(model: Model, result: TrainResult, data: pd.DataFrame) -> None:
    """Fit what later stages need from rows the model did not learn from (the probability calibrator and
    the conformal scores, on the validation rows) and explain a sample of training rows (SHAP importance).
    Cheap by design (milliseconds to a second): it comes out of the user's time budget."""
    start = time.perf_counter()
    if model.validation:
        _add_uncertainty(model, seed=result.config.seed)
    _add_explanations(model, result, data)
    model.metadata["timings"] = {**model.metadata.get("timings", {}),
                                 "uncertainty_and_explain_s": round(time.perf_counter() - start, 3)}


def _add_uncertainty(model: Model, *, seed: int) -> None:
    """The probability calibrator and the conformal scores, from the validation rows."""
    from ..evaluation.calibration import describe
    from ..evaluation.uncertainty import fit_uncertainty

    apart = bool(model.metadata.get("calibration_rows_apart"))
    model.extras.update(fit_uncertainty(model.task.kind, model.validation["y"], model.validation["pred"],
                                        seed=seed, held_out=apart, weights=model.validation.get("weight")))
    cal = model.extras.get("calibrator")
    model.metadata["calibration"] = {
        **describe(cal), "rows": int(len(model.validation["y"])),
        "source": "rows kept apart from every fit" if apart else "out-of-fold predictions of the validation rows"}


def _add_explanations(model: Model, result: TrainResult, data: pd.DataFrame) -> None:
    """Reference rows for explanations, and mean |SHAP| importance on a sample of training rows when the
    time budget leaves room for it."""
    sample = data.sample(min(len(data), 200), random_state=result.config.seed)
    clean = result.plan.apply(sample, training=True)
    X = result.encoder.transform(clean.drop(columns=[result.config.target]))
    if not len(X):
        return
    model.extras["background"] = X[:100]  # reference rows for explanations and partial dependence
    left = None if result.deadline is None else result.deadline - time.perf_counter()
    # the search spends planned seconds (training/plan.py), which a process's first imports and a busy
    # machine can outrun by a little: importance on 200 rows (milliseconds to a second) may run a tenth of the
    # budget past it (at least 5 s: a first training's imports and members' row functions built for the
    # latency aim are not in the plan) rather than be dropped for being a moment late
    if left is not None and left < -max(0.1 * result.config.time_budget, 5.0):
        model.metadata["importance_method"] = "learners' gain/impurity (the time budget left none for SHAP)"
        return
    try:
        from ..explain.contributions import is_sampled
        from ..explain.importance import shap_importance

        budget_s = 0.5 if left is None else min(0.5, 0.3 * left)
        model.metadata["feature_importance"] = (shap_importance(model, X, budget_s=budget_s)
                                                or model.metadata["feature_importance"])
        members = model.predictor.members
        left_out = [n for n, m, _ in members if is_sampled(m)]
        partial = bool(left_out) and len(left_out) < len(members)
        model.metadata["importance_method"] = "mean |SHAP| on training rows" + (
            f" (without {', '.join(left_out)}: no exact attribution)" if partial else "")
        # the share of the ensemble's weight the importance speaks for: the report's summary says it, or measures
        # importance on the whole model, where the members without exact attributions carry much of the weight
        total = sum(w for _, _, w in members) or 1.0
        model.metadata["importance_covers"] = round(
            sum(w for n, _, w in members if n not in left_out) / total if partial else 1.0, 4)
    except Exception as e:  # an explanation must never cost the user a trained model
        model.metadata["importance_method"] = f"learners' gain/impurity (SHAP failed: {type(e).__name__}: {e})"[:300]
