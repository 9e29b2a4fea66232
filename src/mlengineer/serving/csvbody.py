"""CSV bodies (MLflow's ``text/csv`` on ``/invocations``) decoded to columns of the values they stand for."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..errors import SchemaError
from .errors import BadRequest

__all__ = ["columns_from_csv"]


def columns_from_csv(body: bytes) -> tuple[dict[str, list[Any]], int]:
    """Columns from a CSV body with a header row (MLflow's ``text/csv``); empty cells are missing.

    Values are read as ``mlengineer predict`` reads a CSV file, each column as pandas infers it (numbers,
    true/false, else text), so ``3.0`` in a column of numbers is the number 3 here as in JSON and in a file,
    and a categorical column learnt from whole numbers takes it as category 3. A row with more or fewer
    fields than the header names columns is refused, naming it (pandas would take a row's extra first field
    as its index and shift every column silently)."""
    import warnings

    import pandas as pd

    if not body.strip():
        return {}, 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows longer than the header
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            df = pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""], index_col=False,
                             low_memory=False)
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError) as e:
        _check_fields(body)  # a row longer than the header is named, rather than pandas' words
        raise BadRequest(f"The body is not CSV with a header row: {str(e).splitlines()[0][:120]}.") from None
    # pandas leaves a row shorter than the header empty at its end, as it leaves an empty last cell: only then
    # is the body read a second time, by the csv module, to tell the two apart
    if len(df.columns) and df[df.columns[-1]].isna().any():
        _check_fields(body)
    return {str(c): [_csv_value(v) for v in df[c].tolist()] for c in df.columns}, len(df)


def _csv_value(v: Any) -> Any:
    """A cell as the JSON value it stands for: NaN (an empty cell) is missing; NumPy scalars are plain."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (type(v) is float and v != v) or type(v).__name__ in ("NAType", "NaTType"):
        return None
    return v


def _check_fields(body: bytes) -> None:
    """Refuse a CSV body whose rows do not all hold as many fields as its header names columns, naming the
    first such row (blank lines are skipped, as pandas skips them)."""
    import csv

    text = body.decode("utf-8", errors="replace")
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows, None)
        if header is None:
            return
        width, row = len(header), 0
        for fields in rows:
            if not fields:
                continue
            row += 1
            if len(fields) != width:
                n = len(fields)
                raise SchemaError(f"CSV row {row} (line {rows.line_num}) has {n} field{'s' if n != 1 else ''} where "
                                  f"the header names {width} columns: give every row one value per column (quote a "
                                  "value that holds a comma).")
    except csv.Error:  # a field beyond the csv module's size limit, say: pandas reads it, and says what is wrong
        return
