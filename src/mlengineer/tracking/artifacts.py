"""Where a recorded bundle's files are on this machine: a registered version's, or a training run's.

A local store's artifacts (a folder, ``file://``) are read in place: nothing is copied. A remote store's are
downloaded once into the cache folder (``MLENGINEER_CACHE_DIR``), whole or not at all, without MLflow's
progress bar; the bundle's manifest (and a version's recorded digest) are checked by whoever loads it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..data.files import cache_dir
from ..errors import ModelError
from .store import engine_uri, quiet_downloads

__all__ = ["local_path", "run_model_folder"]


def _local(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


def _downloaded(dest: Path, fetch: Callable[[str], str]) -> Path:
    """``dest`` (a folder holding an MLmodel file), downloaded by ``fetch(folder)`` (which returns the folder it
    wrote) unless an earlier download left it whole; a download cut half-way is never taken for the bundle."""
    if (dest / "MLmodel").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
    try:
        with quiet_downloads():
            got = Path(fetch(str(work)))
        if not (dest / "MLmodel").is_file():  # another process may have put it there meanwhile
            if dest.exists():
                shutil.rmtree(dest, ignore_errors=True)  # an older, broken copy
            got.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def local_path(source: str, *, name: str, version: str, tracking_uri: str | None = None) -> Path:
    """A local folder holding the version's bundle: the artifact folder itself for a local store, else a
    download into the user's cache."""
    local = _local(source)
    if local is not None:
        return local
    import mlflow.artifacts

    uri = engine_uri(tracking_uri) if tracking_uri else None
    return _downloaded(cache_dir() / "registry" / name / version / "model", lambda folder: mlflow.artifacts.
                       download_artifacts(artifact_uri=source, dst_path=folder, tracking_uri=uri))


def run_model_folder(client: Any, run: Any) -> Path | None:
    """The ``model`` folder run ``run`` recorded, read in place where the store keeps its artifacts on this
    machine; None when the run has none."""
    run_id = str(run.info.run_id)
    local = _local(str(run.info.artifact_uri or ""))
    if local is not None:
        return local / "model" if (local / "model" / "MLmodel").is_file() else None
    cached = cache_dir() / "runs" / run_id / "model"
    try:
        if not (cached / "MLmodel").is_file() and "model" not in {Path(a.path).name for a in
                                                                   client.list_artifacts(run_id)}:
            return None
        return _downloaded(cached, lambda folder: client.download_artifacts(run_id, "model", folder))
    except Exception as e:
        text = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ModelError(f"Cannot download the model of run {run_id}: {text}; pass the bundle folder instead.") from None
