"""The bundle's reference sample: what monitoring compares live rows with, kept as ``reference.parquet``.

Up to ``MAX_ROWS`` training rows drawn at random (the input columns as the user's table had them, and the
target), plus up to ``MAX_ROWS`` of the validation rows with the out-of-sample predictions the trainer made
for them (raw, before the calibrator; ``_ref_pred`` for regression, ``_ref_proba_<i>`` per class index).

    _ref_row     the row's position in the training table
    _ref_drift   True for the random sample drift tests compare with (validation rows that are not in it
                 only serve the performance estimates)

A bundle saved before monitoring existed has no such file: ``load_reference`` then answers None and
monitoring says to retrain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DRIFT", "MAX_ROWS", "PRED", "REFERENCE_FILE", "ROW", "load_reference", "proba_column",
           "sample_reference", "write_reference"]

REFERENCE_FILE = "reference.parquet"
MAX_ROWS = 5_000
ROW, DRIFT, PRED = "_ref_row", "_ref_drift", "_ref_pred"


def proba_column(i: int) -> str:
    return f"_ref_proba_{i}"


def sample_reference(data: pd.DataFrame, *, columns: list[str], rows: np.ndarray | None, pred: np.ndarray | None,
                     candidates: np.ndarray, seed: int = 0, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """The reference frame: a random sample of ``candidates`` (positions of the training rows in ``data``)
    and a sample of the validation rows ``rows`` with their out-of-sample predictions ``pred``."""
    rng = np.random.default_rng(seed)
    drift = np.sort(rng.choice(candidates, size=min(max_rows, len(candidates)), replace=False))
    scored = np.empty(0, dtype=np.int64)
    if rows is not None and pred is not None and len(rows) == len(pred):
        scored = np.sort(rng.choice(len(rows), size=min(max_rows, len(rows)), replace=False))
    keep = np.union1d(drift, np.asarray(rows)[scored] if len(scored) else np.empty(0, dtype=np.int64))
    frame = data.iloc[keep][[c for c in columns if c in data.columns]].reset_index(drop=True)
    frame = frame.apply(_storable)
    frame[ROW] = keep.astype(np.int64)
    frame[DRIFT] = np.isin(keep, drift)
    if len(scored):
        at = np.searchsorted(keep, np.asarray(rows)[scored])
        p = np.asarray(pred, dtype=np.float64)[scored]
        if p.ndim == 1:
            frame[PRED] = np.nan
            frame.loc[at, PRED] = p
        else:
            for i in range(p.shape[1]):
                frame[proba_column(i)] = np.nan
                frame.loc[at, proba_column(i)] = p[:, i]
    return frame


def _storable(s: pd.Series) -> pd.Series:
    """A column Parquet can hold: values of mixed types (numbers and text in one column) as text."""
    if s.dtype != object:
        return s
    kinds = {type(v) for v in s.dropna().tolist()[:10_000]}
    if len(kinds) <= 1:
        return s
    return s.map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))


def write_reference(model: Any, bundle: Path) -> None:
    """Write ``model.reference`` (or the file of the bundle it was loaded from) into the bundle folder."""
    frame = getattr(model, "reference", None)
    if frame is None:
        frame = load_reference(model)
    if frame is not None:
        frame.to_parquet(bundle / REFERENCE_FILE, index=False)


def load_reference(model: Any) -> pd.DataFrame | None:
    """The model's reference sample: kept in memory after training, read from its bundle after loading;
    None for a bundle saved without one."""
    frame = getattr(model, "reference", None)
    if frame is not None:
        return frame
    path = getattr(model, "path", None)
    if path is None:
        return None
    file = Path(path) / "artifacts" / "bundle" / REFERENCE_FILE  # where store.py puts mlengineer's files
    if not file.is_file():
        return None
    frame = pd.read_parquet(file)
    model.reference = frame
    return frame
