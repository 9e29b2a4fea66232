"""Training runs in MLflow: one run per training, one nested run per candidate the search tried."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MLEngineerError
from .store import (
    default_tracking_uri,
    experiment_id,
    missing_sqlite_store,
    mlflow_module,
    owner_tags,
    store_error,
)

__all__ = ["list_runs", "log_training_run"]


def _flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in params.items():
        if k.startswith("_"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_params(v, key + "."))
        else:
            out[key] = str(v)[:500]
    return out


def log_training_run(model: Any, result: Any, *, tracking_uri: str | None, experiment: str,
                     run_name: str | None = None, save: Callable[[str], Path | None] | None = None) -> str:
    """Record a training run (params, metrics, leaderboard, findings, the bundle) and return its run id.

    ``model`` is the Model bundle, ``result`` the trainer's TrainResult. ``save(run_id)`` is called inside
    the run, once its id is known, to write the bundle (which records the id) and return its folder; the
    folder is then logged as the run's ``model`` artifact. Each candidate of the search is a nested run with
    its own params, score and timings.
    """
    try:
        mlflow = mlflow_module(tracking_uri)
        exp_id = experiment_id(mlflow, experiment)
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name or model.name, tags=owner_tags()) as run:
            _log_summary(mlflow, result)
            model_dir = _saving(save, str(run.info.run_id))
            if model_dir is not None:
                mlflow.log_artifacts(str(model_dir), artifact_path="model")
            for row in result.leaderboard:
                if row["model"] != "ensemble":
                    _log_candidate(mlflow, exp_id, row, result.metric.name)
            return str(run.info.run_id)
    except _SaveFailed as e:  # the bundle's own error, not the store's: the run is marked FAILED
        raise e.error from None
    except MLEngineerError:
        raise
    except Exception as e:  # a tracking store that cannot be used must name itself, not crash
        raise store_error(e, tracking_uri) from None


class _SaveFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _saving(save: Callable[[str], Path | None] | None, run_id: str) -> Path | None:
    try:
        return save(run_id) if save is not None else None
    except Exception as e:
        raise _SaveFailed(e) from e


def _log_summary(mlflow: Any, result: Any) -> None:
    """The run's params, metrics, tags, leaderboard and findings."""
    cfg = result.config.model_dump(exclude={"column_roles", "drop", "keep"})
    mlflow.log_params(_flat_params({**cfg, "task": result.task.kind, "metric": result.metric.name,
                                    "split": result.split_strategy}))
    mlflow.log_metrics({f"valid_{result.metric.name}": result.validation_score,
                        "train_seconds": result.seconds, "n_train_rows": result.n_train_rows})
    mlflow.set_tags({"mlengineer.target": result.config.target, "mlengineer.task": result.task.kind})
    repro = getattr(result, "reproducibility", None) or {}
    if repro:  # whether a rerun with this seed and budget on this machine repeats the run, and why not
        mlflow.set_tags({"mlengineer.reproducible": str(bool(repro.get("reproducible"))).lower(),
                         "mlengineer.reproducible_why": "; ".join(repro.get("why", []))[:5000] or "-"})
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "leaderboard.json").write_text(json.dumps(result.leaderboard, indent=1, default=str))
        (t / "findings.json").write_text(json.dumps([f.model_dump() for f in result.findings], indent=1))
        mlflow.log_artifacts(tmp, artifact_path="training")


def _log_candidate(mlflow: Any, exp_id: str, row: dict[str, Any], metric: str) -> None:
    """One candidate of the search as a nested run."""
    with mlflow.start_run(experiment_id=exp_id, run_name=row["model"], nested=True):
        mlflow.log_params(_flat_params({"family": row["family"], **row["params"]}))
        metrics = {"fit_seconds": row["fit_s"]}
        if row["status"] == "ok":
            metrics[f"valid_{metric}"] = row["score"]
            metrics["predict_ms_per_row"] = row["predict_ms_per_row"]
            for key in ("predict_1row_ms", "best_iteration"):
                if row.get(key) is not None:
                    metrics[key] = row[key]
        if row.get("phase"):
            mlflow.set_tag("mlengineer.phase", row["phase"])
        mlflow.log_metrics(metrics)
        mlflow.set_tag("status", row["status"][:250])


def list_runs(*, tracking_uri: str | None = None, experiment: str = "mlengineer", limit: int = 50) -> list[dict[str, Any]]:
    """The latest top-level runs of ``experiment``, newest first, as plain dicts."""
    uri = tracking_uri or default_tracking_uri()
    if missing_sqlite_store(uri):
        return []
    mlflow = mlflow_module(uri)
    try:
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            return []
        runs = mlflow.MlflowClient().search_runs([exp.experiment_id], filter_string="", max_results=limit * 20,
                                                 order_by=["attributes.start_time DESC"])
    except Exception as e:
        raise store_error(e, uri) from None
    out = []
    for r in runs:
        if "mlflow.parentRunId" in r.data.tags:
            continue
        out.append({"run_id": r.info.run_id, "name": r.info.run_name, "start_time": r.info.start_time,
                    "status": r.info.status, "params": dict(r.data.params), "metrics": dict(r.data.metrics),
                    "tags": dict(r.data.tags)})
        if len(out) >= limit:
            break
    return out
