"""A bundle on disk: writing its files atomically and reading them back.

    MODEL_DIR/
      MLmodel, requirements.txt, ...   MLflow's files (a pyfunc flavour whose loader is bundle/pyfunc.py)
      artifacts/bundle/
        schema.json          the Schema contract (column roles and domains)
        cleaning_plan.json   the CleaningPlan contract
        metadata.json        task, metric, scores, leaderboard, data fingerprint, package versions, ...
        estimator.joblib     the fitted FeatureEncoder and predictor (pickled: load only bundles you trust)
        validation.npz       the validation rows' truth and predictions, for intervals and calibration

A bundle is written to a temporary folder beside its destination and renamed into place, so a failed save
leaves nothing half-written. This module knows files, not the Model: it writes what a model hands it and
reads back the parts ``model.load`` assembles.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ..data.clean import CleaningPlan
from ..data.schema import Schema
from ..errors import ModelError
from ..tasks import Task

__all__ = ["BUNDLE_SUBDIR", "FORMAT_VERSION", "bundle_dir", "read_parts", "write_bundle"]

BUNDLE_SUBDIR = Path("artifacts") / "bundle"
FORMAT_VERSION = 1


def write_bundle(model: Any, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``model`` (a Model) as a bundle folder at ``path``, atomically; the resolved path."""
    from .flavor import save_flavor

    dest = Path(path).resolve()
    if dest.exists() and not overwrite:
        raise ModelError(f"{str(dest)!r} already exists: choose another --out or remove it.")
    if dest.exists() and not (dest / "MLmodel").exists():
        raise ModelError(f"{str(dest)!r} exists and is not a model bundle: choose another --out.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        artifacts = work / "artifacts"
        _write_files(model, artifacts / BUNDLE_SUBDIR.name)
        staged = work / "model"
        save_flavor(staged, artifacts, model)
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            dest.rename(old)
        staged.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _write_files(model: Any, bundle: Path) -> None:
    bundle.mkdir(parents=True)
    (bundle / "schema.json").write_text(model.schema.to_json(), encoding="utf-8")
    (bundle / "cleaning_plan.json").write_text(model.plan.to_json(), encoding="utf-8")
    meta = {**model.metadata, "format_version": FORMAT_VERSION, "task": model.task.to_dict()}
    (bundle / "metadata.json").write_text(json.dumps(_jsonable(meta), indent=1), encoding="utf-8")
    joblib.dump({"encoder": model.encoder, "predictor": model.predictor, "extras": model.extras},
                bundle / "estimator.joblib", compress=3)
    if model.validation:
        np.savez_compressed(bundle / "validation.npz", **model.validation)


def bundle_dir(path: Path) -> Path:
    """The folder holding mlengineer's files inside an MLflow model folder."""
    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{str(path)!r} is not a model bundle (no MLmodel file): pass a folder written by "
                         "'mlengineer train'.")
    default = path / BUNDLE_SUBDIR
    if (default / "metadata.json").is_file():
        return default
    import yaml

    try:
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
        rel = spec["flavors"]["python_function"]["artifacts"]["bundle"]["path"]
    except (KeyError, TypeError, yaml.YAMLError):
        raise ModelError(f"{str(path)!r} is an MLflow model but not one made by mlengineer.") from None
    return path / rel


def read_parts(path: str | Path) -> dict[str, Any]:
    """The parts of the bundle at ``path``: schema, plan, metadata, task, encoder, predictor, extras and
    validation arrays; a ModelError naming what is wrong when the folder is not a usable bundle."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model {str(p)!r} does not exist: pass the folder written by 'mlengineer train --out'.")
    if not p.is_dir():
        raise ModelError(f"{str(p)!r} is a file, not a model bundle folder: pass the folder written by "
                         "'mlengineer train'.")
    bundle = bundle_dir(p)
    try:
        schema = Schema.from_json((bundle / "schema.json").read_text(encoding="utf-8"))
        plan = CleaningPlan.from_json((bundle / "cleaning_plan.json").read_text(encoding="utf-8"))
        meta = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
        fitted = joblib.load(bundle / "estimator.joblib")
    except FileNotFoundError as e:
        raise ModelError(f"Model bundle {str(p)!r} is incomplete: {Path(e.filename or '').name} is missing.") from None
    except (ValueError, EOFError, OSError, ImportError, AttributeError) as e:
        raise ModelError(f"Model bundle {str(p)!r} cannot be read ({type(e).__name__}: {str(e)[:120]}); "
                         "it may come from another mlengineer version.") from None
    validation = {}
    if (bundle / "validation.npz").is_file():
        with np.load(bundle / "validation.npz", allow_pickle=False) as z:
            validation = {k: z[k] for k in z.files}
    return {"schema": schema, "plan": plan, "encoder": fitted["encoder"], "predictor": fitted["predictor"],
            "task": Task.from_dict(meta["task"]), "metadata": meta, "validation": validation,
            "extras": fitted.get("extras"), "path": p.resolve()}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
