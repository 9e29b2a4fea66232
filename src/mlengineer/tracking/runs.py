"""MLflow tracking: one run per training, one nested run per candidate the search tried, and the registry.

The default store is a SQLite file, ``./mlruns.db``, with artifacts under ``./mlartifacts``; set
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` to use another. MLflow is imported only when tracking is used.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["default_tracking_uri", "list_runs", "log_training_run", "mlflow_client"]


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def _mlflow(uri: str | None) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_TRACKING_INSECURE_TLS", "false")
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent", "mlflow.store.sql"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import mlflow

    uri = uri or default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:"):
        mlflow.set_registry_uri(uri)
    return mlflow


def mlflow_client(uri: str | None = None) -> Any:
    mlflow = _mlflow(uri)
    return mlflow.MlflowClient()


def _experiment_id(mlflow: Any, name: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        artifacts = None
        uri = mlflow.get_tracking_uri()
        if uri.startswith("sqlite:///"):
            artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        return str(mlflow.create_experiment(name, artifact_location=artifacts))
    return str(exp.experiment_id)


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
                     model_dir: Path | None = None, run_name: str | None = None) -> str:
    """Record a training run (params, metrics, leaderboard, findings, the bundle) and return its run id.

    ``model`` is the Model bundle, ``result`` the trainer's TrainResult. Each candidate of the search is a
    nested run with its own params, score and timings.
    """
    try:
        mlflow = _mlflow(tracking_uri)
        exp_id = _experiment_id(mlflow, experiment)
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name or model.name) as run:
            cfg = result.config.model_dump(exclude={"column_roles", "drop", "keep"})
            mlflow.log_params(_flat_params({**cfg, "task": result.task.kind, "metric": result.metric.name,
                                            "split": result.split_strategy}))
            mlflow.log_metrics({f"valid_{result.metric.name}": result.validation_score,
                                "train_seconds": result.seconds, "n_train_rows": result.n_train_rows})
            mlflow.set_tags({"mlengineer.target": result.config.target, "mlengineer.task": result.task.kind})
            with tempfile.TemporaryDirectory() as tmp:
                t = Path(tmp)
                (t / "leaderboard.json").write_text(json.dumps(result.leaderboard, indent=1, default=str))
                (t / "findings.json").write_text(json.dumps([f.model_dump() for f in result.findings], indent=1))
                mlflow.log_artifacts(tmp, artifact_path="training")
            if model_dir is not None:
                mlflow.log_artifacts(str(model_dir), artifact_path="model")
            for row in result.leaderboard:
                if row["model"] == "ensemble":
                    continue
                with mlflow.start_run(experiment_id=exp_id, run_name=row["model"], nested=True):
                    mlflow.log_params(_flat_params({"family": row["family"], **row["params"]}))
                    metrics = {"fit_seconds": row["fit_s"]}
                    if row["status"] == "ok":
                        metrics[f"valid_{result.metric.name}"] = row["score"]
                        metrics["predict_ms_per_row"] = row["predict_ms_per_row"]
                        if row.get("predict_1row_ms") is not None:
                            metrics["predict_1row_ms"] = row["predict_1row_ms"]
                        if row.get("best_iteration") is not None:
                            metrics["best_iteration"] = row["best_iteration"]
                    if row.get("phase"):
                        mlflow.set_tag("mlengineer.phase", row["phase"])
                    mlflow.log_metrics(metrics)
                    mlflow.set_tag("status", row["status"][:250])
            return str(run.info.run_id)
    except ConfigError:
        raise
    except Exception as e:  # a tracking store that cannot be used must name itself, not crash
        raise ConfigError(f"Cannot record the run in the tracking store {tracking_uri or default_tracking_uri()!r}: "
                          f"{str(e).splitlines()[0][:200]}. Pass --tracking-uri to use another.") from None


def list_runs(*, tracking_uri: str | None = None, experiment: str = "mlengineer", limit: int = 50) -> list[dict[str, Any]]:
    """The latest top-level runs of ``experiment``, newest first, as plain dicts."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return []
    mlflow = _mlflow(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return []
    client = mlflow.MlflowClient()
    runs = client.search_runs([exp.experiment_id], filter_string="", max_results=limit * 20,
                              order_by=["attributes.start_time DESC"])
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
