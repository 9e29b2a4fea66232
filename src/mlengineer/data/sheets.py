"""Excel workbooks: the sheet a source names (``book.xlsx#Sales``, as spreadsheet links name one), read
through pandas, and which other sheets hold rows, so that taking the first sheet of several is said aloud.

Without a sheet named, the first sheet is read (pandas' and every spreadsheet tool's default);
``source_note`` gives the one line a command prints when other sheets hold rows too.
"""

from __future__ import annotations

import datetime as dt
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError
from .values import detect_datetime_format

__all__ = ["EXCEL_SUFFIXES", "SHEET_MARK", "read_workbook", "renamed_columns", "source_note", "split_sheet"]

SHEET_MARK = "#"
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
#: rows looked at to tell whether another sheet holds a table (a header and a row), so a huge sheet costs
#: no more than a small one
_PEEK_ROWS = 1000


def split_sheet(source: str | Path) -> tuple[Path, str | None]:
    """The file and the sheet a source names: ``book.xlsx#Sales`` is the sheet 'Sales' of book.xlsx. A path
    that exists as written is a file, '#' and all; so is one where no part before a '#' is a file, unless
    that part is named as a workbook (then the workbook is named as missing, not the whole text)."""
    text = str(source)
    path = Path(text)
    if SHEET_MARK not in text or path.exists():
        return path, None
    cuts = [i for i, ch in enumerate(text) if ch == SHEET_MARK]
    for i in cuts:
        if Path(text[:i]).is_file():
            return Path(text[:i]), text[i + 1:]
    for i in cuts:
        if text[:i].lower().endswith(EXCEL_SUFFIXES):
            return Path(text[:i]), text[i + 1:]
    return path, None


def _pick(names: list[str], wanted: str, path: Path) -> str:
    """The sheet of ``names`` that ``wanted`` names: exactly, else alike but for case and surrounding spaces,
    else by its position counted from 1 (``book.xlsx#2``)."""
    if wanted in names:
        return wanted
    alike = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(alike) == 1:
        return alike[0]
    if wanted.strip().isdigit() and 1 <= int(wanted) <= len(names):
        return names[int(wanted) - 1]
    listed = ", ".join(repr(n) for n in names)
    raise DataError(f"it has no sheet {wanted!r}; its sheets are {listed}: name one as "
                    f"{path.name}{SHEET_MARK}{names[0]}")


def _holds_rows(book: Any, name: str) -> bool:
    """Whether sheet ``name`` holds a table: at least two rows with a value (a header and a row)."""
    try:
        rows = book[name].iter_rows(values_only=True)
        filled = sum(1 for row in islice(rows, _PEEK_ROWS) if any(v is not None and v != "" for v in row))
    except Exception:  # a chart sheet or another sheet openpyxl cannot walk holds no table
        return False
    return filled >= 2


def _header_row(df: pd.DataFrame) -> int | None:
    """The row (of the first ten) that names the columns when the sheet's first row does not: a title above
    the table leaves most names blank ('Unnamed: 1', ...), and the names stand in a row of text below."""
    names = [str(c) for c in df.columns]
    if sum(n.startswith("Unnamed: ") for n in names) * 2 <= len(names):
        return None
    used = df.notna().any(axis=0).to_numpy()
    if used.sum() < 2:
        return None
    for i in range(min(10, len(df))):
        cells = df.iloc[i].to_numpy()[used]
        if all(isinstance(v, str) and v.strip() for v in cells):
            return i
    return None


def renamed_columns(columns: list[Any], raw: list[Any]) -> dict[str, str]:
    """Columns pandas renamed because the header names them twice (``age, age`` read as ``age, age.1``):
    {new name: the name in the header ``raw``}; CSV and Excel readers alike."""
    if len(raw) != len(columns):
        return {}
    return {str(new).strip(): str(old).strip() for new, old in zip(columns, raw, strict=True)
            if isinstance(old, str) and str(new).strip() != old.strip() and str(new).startswith(old.strip() + ".")}


#: Excel's day numbers (1927 to 2173) that a date cell holds: read as dates only beside cells typed as dates
_SERIALS = (10_000, 100_000)


