"""What the Python face's predicting methods take beside a DataFrame and records: a table file's path, read as
``mlengineer predict`` reads it (the training file's thousands dots and decimal commas included), a numpy array
of the training columns in their order, and a pyarrow Table or RecordBatch."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SchemaError

__all__ = ["as_rows", "read_marks", "recorded_marks"]


def read_marks(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """How training read the numbers of its table file (``data.formats.sniff_csv``'s ``marks``): its decimal
    comma and the columns it read with thousands dots, as the bundle recorded them, and the columns its roles
    read as their text (``written_marks``); None where it recorded none."""
    from ..data.formats import written_marks

    marks = written_marks(metadata.get("read_marks"), (metadata.get("config") or {}).get("column_roles"))
    return dict(marks) if marks else None


def recorded_marks(decimal: str | None, thousands_dots: list[str] | None) -> dict[str, Any]:
    """How a table file wrote its numbers, in the words a bundle records them (``metadata["read_marks"]``): its
    decimal comma and the columns read with thousands dots; empty where it wrote neither."""
    return {**({"decimal": ","} if decimal == "," else {}),
            **({"thousands_dots": list(thousands_dots)} if thousands_dots else {})}


def as_rows(data: Any, features: list[str], metadata: dict[str, Any]) -> Any:
    """``data`` as rows the model reads: a path (str or Path) as the table its file holds, a numpy array as a
    DataFrame of the training columns ``features`` (in that order), a pyarrow Table as its DataFrame; anything
    else as it is."""
    if isinstance(data, str | PathLike):
        from ..data.load import load_table

        return load_table(Path(data), marks=read_marks(metadata))
    if isinstance(data, np.ndarray):
        return _array_rows(data, features)
    if type(data).__module__.startswith("pyarrow") and hasattr(data, "to_pandas") and hasattr(data, "schema"):
        from ..data.load import as_read

        return as_read(data.to_pandas())
    return data


def _array_rows(data: np.ndarray, features: list[str]) -> pd.DataFrame:
    """An array's rows (a 1-D array is one row) as the training columns, in their order."""
    rows = data.reshape(1, -1) if data.ndim == 1 else data
    if rows.ndim != 2 or rows.shape[1] != len(features):
        shape = " x ".join(str(n) for n in data.shape)
        raise SchemaError(f"The array is {shape}; the model reads {len(features)} columns a row, in this order: "
                          f"{', '.join(features[:12])}{', ...' if len(features) > 12 else ''}. Pass an array of "
                          "that many columns, or a DataFrame that names them.")
    if rows.shape[0] == 0:
        raise SchemaError("No rows to predict: the array holds none.")
    return pd.DataFrame(rows, columns=features)
