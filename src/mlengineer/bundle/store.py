"""A bundle on disk: writing its files atomically and reading them back.

    MODEL_DIR/
      manifest.json        the SHA-256 of every other file, written last, checked before loading (manifest.py)
      MLmodel, requirements.txt, ...   MLflow's files (a pyfunc flavour whose loader is bundle/pyfunc.py)
      artifacts/bundle/
        schema.json          the Schema contract (column roles and domains)
        cleaning_plan.json   the CleaningPlan contract
        metadata.json        task, metric, scores, leaderboard, data fingerprint, package versions, ...
        estimator.joblib     the fitted FeatureEncoder and predictor (pickled: load only bundles you trust)
        compiled/            faster forms of some models for one row (XGBoost as ONNX: compiled.py)
        validation.npz       the validation rows' truth and predictions, for intervals and calibration
        reference.parquet    a sample of the training rows and validation predictions, for monitoring

A bundle is written to a temporary folder beside its destination and renamed into place, so a failed save
leaves nothing half-written; what a killed save left behind is swept by the next save to the same place. This module knows files, not the Model: it writes what a model hands it and
reads back the parts ``model.load`` assembles.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ..data.clean import CleaningPlan
from ..data.files import staging_dir, sweep_leftovers
from ..data.schema import Schema
from ..errors import ModelError
from ..tasks import Task
from .compiled import attach_compiled, write_compiled
from .flavor import LOADER_MODULE
from .manifest import MANIFEST, verify_manifest, write_manifest
from .reference import write_reference

__all__ = ["BUNDLE_SUBDIR", "FORMAT_VERSION", "StagedBundle", "bundle_dir", "check_destination", "commit_bundle",
           "discard_bundle", "held_interrupts", "read_parts", "stage_bundle", "write_bundle"]

BUNDLE_SUBDIR = Path("artifacts") / "bundle"
FORMAT_VERSION = 2  # 2: manifest.json, and MLflow's flavour by loader module


def write_bundle(model: Any, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``model`` (a Model) as a bundle folder at ``path``, atomically; the resolved path. Whatever stops
    it, Ctrl-C included, leaves the bundle that was there before or the new one, and no staging folder."""
    staged = stage_bundle(model, path, overwrite=overwrite)
    try:
        return commit_bundle(staged)
    finally:
        discard_bundle(staged)


class StagedBundle:
    """A bundle written in full beside its destination (``folder``), not yet moved into place."""

    def __init__(self, work: Path, dest: Path) -> None:
        self.work, self.dest = work, dest
        self.folder = work / "model"


