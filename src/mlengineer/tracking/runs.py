"""Training runs in MLflow: one run per training, one nested run per candidate the search tried.

A training inside a run the caller has open (``with mlflow.start_run():`` in a notebook) is recorded as a run
nested under it, as MLflow nests runs; ``MLFLOW_RUN_ID`` is ignored with a note (see
``store.recording_run`` for why).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MLEngineerError
from .store import (
    check_outer_run,
    default_tracking_uri,
    experiment_id,
    missing_sqlite_store,
    mlflow_module,
    owner_tags,
    recording_run,
    shown_uri,
    store_error,
)

__all__ = ["BUNDLE_TAG", "list_runs", "log_training_run", "prepare_recording"]

log = logging.getLogger(__name__)

#: a training run's tag: the folder its bundle was saved to (before the bundle is logged as the run's model)
BUNDLE_TAG = "mlengineer.bundle"
#: set on every training run from its start: what tells a training nested under a caller's run from a candidate
TASK_TAG = "mlengineer.task"


def prepare_recording(tracking_uri: str | None) -> None:
    """Before training: the store opens (a store that cannot be used is refused now, not after the training),
    a run active in this thread can be the training run's parent, and ``MLFLOW_RUN_ID`` is noted as ignored."""
    check_outer_run(tracking_uri)  # first: a refusal leaves MLflow pointed where the caller had it
    mlflow_module(tracking_uri)
    launcher = os.environ.get("MLFLOW_RUN_ID")
    if launcher:
        log.warning("note: MLFLOW_RUN_ID is set: this training is recorded as a run of its own, not into run %s, "
                    "so that 'mlengineer runs' lists it (its tag mlengineer.launcher_run names that run).", launcher[:40])


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
                     run_name: str | None = None, save: Callable[[str], Path | None] | None = None,
                     bundle_at: str | Path | None = None) -> str:
    """Record a training run (params, metrics, leaderboard, findings, the bundle) and return its run id.

    ``model`` is the Model bundle, ``result`` the trainer's TrainResult. ``save(run_id)`` is called inside
    the run, once its id is known, to write the bundle (which records the id) and return its folder; the
    folder is then logged as the run's ``model`` artifact. Each candidate of the search is a nested run with
    its own params, score and timings. The run ends FAILED on an error, KILLED on Ctrl-C; ``bundle_at``, the
    folder ``save`` writes to, is a tag from the start (for a run stopped before its model was logged).
    """
    try:
        check_outer_run(tracking_uri)
        mlflow = mlflow_module(tracking_uri)
        exp_id = experiment_id(mlflow, experiment)
        tags = {**owner_tags(), TASK_TAG: result.task.kind, "mlengineer.target": str(result.config.target),
                **({BUNDLE_TAG: str(Path(bundle_at).expanduser().resolve())} if bundle_at is not None else {})}
        with recording_run(mlflow, experiment_id=exp_id, run_name=run_name or model.name, tags=tags) as run:
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
    """One candidate of the search as a nested run, tagged with its process as the training run is (a
    killed process's candidate ends KILLED too)."""
    with recording_run(mlflow, experiment_id=exp_id, run_name=row["model"], tags=owner_tags()):
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
    """The latest ``limit`` trainings of ``experiment`` (its runs that are not a candidate of the search:
    top-level runs, and trainings nested under a caller's run), newest first, as plain dicts."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"--limit must be at least 1; got {limit!r}.")
    uri = tracking_uri or default_tracking_uri()
    if missing_sqlite_store(uri):
        if tracking_uri is None and not os.environ.get("MLFLOW_TRACKING_URI"):
            return []  # a new project: nothing trained here yet
        db = uri.removeprefix("sqlite:///").split("?")[0]
        raise ConfigError(f"There is no tracking store at {shown_uri(uri)!r} ({db!r} does not exist). Train a model "
                          "first ('mlengineer train' records its runs there) or pass the --tracking-uri its runs "
                          "were recorded in.")
    mlflow = mlflow_module(uri)
    try:
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            return []
        client = mlflow.MlflowClient()
        found = {r.info.run_id: r for r in _search(client, exp.experiment_id, "tags.`mlflow.parentRunId` IS NULL", limit)}
        nested = f"tags.`mlflow.parentRunId` IS NOT NULL AND tags.`{TASK_TAG}` IS NOT NULL"
        found.update({r.info.run_id: r for r in _search(client, exp.experiment_id, nested, limit)})
    except Exception as e:
        raise store_error(e, uri) from None
    runs = sorted(found.values(), key=lambda r: (r.info.start_time or 0, r.info.run_id), reverse=True)[:limit]
    return [{"run_id": r.info.run_id, "name": r.info.run_name, "start_time": r.info.start_time,
             "status": r.info.status, "params": dict(r.data.params), "metrics": dict(r.data.metrics),
             "tags": dict(r.data.tags)} for r in runs]


def _search(client: Any, exp_id: str, filter_string: str, limit: int) -> list[Any]:
    """The newest ``limit`` runs that ``filter_string`` selects, page by page."""
    out: list[Any] = []
    token = None
    while len(out) < limit:
        page = client.search_runs([exp_id], filter_string=filter_string, max_results=min(limit - len(out), 1000),
                                  order_by=["attributes.start_time DESC"], page_token=token)
        out.extend(page)
        token = getattr(page, "token", None)
        if not token or not page:
            break
    return out[:limit]
