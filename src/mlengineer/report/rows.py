"""Which rows the report measures on: the labelled rows given (or a sample of them), and how many of them are
rows of the model's training table, found in the bundle's reference sample, so the report never calls rows
"not seen in training" that the model trained on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .summary import share

__all__ = ["rows_words", "trained_rows"]

#: below this share of training rows, the given rows count as unseen (a few exact repeats happen in real data)
SEEN_SHARE = 0.02


def _keys(frame: pd.DataFrame) -> np.ndarray:
    """One hash per row, alike for 70 and 70.0 and for a number read as int or float."""
    cells = {}
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            col = col.astype(float)
        cells[c] = col.astype(object).where(col.notna(), None).map(lambda v: None if v is None else str(v))
    return pd.util.hash_pandas_object(pd.DataFrame(cells), index=False).to_numpy()


def trained_rows(model: Any, data: pd.DataFrame) -> dict[str, Any] | None:
    """How many of the labelled rows ``data`` are exact copies of rows of the model's training table:
    ``{"rows", "share", "exact"}``; ``exact`` when the reference sample holds the whole table (a count, not an
    estimate). None for a bundle without a reference sample."""
    from ..bundle.reference import DRIFT, load_reference

    reference = load_reference(model)
    if reference is None or DRIFT not in reference.columns or not len(data):
        return None
    reference = reference.loc[reference[DRIFT]]
    columns = [c for c in dict.fromkeys([*model.feature_names, model.target])
               if c in reference.columns and c in data.columns]
    if not columns or not len(reference):
        return None
    known = set(_keys(reference[columns]).tolist())
    found = int(sum(k in known for k in _keys(data[columns]).tolist()))
    table = max(int(model.metadata.get("n_train_rows") or 0), len(reference))
    # the reference is a random sample of the table's labelled rows: a training row is in it with that chance
    estimate = min(1.0, found / len(data) * table / len(reference))
    return {"rows": found, "share": estimate, "exact": len(reference) >= table}


def rows_words(noun: str, seen: dict[str, Any] | None, sampled_from: int | None) -> tuple[str, str | None]:
    """What the measured rows are, in words ("customers it had not seen in training"), and a warning for the
    summary's top when many of them are rows the model trained on."""
    sample = f" (a random sample of the {sampled_from:,} given)" if sampled_from else ""
    if seen is None or seen["share"] < SEEN_SHARE:
        return f"{noun} it had not seen in training{sample}", None
    flatter = ("so the numbers below flatter it: a model does better on rows it learnt from. For an honest "
               f"measure, give {noun} that were kept apart from training.")
    if seen["share"] >= 0.999:
        return f"{noun} of its training table{sample}", f"<b>Careful</b>: these are {noun} the model trained on, {flatter}"
    about = "" if seen["exact"] else "about "
    part = f"{about}{share(seen['share'])}"
    return (f"{noun}{sample}, {part} of which are in its training table",
            f"<b>Careful</b>: {part} of these {noun} are copies of {noun} the model trained on, {flatter}")