def stage_bundle(model: Any, path: str | Path, *, overwrite: bool = True) -> StagedBundle:
    """``model``'s bundle written in a staging folder beside ``path``, for ``commit_bundle`` to move into place
    (a training records it in its run first) and ``discard_bundle`` to remove; interrupted, it leaves nothing."""
    from .flavor import save_flavor

    dest = check_destination(path, overwrite=overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(dest)
    with held_interrupts():
        staged = StagedBundle(staging_dir(dest), dest)
    try:
        artifacts = staged.work / "artifacts"
        _write_files(model, artifacts / BUNDLE_SUBDIR.name)
        save_flavor(staged.folder, artifacts, model)
        write_manifest(staged.folder)  # last: it covers every file above
    except BaseException:
        discard_bundle(staged)
        raise
    return staged


def commit_bundle(staged: StagedBundle) -> Path:
    """Move a staged bundle into place, replacing the bundle there; Ctrl-C waits for the swap to be done."""
    dest = staged.dest
    with held_interrupts():
        if dest.exists():
            dest.rename(staged.work / "old")  # removed with the staging folder
        staged.folder.rename(dest)
    return dest


def discard_bundle(staged: StagedBundle) -> None:
    """Remove the staging folder (and the bundle it replaced); Ctrl-C waits for it to be gone."""
    with held_interrupts():
        shutil.rmtree(staged.work, ignore_errors=True)


@contextmanager
def held_interrupts() -> Iterator[None]:
    """Ctrl-C (SIGINT) held until the block is done, then acted on as it would have been: for the few steps that
    must not be cut half-way (a swap of folders, the removal of a staging folder). Outside the main thread,
    where Python delivers no signal, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])
        elif caught and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


def check_destination(path: str | Path, *, overwrite: bool = True) -> Path:
    """The resolved ``path`` if a bundle may be saved there, else the ModelError saying why: called before
    training as well, so a wrong --out costs no training time."""
    dest = Path(path).expanduser().resolve()
    if dest.exists() and not overwrite:
        raise ModelError(f"{str(dest)!r} already exists: choose another --out or remove it.")
    if dest.exists() and not dest.is_dir():
        raise ModelError(f"{str(dest)!r} is a file: choose another --out (a folder for the model).")
    if dest.exists() and not (dest / "MLmodel").exists() and any(dest.iterdir()):
        raise ModelError(f"{str(dest)!r} exists and is not a model bundle: choose another --out.")
    parent = next((p for p in dest.parents if p.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK)):
        raise ModelError(f"Cannot write the model to {str(dest)!r}: {str(parent)!r} is not a writable folder.")
    return dest


def _write_files(model: Any, bundle: Path) -> None:
    bundle.mkdir(parents=True)
    model.metadata["compiled"] = write_compiled(model, bundle)  # compiled/*.onnx, each checked against its model
    (bundle / "schema.json").write_text(model.schema.to_json(), encoding="utf-8")
    (bundle / "cleaning_plan.json").write_text(model.plan.to_json(), encoding="utf-8")
    meta = {**model.metadata, "format_version": FORMAT_VERSION, "task": model.task.to_dict()}
    (bundle / "metadata.json").write_text(json.dumps(_jsonable(meta), indent=1), encoding="utf-8")
    joblib.dump({"encoder": model.encoder, "predictor": model.predictor, "extras": model.extras},
                bundle / "estimator.joblib", compress=3)
    if model.validation:
        np.savez_compressed(bundle / "validation.npz", **model.validation)
    write_reference(model, bundle)  # reference.parquet: the training sample monitoring compares with


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
    except (yaml.YAMLError, UnicodeDecodeError):
        spec = None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    pyfunc = (flavors or {}).get("python_function") if isinstance(flavors, dict) else None
    try:
        return path / pyfunc["artifacts"]["bundle"]["path"]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if isinstance(pyfunc, dict) and pyfunc.get("loader_module") == LOADER_MODULE:  # ours, with its files gone
        raise ModelError(f"Model bundle {str(path)!r} is incomplete: {(BUNDLE_SUBDIR / 'metadata.json').as_posix()} "
                         "is missing; restore the bundle from where it came from or retrain it.")
    kinds = ", ".join(str(k) for k in flavors) if isinstance(flavors, dict) and flavors else "none readable"
    raise ModelError(f"{str(path)!r} is an MLflow model (flavours: {kinds}) but not one made by mlengineer, which "
                     "predicts, serves and explains only the folders 'mlengineer train --out' writes: load this one "
                     "with mlflow.pyfunc.load_model, or train a model on your table with mlengineer.")


def read_parts(path: str | Path) -> dict[str, Any]:
    """The parts of the bundle at ``path``: schema, plan, metadata, task, encoder, predictor, extras and
    validation arrays. The manifest is checked before anything is read or unpickled; a folder that is not a
    usable bundle is a ModelError naming the file at fault."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model {str(p)!r} does not exist: pass the folder written by 'mlengineer train --out'.")
    if not p.is_dir():
        raise ModelError(f"{str(p)!r} is a file, not a model bundle folder: pass the folder written by "
                         "'mlengineer train'.")
    if (p / MANIFEST).is_file():
        verify_manifest(p)  # first: a removed MLmodel or metadata.json is named as missing, as any other file
        bundle = bundle_dir(p)
    else:
        bundle = bundle_dir(p)  # a foreign MLflow model is named as such before its missing manifest
        verify_manifest(p)
    where = f"Model bundle {str(p)!r}"
    current = "metadata.json"
    try:
        meta = json.loads((bundle / current).read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise TypeError("metadata.json must hold a JSON object")
        task = Task.from_dict(meta["task"])
        current = "schema.json"
        schema = Schema.from_json((bundle / current).read_text(encoding="utf-8"))
        current = "cleaning_plan.json"
        plan = CleaningPlan.from_json((bundle / current).read_text(encoding="utf-8"))
        current = "estimator.joblib"
        fitted = joblib.load(bundle / current)
        encoder, predictor = fitted["encoder"], fitted["predictor"]
        attach_compiled(predictor, bundle, meta.get("compiled"))
        current = "validation.npz"
        validation = _validation(bundle / current)
    except FileNotFoundError as e:
        raise ModelError(f"{where} is incomplete: {Path(e.filename or current).name} is missing.") from None
    except Exception as e:  # any damage inside a file: name the file, never a traceback
        raise ModelError(f"{where}: {current} cannot be read ({type(e).__name__}: {str(e)[:120]}); it may come "
                         "from another mlengineer version, or be damaged.") from None
    _check_belongs(where, plan, encoder)
    return {"schema": schema, "plan": plan, "encoder": encoder, "predictor": predictor, "task": task,
            "metadata": meta, "validation": validation, "extras": fitted.get("extras"), "path": p.resolve()}


def _validation(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except zipfile.BadZipFile as e:
        raise ValueError(str(e)) from None


def _check_belongs(where: str, plan: CleaningPlan, encoder: Any) -> None:
    """The fitted encoder must read the columns the cleaning plan hands it: an estimator from another bundle
    does not."""
    expected = list(plan.feature_columns)
    got = list(getattr(encoder, "roles_", {}) or [])
    if got and expected and set(got) != set(expected):
        raise ModelError(f"{where}: estimator.joblib was fitted on other columns than its cleaning plan selects "
                         f"({', '.join(got[:4])}... against {', '.join(expected[:4])}...): it belongs to another "
                         "model. Restore the bundle or retrain it.")


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
