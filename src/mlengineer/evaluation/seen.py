"""Which of the labelled rows given to measure a model on are rows it has met already: rows of its training
table (found in its reference sample, by the report and ``evaluate``), or rows ``mlengineer calibrate`` fitted
its calibrator, conformal scores and decision threshold on (their keys are kept in the bundle), so that a
measure on them is said to flatter it, not passed off as an honest test. Rows are compared as the model reads
them (``rows_as_read``), so that a file writing a number "$1,234" finds the rows of one that wrote 1234.

    >>> calibration_rows(model, test_frame)     # doctest: +SKIP
    {'rows': 250, 'share': 1.0, 'exact': True}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_KEYS", "MAX_LOOKED_UP", "SEEN_SHARE", "calibration_rows", "keep_calibration_rows", "row_keys",
           "rows_as_read", "rows_found", "target_as_read"]

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


def target_as_read(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its target as the model reads it (the value, or the index of the label), so that an
    outcome written "$314,813" in one file and 314813.0 in another, or "1" and 1, makes one key; as it is
    where ``frame`` lacks the target or the model cannot read it."""
    from ..errors import MLEngineerError

    if model.target not in frame.columns:
        return frame
    s = frame[model.target]
    known = s.notna().to_numpy()
    y = np.full(len(frame), np.nan)
    try:
        y[known] = model.task.encode(s[known])
    except (ValueError, TypeError, MLEngineerError):
        return frame
    return frame.assign(**{model.target: y})


def rows_as_read(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column the model reads as it reads it, so that a row written one way in one file
    and another way in the next makes one key: its features as its cleaning plan reads them when predicting
    ("$1,234", "1,234" and 1234 alike as 1234.0, "12%" as 12.0, a category 3 and "3" alike; a value it cannot
    read as missing), its target as ``target_as_read`` reads it; other columns as they are."""
    from ..data.clean import Conform

    plan = getattr(model, "plan", None)
    conform = next((s for s in getattr(plan, "steps", ()) if isinstance(s, Conform)), None)
    read = {} if conform is None else {
        c: _column_as_read(frame[c], conform.roles[c], conform.datetime_formats.get(c), conform.placeholders_of(c))
        for c in frame.columns if c in conform.roles and c != model.target}
    return target_as_read(model, frame.assign(**read) if read else frame)


def _column_as_read(s: pd.Series, role: str, fmt: str | None, placeholders: frozenset[str]) -> pd.Series:
    """One feature column as the cleaning plan reads it (``conform_values``, not strict), each distinct value
    read once; as it is where a value cannot be read so."""
    from ..data.conform import conform_values
    from ..errors import MLEngineerError

    if role in ("numeric", "boolean") and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s  # numbers already: their keys are of their floats
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    try:
        values = conform_values(np.asarray(uniques, dtype=object), role, fmt, placeholders=placeholders)
    except (ValueError, TypeError, MLEngineerError):
        return s
    table = np.empty(len(values) + 1, dtype=values.dtype)
    table[:-1] = values
    table[-1] = {"f": np.nan, "M": np.datetime64("NaT", "ns")}.get(values.dtype.kind)
    return pd.Series(table[codes], index=s.index, dtype=table.dtype)


def rows_found(known: np.ndarray, data: pd.DataFrame, columns: list[str], *, population: int,
               booleans_as_text: bool = False, model: Any = None, read: str = "rows") -> dict[str, Any]:
    """How many rows of ``data`` (on ``columns``) have a key among ``known``, the keys of a random sample of a
    set of ``population`` rows: ``{"rows", "share", "exact"}``, ``share`` the estimated share of ``data``'s rows
    that are in the whole set, ``exact`` where the sample is the whole set and every row of ``data`` was looked up
    (at most ``MAX_LOOKED_UP``, a random sample beyond): a count, not an estimate. ``booleans_as_text``: the
    keys ``known`` were made so (``row_keys``). ``model``: the keys were made of the rows as it reads them
    (``rows_as_read``), so ``data``'s are read so too; with ``read="target"``, of its target alone as it reads
    it (``target_as_read``: the keys a bundle kept before its features were read too)."""
    looked_up = data if len(data) <= MAX_LOOKED_UP else data.sample(MAX_LOOKED_UP, random_state=0)
    rows = looked_up[columns] if model is None else (
        target_as_read(model, looked_up[columns]) if read == "target" else rows_as_read(model, looked_up[columns]))
    found = int(np.isin(row_keys(rows, booleans_as_text=booleans_as_text), known).sum())
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
    keys = row_keys(rows_as_read(model, sample[columns]))  # as the model reads them ("$3,007": 3007.0)
    model.extras["calibration_rows"] = {"columns": columns, "keys": keys, "rows": int(len(labelled)),
                                        "booleans": "numbers", "target": "as read", "features": "as read"}


def calibration_rows(model: Any, data: pd.DataFrame) -> dict[str, Any] | None:
    """How many of the labelled rows ``data`` are rows ``mlengineer calibrate`` fitted the model's calibration
    on (``rows_found``'s answer); None where no such rows were kept (a model calibrated on its validation rows,
    or by a version before this was kept) or ``data`` lacks one of their columns."""
    kept = model.extras.get("calibration_rows")
    if not kept or not len(data) or any(c not in data.columns for c in kept["columns"]):
        return None
    # keys kept before the rows were read as the model reads them are of the rows as written, those kept before
    # its features were read too of the target alone as it reads it
    return rows_found(kept["keys"], data, list(kept["columns"]), population=kept["rows"],
                      booleans_as_text=kept.get("booleans") != "numbers",
                      model=model if kept.get("target") == "as read" else None,
                      read="rows" if kept.get("features") == "as read" else "target")
