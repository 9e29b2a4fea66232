"""The public entry points: ``train`` a Model bundle from a table, ``load`` one back."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from ..bundle.model import Model, load
from ..data.load import load_table
from ..explain.importance import builtin_importance
from ..training.config import TrainConfig
from ..training.trainer import Progress, TrainResult, _noop, fit_pipeline

__all__ = ["build_model", "data_fingerprint", "load", "train"]


def train(
    data: pd.DataFrame | str | Path,
    target: str | None = None,
    *,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    track: bool = True,
    name: str | None = None,
    progress: Progress = _noop,
    **options: Any,
) -> Model:
    """Train a model on ``data`` (a DataFrame or a file path) to predict ``target``.

    ``options`` are TrainConfig fields (``time_budget``, ``metric``, ``task``, ``seed``, ...). With ``out``
    the bundle is saved there; with ``track`` the run is recorded in MLflow.

    >>> model = train("salaries.csv", target="salary_in_usd", time_budget=30)  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig.build(target=target, **options)
    elif target is not None or options:
        config = TrainConfig.build(**{**config.model_dump(), **({"target": target} if target else {}), **options})
    source = None
    if not isinstance(data, pd.DataFrame):
        source = str(data)
        data = load_table(data)
    result = fit_pipeline(data, config, progress=progress)
    model = build_model(result, data, name=name or (Path(source).name.split(".")[0] if source else config.target),
                        source=source)
    if out is not None:
        model.save(out)
    if track:
        from ..tracking.runs import log_training_run

        run_id = log_training_run(model, result, tracking_uri=config.tracking_uri, experiment=config.experiment,
                                  model_dir=model.path, run_name=model.name)
        model.metadata["run_id"] = run_id
        if model.path is not None:  # record the run id in the saved bundle too
            import json

            meta_path = model.path / "artifacts" / "bundle" / "metadata.json"
            meta = json.loads(meta_path.read_text())
            meta["run_id"] = run_id
            meta_path.write_text(json.dumps(meta, indent=1))
    return model


def data_fingerprint(df: pd.DataFrame) -> dict[str, Any]:
    """A fingerprint of the training table: shape, columns and a hash of every value."""
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return {"rows": int(len(df)), "columns": int(df.shape[1]), "sha256": h.hexdigest()}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("mlengineer", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost-cpu", "catboost", "mlflow-skinny",
                "torch"):  # torch where installed: the MLP family's library
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def build_model(result: TrainResult, data: pd.DataFrame, *, name: str, source: str | None = None) -> Model:
    """The Model bundle from a training result, with everything later stages need in its metadata."""
    metadata = {
        "name": name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": source,
        "target": result.config.target,
        "metric": result.metric.name,
        "greater_is_better": result.metric.greater_is_better,
        "validation_score": result.validation_score,
        "split": result.split_strategy,
        "refit_on_all_rows": result.refit,
        "train_seconds": round(result.seconds, 2),
        "timings": result.timings,
        "n_train_rows": result.n_train_rows,
        # rows no fit saw, whose predictions by the final model fit the calibrator and conformal scores
        "calibration_rows_apart": 0 if result.calibration_index is None else int(len(result.calibration_index)),
        "leaderboard": result.leaderboard,
        "ensemble": [{"model": n, "weight": w} for n, _, w in result.predictor.members],
        "findings": [f.model_dump() for f in result.findings],
        "cleaning": result.plan.describe(),
        "feature_importance": builtin_importance(result.encoder, result.predictor),
        "config": result.config.model_dump(),
        "data_fingerprint": data_fingerprint(data),
        "versions": _versions(),
    }
    validation = {}
    if result.valid_y is not None and result.valid_pred is not None:
        validation = {"y": result.valid_y, "pred": result.valid_pred}
    model = Model(schema=result.schema, plan=result.plan, encoder=result.encoder, predictor=result.predictor,
                  task=result.task, metadata=metadata, validation=validation)
    _add_uncertainty_and_explanations(model, result, data)
    return model


def _add_uncertainty_and_explanations(model: Model, result: TrainResult, data: pd.DataFrame) -> None:
    """Fit what later stages need from rows the model did not learn from (the probability calibrator and
    the conformal scores, on the validation rows) and explain a sample of training rows (SHAP importance).
    Cheap by design (milliseconds to a second): it comes out of the user's time budget."""
    import time

    start = time.perf_counter()
    if model.validation:
        from ..evaluation.uncertainty import fit_uncertainty

        apart = bool(model.metadata.get("calibration_rows_apart"))
        model.extras.update(fit_uncertainty(model.task.kind, model.validation["y"], model.validation["pred"],
                                            seed=result.config.seed, held_out=apart))
        cal = model.extras.get("calibrator")
        model.metadata["calibration"] = {
            "method": cal.method if cal is not None else "none", "rows": int(len(model.validation["y"])),
            "source": "rows kept apart from every fit" if apart else "out-of-fold predictions of the validation rows"}
    sample = data.sample(min(len(data), 200), random_state=result.config.seed)
    clean = result.plan.apply(sample, training=True)
    X = result.encoder.transform(clean.drop(columns=[result.config.target]))
    left = None if result.deadline is None else result.deadline - time.perf_counter()
    if len(X):
        model.extras["background"] = X[:100]  # reference rows for explanations and partial dependence
    if len(X) and left is not None and left < 0.5:
        model.metadata["importance_method"] = "learners' gain/impurity (the time budget left none for SHAP)"
    elif len(X):
        try:
            from ..explain.contributions import is_sampled
            from ..explain.importance import shap_importance

            budget_s = 0.5 if left is None else min(0.5, 0.3 * left)
            model.metadata["feature_importance"] = (shap_importance(model, X, budget_s=budget_s)
                                                    or model.metadata["feature_importance"])
            left_out = [n for n, m, _ in model.predictor.members if is_sampled(m)]
            model.metadata["importance_method"] = "mean |SHAP| on training rows" + (
                f" (without {', '.join(left_out)}: too slow to explain)" if left_out and len(left_out) < len(
                    model.predictor.members) else "")
        except Exception as e:  # an explanation must never cost the user a trained model
            model.metadata["importance_method"] = f"learners' gain/impurity (SHAP failed: {type(e).__name__}: {e})"[:300]
    model.metadata["timings"] = {**model.metadata.get("timings", {}),
                                 "uncertainty_and_explain_s": round(time.perf_counter() - start, 3)}
