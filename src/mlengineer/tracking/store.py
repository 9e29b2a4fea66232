"""The tracking store behind every run and registry call: which store, and one handle on MLflow for it.

The default store is a SQLite file, ``./mlruns.db``, with artifacts under ``./mlartifacts``; set
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` to use another. MLflow is imported only when tracking is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["default_tracking_uri", "experiment_id", "mlflow_client", "mlflow_module"]


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def mlflow_module(uri: str | None) -> Any:
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
    mlflow = mlflow_module(uri)
    return mlflow.MlflowClient()


def experiment_id(mlflow: Any, name: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        artifacts = None
        uri = mlflow.get_tracking_uri()
        if uri.startswith("sqlite:///"):
            artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        return str(mlflow.create_experiment(name, artifact_location=artifacts))
    return str(exp.experiment_id)