def _typed_dates(df: pd.DataFrame, epoch: dt.datetime | None = None) -> pd.DataFrame:
    """Columns where most cells are dates typed as dates and the rest dates typed as text ('01/02/2023'),
    as a spreadsheet often holds them, read as dates: the text in the one format that reads all of it. The
    rest may be day numbers instead (cells that lost their date format, 45002), read as Excel reads them (from
    the workbook's ``epoch``), whatever the column's name and language; numbers alone are never read as dates."""
    for c in df.columns:
        s = df[c]
        if s.dtype != object:
            continue
        filled = s.dropna()
        typed = filled.map(lambda v: isinstance(v, dt.date)).to_numpy(dtype=bool)
        if not typed.any() or typed.all() or typed.mean() < 0.5:
            continue
        rest = filled[~typed]
        parsed = _serial_dates(rest, epoch)
        if parsed is None and rest.map(lambda v: isinstance(v, str)).all():
            text = rest.str.strip()
            fmt = detect_datetime_format(text)
            parsed = None if fmt is None else pd.to_datetime(text, format=fmt, errors="coerce")
        if parsed is None or parsed.isna().any():
            continue
        out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
        out[filled.index[typed]] = pd.to_datetime(filled[typed].map(pd.Timestamp)).to_numpy()
        out[rest.index] = parsed.to_numpy()
        df[c] = out
    return df


def _serial_dates(cells: pd.Series, epoch: dt.datetime | None) -> pd.Series | None:
    """``cells`` (the untyped cells of a column whose cells are mostly typed dates) as dates where every one is
    an Excel day number (``_SERIALS``), as openpyxl reads a cell formatted as a date; else None."""
    from openpyxl.utils.datetime import from_excel

    if epoch is None:
        return None
    low, high = _SERIALS
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high for v in cells):
        return None
    return pd.Series([from_excel(v, epoch) for v in cells], index=cells.index,
                     dtype="datetime64[ns]")


def _parse(book: pd.ExcelFile, sheet: str, **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One sheet as a table, its column names from the first row, or from the row below a title."""
    df = pd.read_excel(book, sheet_name=sheet, **kw)
    info: dict[str, Any] = {}
    header = 0
    if "header" not in kw and (row := _header_row(df)) is not None:
        header = row + 1  # pandas counts the sheet's rows from 0, blank ones included
        df = pd.read_excel(book, sheet_name=sheet, header=header, **kw)
        info["header_row"] = header + 1
    df = _typed_dates(df, getattr(book.book, "epoch", None))
    if "header" not in kw and any("." in str(c) for c in df.columns):
        raw = pd.read_excel(book, sheet_name=sheet, header=None, skiprows=header, nrows=1).iloc[0].tolist()
        if renamed := renamed_columns(list(df.columns), raw):
            info["renamed_columns"] = renamed  # the audit says so, as it does for CSV
    return df, info


def read_workbook(path: Path, sheet: str | None, **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The sheet ``sheet`` of the workbook at ``path`` (the first when None), and what to record of it:
    the sheet read, the row its column names stand in when not the first, columns renamed because the header
    names them twice, and, when the first sheet was taken by default, the other sheets that hold rows."""
    if "sheet_name" in kw:  # a caller of load_table may name it as pandas does
        wanted = kw.pop("sheet_name")
        sheet = None if wanted in (None, 0) else str(wanted)
    with pd.ExcelFile(path, engine="openpyxl") as book:
        names = [str(n) for n in book.sheet_names]
        if not names:
            raise DataError("the workbook holds no sheets")
        chosen = names[0] if sheet is None else _pick(names, sheet, path)
        df, found = _parse(book, chosen, **kw)
        empty = df.shape[0] == 0 or df.shape[1] == 0
        others = [n for n in names if n != chosen and _holds_rows(book.book, n)] if sheet is None or empty else []
    info: dict[str, Any] = {"sheet": chosen, **found}
    if sheet is None and others:
        info["other_sheets"] = others
    if empty:
        hint = (f": the sheet{'s' if len(others) > 1 else ''} {', '.join(map(repr, others))} "
                f"{'hold' if len(others) > 1 else 'holds'} rows; name one as {path.name}{SHEET_MARK}{others[0]}"
                if others else "")
        raise DataError(f"sheet {chosen!r} holds no rows{hint}")
    return df, info


def source_note(source: dict[str, Any]) -> str | None:
    """One line saying that the first sheet of a workbook was read while other sheets hold rows too, from the
    ``source`` record ``load_table`` leaves in ``df.attrs``; None when there is nothing to say."""
    others = source.get("other_sheets")
    if not others:
        return None
    name = Path(str(source.get("path", ""))).name
    listed = ", ".join(repr(n) for n in others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
    sheets = f"the sheet {listed} holds" if len(others) == 1 else f"the sheets {listed} hold"
    return (f"{name}: read its first sheet, {source.get('sheet')!r}; {sheets} rows too (name one as "
            f"{name}{SHEET_MARK}{others[0]} to read it).")
