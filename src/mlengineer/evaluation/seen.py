"""Which of the labelled rows given to measure a model on are rows it has met already: rows of its training
table (found in its reference sample, by the report and ``evaluate``), or rows ``mlengineer calibrate`` fitted
its calibrator, conformal scores and decision threshold on (their keys are kept in the bundle), so that a
measure on them is said to flatter it, not passed off as an honest test.

    >>> calibration_rows(model, test_frame)     # doctest: +SKIP
    {'rows': 250, 'share': 1.0, 'exact': True}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_KEYS", "MAX_LOOKED_UP", "SEEN_SHARE", "calibration_rows", "keep_calibration_rows", "row_keys", "rows_found"]

#: below this share of rows met before, the given rows count as unseen (a few exact repeats happen in real data)
SEEN_SHARE = 0.02
#: most row keys a calibration keeps in the bundle (of a random sample of its rows beyond): 8 bytes a row
MAX_KEYS = 100_000
#: most of the given rows looked up (a random sample of them beyond: the share found is then an estimate)
MAX_LOOKED_UP = 50_000


def row_keys(frame: pd.DataFrame, *, booleans_as_text: bool = False) -> np.ndarray:
    """One hash per row, alike for 70 and 70.0, for a number read as int or float, and for a yes/no value read
    as true/false in one file and 1/0 in another (True is 1.0). ``booleans_as_text``: hash true/false as their
    text, as the keys a bundle kept before they were numbers."""
    cells = {}
    text = (lambda v: None if v is None else str(v)) if booleans_as_text else _cell_text
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not (booleans_as_text and pd.api.types.is_bool_dtype(col)):
            col = col.astype(float)  # a true/false column is numeric to pandas: 1.0 unless as text
        cells[c] = col.astype(object).where(col.notna(), None).map(text)
    return pd.util.hash_pandas_object(pd.DataFrame(cells), index=False).to_numpy()


def _cell_text(value: Any) -> str | None:
    """A cell as the text its key is made of: a number (a true/false among them) as its float."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float, np.bool_, np.number)):
        return str(float(value))
    return str(value)


def rows_found(known: np.ndarray, data: pd.DataFrame, columns: list[str], *, population: int,
               booleans_as_text: bool = False) -> dict[str, Any]:
    """How many rows of ``data`` (on ``columns``) have a key among ``known``, the keys of a random sample of a
    set of ``population`` rows: ``{"rows", "share", "exact"}``, ``share`` the estimated share of ``data``'s rows
    that are in the whole set, ``exact`` where the sample is the whole set and every row of ``data`` was looked up
    (at most ``MAX_LOOKED_UP``, a random sample beyond): a count, not an estimate. ``booleans_as_text``: the
    keys ``known`` were made so (``row_keys``)."""
    looked_up = data if len(data) <= MAX_LOOKED_UP else data.sample(MAX_LOOKED_UP, random_state=0)
    found = int(np.isin(row_keys(looked_up[columns], booleans_as_text=booleans_as_text), known).sum())
    population = max(int(population), len(known))
    # a row of the set is in the sample with the chance len(known) / population
    estimate = min(1.0, found / len(looked_up) * population / max(len(known), 1))
    return {"rows": round(found * len(data) / len(looked_up)), "share": estimate,
            "exact": len(known) >= population and len(looked_up) == len(data)}


def _columns(model: Any, frame: pd.DataFrame) -> list[str]:
    return [c for c in dict.fromkeys([*model.feature_names, model.target]) if c in frame.columns]


def keep_calibration_rows(model: Any, labelled: pd.DataFrame, *, seed: int = 0) -> None:
    """Keep, in ``model.extras``, the keys of the labelled rows its calibration is fitted on (of at most
    ``MAX_KEYS`` of them, a random sample beyond), so ``calibration_rows`` can tell them again."""
    columns = _columns(model, labelled)
    sample = labelled if len(labelled) <= MAX_KEYS else labelled.sample(MAX_KEYS, random_state=seed)
    model.extras["calibration_rows"] = {"columns": columns, "keys": row_keys(sample[columns]),
                                        "rows": int(len(labelled)), "booleans": "numbers"}


def calibration_rows(model: Any, data: pd.DataFrame) -> dict[str, Any] | None:
    """How many of the labelled rows ``data`` are rows ``mlengineer calibrate`` fitted the model's calibration
    on (``rows_found``'s answer); None where no such rows were kept (a model calibrated on its validation rows,
    or by a version before this was kept) or ``data`` lacks one of their columns."""
    kept = model.extras.get("calibration_rows")
    if not kept or not len(data) or any(c not in data.columns for c in kept["columns"]):
        return None
    return rows_found(kept["keys"], data, list(kept["columns"]), population=kept["rows"],
                      booleans_as_text=kept.get("booleans") != "numbers")
