"""Compiled forms of a bundle's models: written at save beside the estimator, attached again at load.

    record = write_compiled(model, bundle_folder)       # compiled/<member>.onnx, and what metadata keeps
    attach_compiled(predictor, bundle_folder, record)   # at load: each compiled member gets its file back

A fitted model that has a faster form for one row (XGBoost's trees as ONNX: ``training/models/xgboost.py``)
offers it by two methods: ``compile(sample)`` gives the form's bytes after checking that it answers like the
model on ``sample`` (encoded training rows) and rows of its own, or None with the reason; ``attach_compiled
(data)`` hands it back after loading. ``compiled_suffix`` names the file's type. Each file is an ordinary
file of the bundle, so the manifest covers it: a changed or missing one refuses the whole bundle. Metadata
(``metadata.json`` under ``compiled``) says for every member whether it is compiled and, if not, why; a
member whose form cannot be used at load (no onnxruntime) answers the native way, with the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..training.ensemble import Bag, Ensemble

__all__ = ["COMPILED_DIR", "attach_compiled", "fitted_members", "write_compiled"]

COMPILED_DIR = "compiled"
_CHECK_ROWS = 200  # encoded training rows each compiled form is checked on, besides its own boundary rows


def fitted_members(predictor: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every fitted model under ``predictor`` with a name for it: an ensemble's members by their names,
    a bag's folds as ``NAME.fold<i>``, a single model as ``model``."""
    if isinstance(predictor, Ensemble):
        out = []
        for name, member, _ in predictor.members:
            out += fitted_members(member, f"{prefix}{name}")
        return out
    if isinstance(predictor, Bag):
        base = prefix or "model"
        return [(f"{base}.fold{i}", m) for i, m in enumerate(predictor.estimator)]
    return [(prefix or "model", predictor)]


def _file_name(key: str, suffix: str) -> str:
    return f"{COMPILED_DIR}/{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}{suffix}"


def write_compiled(model: Any, bundle: Path) -> dict[str, dict[str, Any]]:
    """Compile what can be compiled among ``model``'s members into ``bundle/compiled/``; per member, whether
    it is compiled (engine, rows checked, largest difference) or why not."""
    sample = model.extras.get("background")
    sample = None if sample is None else np.asarray(sample, dtype=np.float32)[:_CHECK_ROWS]
    record: dict[str, dict[str, Any]] = {}
    for key, member in fitted_members(model.predictor):
        compile_ = getattr(member, "compile", None)
        if not callable(compile_):
            family = getattr(member, "family", "") or type(member).__name__
            record[key] = {"compiled": False, "reason": f"the {family} family has no compiled form"}
            continue
        data, info = compile_(sample)
        if data is not None:
            name = _file_name(key, str(getattr(member, "compiled_suffix", "")))
            (bundle / name).parent.mkdir(exist_ok=True)
            (bundle / name).write_bytes(data)
            info = {**info, "file": name}
        record[key] = info
    return record


def attach_compiled(predictor: Any, bundle: Path, record: Any) -> None:
    """Hand each member named in ``record`` (the metadata's ``compiled``) its compiled file from ``bundle``.
    A bundle's files were checked against its manifest before this runs."""
    if not isinstance(record, Mapping):
        return
    for key, member in fitted_members(predictor):
        info = record.get(key)
        attach = getattr(member, "attach_compiled", None)
        name = str(info.get("file") or "") if isinstance(info, Mapping) else ""
        # only a file of the bundle's own compiled/ folder (the manifest covered it)
        if name.startswith(f"{COMPILED_DIR}/") and ".." not in Path(name).parts and callable(attach):
            attach((bundle / name).read_bytes())
