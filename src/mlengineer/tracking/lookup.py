"""A Model from whatever names it: a bundle folder, a registry reference (``models:/NAME@ALIAS``,
``models:/NAME/VERSION``) or an MLflow run id (``runs:/ID`` or the bare 32-digit id) whose run recorded the
bundle, as ``mlengineer train`` does."""

from __future__ import annotations

import re
from pathlib import Path

from ..bundle.model import Model, load
from ..errors import ModelError
from .registry import is_model_ref, resolve
from .store import mlflow_client

__all__ = ["open_model"]

_RUN = re.compile(r"^(runs:/)?([0-9a-f]{32})(/.*)?$")


def open_model(spec: str, *, tracking_uri: str | None = None, runs: bool = True) -> Model:
    """The model ``spec`` names now (an alias moves; a folder or a version does not). ``runs`` lets a run id
    name a model too."""
    if is_model_ref(spec):
        _, path = resolve(spec, tracking_uri=tracking_uri)
        return load(path)
    if not runs or Path(spec).exists():
        return load(spec)
    m = _RUN.match(spec.strip())
    if m is None:
        raise ModelError(f"{spec!r} is neither a model bundle folder nor an MLflow run id: pass the folder written "
                         "by 'mlengineer train --out', or a run id from 'mlengineer runs'.")
    client = mlflow_client(tracking_uri)
    try:
        local = client.download_artifacts(m.group(2), "model")
    except Exception as e:  # the store says why: unknown run, no artifacts
        raise ModelError(f"Cannot get the model of run {m.group(2)!r}: {str(e).splitlines()[0][:200]}. "
                         "Check --tracking-uri, or pass the bundle folder instead.") from None
    return load(local)
