"""A Model from whatever names it: a bundle folder, a registry reference (``models:/NAME@ALIAS``,
``models:/NAME/VERSION``, ``models:/NAME``) or an MLflow run id (the bare 32-digit id, ``runs:/ID`` or
``runs:/ID/model``) whose run recorded the bundle, as ``mlengineer train`` does.

A registered version is checked against the digest the registry recorded for it, as ``serve`` and
``promote`` check it; a run's bundle is read where a local store keeps it (a remote store's is downloaded
once into the cache). Every bundle is checked against its own manifest before anything is unpickled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..bundle.model import Model, load
from ..bundle.store import BUNDLE_SUBDIR
from ..errors import ModelError
from .artifacts import run_model_folder
from .registry import ModelVersionInfo, is_model_ref, load_version, resolve
from .runs import BUNDLE_TAG
from .store import missing_sqlite_store, mlflow_client, shown_uri, store_error

__all__ = ["FORMS", "open_model", "open_registered"]

_RUN = re.compile(r"^(?:runs:/)?([0-9a-f]{32})(/.*)?$")
#: what names a model, for the message that refuses a name that is none of these
_FOLDER = "a bundle folder (written by 'mlengineer train --out')"
_RUN_FORMS = "a run id from 'mlengineer runs' (ID, runs:/ID or runs:/ID/model)"
_REF_FORMS = "a registered version (models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME)"
FORMS = f"{_FOLDER}, {_RUN_FORMS}, or {_REF_FORMS}"


def open_model(spec: str, *, tracking_uri: str | None = None, runs: bool = True) -> Model:
    """The model ``spec`` names now (an alias moves; a folder or a version does not). ``runs`` lets a run id
    name a model too."""
    if is_model_ref(spec):
        return open_registered(spec, tracking_uri=tracking_uri)[1]
    if Path(spec).exists():
        return load(spec)
    m = _RUN.match(spec.strip()) if runs else None
    if m is None:
        what = "nor an MLflow run id nor a registry reference" if runs else "nor a registry reference"
        forms = FORMS if runs else f"{_FOLDER} or {_REF_FORMS}"
        raise ModelError(f"{spec!r} is neither a model bundle folder {what}, and a folder of that name does not "
                         f"exist: pass {forms}.")
    run_id, rest = m.group(1), (m.group(2) or "").strip("/")
    if rest not in ("", "model"):
        raise ModelError(f"{spec!r} names {rest!r} inside run {run_id}, where mlengineer keeps only the model: pass "
                         f"runs:/{run_id}/model (or the bare run id).")
    return _open_run(run_id, tracking_uri)


def open_registered(ref: str, *, tracking_uri: str | None = None) -> tuple[ModelVersionInfo, Model]:
    """The version a registry reference names now and its bundle, refused when its files in the store are not
    the bundle that was registered (the digest the registry recorded differs)."""
    info, _ = resolve(ref, tracking_uri=tracking_uri)
    return info, load_version(info, tracking_uri=tracking_uri)


def _open_run(run_id: str, tracking_uri: str | None) -> Model:
    """The bundle run ``run_id`` recorded, from the run's own artifact folder in a local store, else from a copy
    downloaded once into the cache. A run that ended FAILED or KILLED before its model was whole says so."""
    if missing_sqlite_store(tracking_uri):
        raise ModelError(f"Run {run_id} cannot be looked up: there is no tracking store at "
                         f"{shown_uri(tracking_uri)!r}. Pass the --tracking-uri it was recorded in, or the bundle "
                         "folder instead.")
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        if getattr(e, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise ModelError(f"There is no run {run_id} in the tracking store {shown_uri(tracking_uri)!r}: pass the "
                             "--tracking-uri it was recorded in, or the bundle folder instead.") from None
        raise store_error(e, tracking_uri) from None
    folder = run_model_folder(client, run)
    if folder is None or run.info.status == "KILLED":  # Ctrl-C: a training stopped keeps no model, logged or not
        raise _no_model(run)
    try:
        return load(folder)
    except ModelError:
        if run.info.status in ("FAILED", "KILLED"):  # stopped while its model was being logged: a part of it
            raise _no_model(run) from None
        raise


def _saved_by(folder: str | None, run_id: str) -> bool:
    """Whether ``folder`` holds the bundle run ``run_id`` saved (not a later training's, saved there since)."""
    try:
        meta = json.loads((Path(folder or "") / BUNDLE_SUBDIR / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(folder) and isinstance(meta, dict) and meta.get("run_id") == run_id


def _no_model(run: Any) -> ModelError:
    """Why a run holds no model, in its status's words."""
    run_id, status, tags = run.info.run_id, run.info.status, dict(run.data.tags)
    saved = tags.get(BUNDLE_TAG)
    there = f"; the bundle it saved is at {saved!r}: load that folder" if _saved_by(saved, run_id) else ": train again"
    if status in ("FAILED", "KILLED"):
        return ModelError(f"Run {run_id} ended {status} before it recorded its model{there}.")
    if status in ("RUNNING", "SCHEDULED"):
        return ModelError(f"Run {run_id} is still {status}: a training records its model as it ends{there}.")
    parent = tags.get("mlflow.parentRunId")
    if parent and "mlengineer.task" not in tags:
        return ModelError(f"Run {run_id} is a candidate that the search of training run {parent} tried, not a "
                          f"training: pass {parent} for the model that training kept.")
    return ModelError(f"Run {run_id} recorded no model: it is not a run of 'mlengineer train' (see 'mlengineer runs' "
                      "for those), or its model was deleted.")
