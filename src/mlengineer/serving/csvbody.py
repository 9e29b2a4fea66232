"""CSV bodies (MLflow's ``text/csv`` on ``/invocations``) decoded to columns of the values they stand for.

The body is read as UTF-8 unless its Content-Type declares another charset (``text/csv; charset=latin-1``:
any text encoding Python knows); an unknown charset is a 415 naming it, and bytes that are not text in the
charset a 400 saying where, and to send UTF-8 or declare the charset."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..errors import MLEngineerError, SchemaError
from .errors import BadRequest, UnsupportedMediaType

__all__ = ["charset_of", "columns_from_csv"]


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header (``text/csv; charset="latin-1"``), or None."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').strip() or None
    return None


def _text_of(body: bytes, charset: str | None) -> str:
    """The body as text, in its declared ``charset`` (UTF-8 where none is declared; a byte-order mark dropped)."""
    import codecs

    name = charset or "utf-8"
    try:
        codec = codecs.lookup(name)
    except LookupError:
        codec = None
    if codec is None or not getattr(codec, "_is_text_encoding", True):  # base64, zlib: codecs, not charsets
        raise UnsupportedMediaType(f"Content-Type charset {_cut(name)!r} is not a text encoding this server knows: "
                                   "send the CSV body in UTF-8 (charset=utf-8), or name its charset as Python does "
                                   "(latin-1, cp1252, utf-16, shift_jis, ...).")
    try:
        return body.decode(codec.name).removeprefix("\ufeff")  # a byte-order mark is no part of the header
    except UnicodeDecodeError as e:
        bad = body[e.start:e.start + 1].hex()
        line = body[:e.start].count(b"\n") + 1
        if charset is None:
            raise BadRequest(f"The CSV body is not UTF-8 text: byte 0x{bad} at line {line} (byte {e.start}) is not "
                             "UTF-8. Send the body in UTF-8, or declare its charset in the Content-Type "
                             "(text/csv; charset=latin-1).") from None
        raise BadRequest(f"The CSV body is not {_cut(name)} text, as its Content-Type says: byte 0x{bad} at line "
                         f"{line} (byte {e.start}) cannot be read in it. Send the body in the charset declared, or "
                         "declare the one it is written in.") from None


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def columns_from_csv(body: bytes, charset: str | None = None) -> tuple[dict[str, list[Any]], int]:
    """Columns from a CSV body with a header row (MLflow's ``text/csv``); empty cells are missing.

    Values are read as ``mlengineer predict`` reads a CSV file, each column as pandas infers it (numbers,
    true/false, else text), so ``3.0`` in a column of numbers is the number 3 here as in JSON and in a file,
    and a categorical column learnt from whole numbers takes it as category 3. A row with more or fewer
    fields than the header names columns is refused, naming it (pandas would take a row's extra first field
    as its index and shift every column silently). ``charset``: the body's, from its Content-Type (None:
    UTF-8)."""
    import warnings

    import pandas as pd

    text = _text_of(body, charset)
    if not text.strip():
        return {}, 0
    opts = _sniffed(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows longer than the header
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], index_col=False,
                             low_memory=False, **opts)
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning) as e:
        _check_fields(text, opts["sep"])  # a row longer than the header is named, rather than pandas' words
        raise BadRequest(f"The body is not CSV with a header row: {str(e).splitlines()[0][:120]}.") from None
    # pandas leaves a row shorter than the header empty at its end, as it leaves an empty last cell: only then
    # is the body read a second time, by the csv module, to tell the two apart
    if len(df.columns) and df[df.columns[-1]].isna().any():
        _check_fields(text, opts["sep"])
    return {str(c): [_csv_value(v) for v in df[c].tolist()] for c in df.columns}, len(df)


def _sniffed(text: str) -> dict[str, Any]:
    """The reading options ``mlengineer predict`` finds for a CSV file that begins as ``text`` does: its
    delimiter (';', tab, '|'), a decimal comma and how its numbers are written; a header row is required."""
    from ..data.formats import SAMPLE_BYTES, sniff_csv

    try:
        found = sniff_csv(text[:SAMPLE_BYTES].encode("utf-8"))
    except MLEngineerError:  # no lines to tell from, say: pandas says what is wrong
        return {"sep": ","}
    return {k: v for k, v in found.items() if k in ("sep", "decimal", "converters", "skipinitialspace")}


def _csv_value(v: Any) -> Any:
    """A cell as the JSON value it stands for: NaN (an empty cell) is missing; NumPy scalars are plain."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (type(v) is float and v != v) or type(v).__name__ in ("NAType", "NaTType"):
        return None
    return v


def _check_fields(text: str, sep: str = ",") -> None:
    """Refuse a CSV body whose rows do not all hold as many fields as its header names columns, naming the
    first such row (blank lines are skipped, as pandas skips them)."""
    import csv

    rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
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
