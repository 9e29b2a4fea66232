"""Read a table from a file, a folder of parts or a SQL query into a pandas DataFrame.

Formats are chosen from the file name (.csv, .tsv, .txt, .tab, .parquet/.pq, .json, .jsonl/.ndjson, .xlsx/.xlsm),
each optionally compressed (.gz, .zst, .bz2, .xz); a file whose name says nothing is recognised by its first
bytes. Delimited text is sniffed: encoding (UTF-8, UTF-16 by its byte-order mark, Windows-1252, Latin-1),
delimiter, decimal comma, and whether the first row is a header. What was found is kept in
``df.attrs["source"]`` so commands can say how they read the file.

Every failure is a DataError naming the file and what to do; nothing else escapes, whatever the bytes.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, MLEngineerError
from . import formats
from .clock import time_columns
from .formats import FORMATS, ODD_BYTES, SAMPLE_BYTES, SUPPORTED_SUFFIXES, csv_options, format_of, sniff_csv
from .jsontable import CONTAINERS, json_records_frame, plain_cell, read_json_table
from .parquet_parts import is_pattern, matching, parquet_folder_table
from .sheets import SHEET_MARK, read_workbook, renamed_columns, split_sheet
from .sql import read_sql
from .values import plain_times

__all__ = ["MEMORY_SHARE", "SUPPORTED_SUFFIXES", "as_read", "available_memory", "check_unique_columns",
           "describe_source", "first_line", "load_table", "parser_problem", "unread",
           "memory_verdict", "plain_times", "read_bytes_table", "read_sql", "sniff_csv", "tidy_names"]


def load_table(source: str | Path, *, sql: str | None = None, db: str | None = None,
               marks: dict[str, Any] | None = None, **read_kwargs: Any) -> pd.DataFrame:
    """Read ``source`` (a file or a folder of parts), or run ``sql`` against ``db``, into a DataFrame.

    With ``sql`` and no ``db`` the query runs in DuckDB: over ``source`` (as the table ``data``) when given,
    else over whatever files the query names (``SELECT * FROM 'rows.parquet'``). An Excel workbook's sheet is
    named after a '#': ``book.xlsx#Sales`` (the first sheet without one). ``marks``: how a model's training
    file wrote its numbers, which its rows are read by (``sniff_csv``)."""
    if sql is not None or db is not None:
        if not sql:
            raise DataError("--db needs a query: pass --sql \"SELECT ...\" too.")
        if db and source not in (None, ""):
            raise DataError("Pass either a DATA file or --sql with --db, not both.")
        tables = {"data": load_table(source, marks=marks, **read_kwargs)} if not db and source else {}
        df = read_sql(sql, db or None, tables=tables)
        seconds = df.attrs.get("seconds", [])  # DuckDB's intervals, read as seconds by the query
        df = as_read(df)
        if seconds:
            df.attrs.setdefault("source", {}).setdefault("seconds", []).extend(seconds)
        return df
    path, sheet = split_sheet(source)
    if not path.exists() and is_pattern(str(path)):  # 'rows/part-*.csv': the files it matches, as parts
        return _load_parts(matching(str(path)), str(path), None, marks=marks, **read_kwargs)
    if not path.exists():
        raise DataError(f"Data file {str(path)!r} does not exist: check the path.")
    if path.is_dir():
        return _load_folder(path, marks=marks, **read_kwargs)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"Data file {str(path)!r} is empty: it holds no rows.")
        fmt, compression = format_of(path)
        if sheet is not None and fmt != "excel":
            raise DataError(f"{str(path)!r} is {fmt.upper()}, and only Excel workbooks have sheets: drop "
                            f"'{SHEET_MARK}{sheet}' from the name.")
    except OSError as e:
        raise DataError(f"Cannot open {str(path)!r}: {e.strerror or e}.") from None
    except MLEngineerError:
        raise
    except Exception as e:  # its first bytes read as compressed data that then breaks off (EOFError, ...)
        raise DataError(f"Cannot read {str(path)!r}: {first_line(e)}; the file is damaged or cut short, or not "
                        "a table.") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            df, info = _read(path, fmt, compression, sheet, marks, **read_kwargs)
        df = as_read(df)
    except MLEngineerError as e:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {str(e).rstrip('.')}.") from None
    except pd.errors.ParserError as e:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {parser_problem(e)}") from None
    except pd.errors.ParserWarning:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: some rows hold more fields than the header "
                        "names; give every column a name in the first line.") from None
    except MemoryError:
        raise DataError(f"{str(path)!r} does not fit in memory: read a sample, or use --engine spark.") from None
    except Exception as e:  # parsers raise many exception types on junk; none may end in a traceback
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {first_line(e).rstrip('.')}. Check the file's format.") from None
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise DataError(f"Data file {str(path)!r} holds no rows: it needs a header and at least one row.")
    check_unique_columns(df.columns, str(path))
    df.attrs["source"] = {"path": str(path), "format": fmt, **({"compression": compression} if compression else {}),
                          **info, **df.attrs.get("source", {})}
    return df


def describe_source(src: dict[str, Any]) -> list[str]:
    """How a table was read, in words (format, compression, delimiter, encoding, header, parts), from the
    ``source`` record ``load_table`` leaves in ``df.attrs``."""
    how = [str(src["format"]).upper()] if src.get("format") else []
    if src.get("compression"):
        how.append(f"{src['compression']}-compressed")
    if src.get("sheet") is not None:
        how.append(f"sheet {src['sheet']!r}")
    if src.get("header_row"):
        how.append(f"column names from row {src['header_row']}")
    if src.get("delimiter"):
        how.append(f"delimiter {src['delimiter']!r}")
    if src.get("encoding"):
        how.append(f"encoding {src['encoding']}")
    if src.get("decimal") == ",":
        how.append("decimal comma")
    if src.get("header") is False:
        how.append("no header row: columns named column_1, column_2, ...")
    if src.get("parts"):
        how.append(f"{src['parts']} parts")
    if src.get("partial_columns"):  # empty in the parts that lack them
        how.append(f"not in every part: {', '.join(src['partial_columns'][:5])}")
    if src.get("seconds"):
        how.append(f"durations as seconds: {', '.join(src['seconds'][:5])}")
    if src.get("times_of_day"):
        how.append(f"times of day as seconds since midnight: {', '.join(src['times_of_day'][:5])}")
    return how


def first_line(e: BaseException) -> str:
    """An exception's first line of text (its type's name where it has none), at most 200 characters."""
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def parser_problem(e: Exception) -> str:
    """What a CSV parser's error says of the file, in a user's words (a row with too many fields named)."""
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
    if m:
        return (f"line {m[2]} holds {m[3]} fields where the header names {m[1]} columns: fix that row, or quote "
                "fields that contain the delimiter.")
    return f"{first_line(e)}. Check the file's format."


def _read(path: Path, fmt: str, compression: str | None, sheet: str | None, marks: dict[str, Any] | None = None,
          **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    if fmt == "csv":
        return _read_csv(path, compression, marks, **kw)
    if fmt in ("parquet", "excel") and compression:
        raise DataError(f"{fmt.title()} files are compressed inside; do not compress them again")
    if fmt == "parquet":
        return _read_parquet(path, **kw), {}
    if fmt in ("json", "jsonl"):
        return read_json_table(path, fmt, compression, **kw), {}
    if fmt == "excel":
        if path.suffix.lower() == ".xls":
            raise DataError("old .xls workbooks are not supported: save the sheet as .xlsx or CSV")
        return read_workbook(path, sheet, **kw)
    raise DataError(f"unsupported format {fmt}")


def _read_csv(path: Path | io.BytesIO, compression: str | None, marks: dict[str, Any] | None = None,
              **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    sample = None
    if isinstance(path, Path):
        sample = formats.read_sample(path, compression)  # read once: sniffed here, and the true/false spellings below
        opts = csv_options(path, compression, sample, marks)
    elif compression == "gzip":
        with gzip.GzipFile(fileobj=io.BytesIO(path.getvalue())) as f:
            opts = sniff_csv(f.read(SAMPLE_BYTES), ".csv")
    else:
        opts = sniff_csv(path.getvalue()[:SAMPLE_BYTES], ".csv")
    info = {"delimiter": opts["sep"], "encoding": opts["encoding"], "header": opts.get("header", 0) == 0}
    if "decimal" in opts:
        info["decimal"] = opts["decimal"]
    opts.update(kw)
    opts = {"compression": compression, "low_memory": False, "index_col": False, **opts}
    try:
        df = formats.read_csv_table(path, opts, sample)  # decimal commas a column at a time
    except UnicodeDecodeError:  # the sample decoded but a later byte did not: read such bytes as chunks do
        if isinstance(path, io.BytesIO):
            path.seek(0)
        opts["encoding_errors"] = ODD_BYTES
        info["encoding"] = f"{opts['encoding']} (a few bytes as cp1252)"
        df = formats.read_csv_table(path, opts, sample)  # decimal commas a column at a time
    except pd.errors.EmptyDataError:
        raise DataError("the file holds no columns") from None
    if opts.get("header", 0) is None:
        df.columns = [f"column_{i + 1}" for i in range(df.shape[1])]
    elif renamed := _renamed_duplicates(df, path, opts):
        info["renamed_columns"] = renamed  # the audit says so: pandas renames a repeated name without a word
    return df, info


def _renamed_duplicates(df: pd.DataFrame, path: Path | io.BytesIO, opts: dict[str, Any]) -> dict[str, str]:
    """Columns pandas renamed because the header names them twice (``age, age`` read as ``age, age.1``):
    {new name: the name in the file}. The header is read again only when a name looks renamed."""
    if not any(re.fullmatch(r".+\.\d+", str(c)) for c in df.columns):
        return {}
    if isinstance(path, io.BytesIO):
        path.seek(0)
    raw = pd.read_csv(path, **{**opts, "header": None, "nrows": 1, "dtype": str, "converters": None}).iloc[0].tolist()
    return renamed_columns(list(df.columns), raw)


def _read_parquet(path: Path, **kw: Any) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names  # the footer alone, its file closed again
    twice = next((c for i, c in enumerate(names) if c in names[:i]), None)
    if twice is not None:  # pyarrow's own words for it name a FieldRef
        raise DataError(f"it has two columns named {twice!r}: give each column its own name")
    table = pq.read_table(path, **kw)
    return table.to_pandas()


def tidy_names(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its column names as stripped text; a blank name becomes ``column_N``."""
    df.columns = [str(c).strip() or f"column_{i + 1}" for i, c in enumerate(df.columns)]
    return df


def as_read(df: pd.DataFrame) -> pd.DataFrame:
    """What every reader does to a frame it read, whole or a chunk at a time: ``_tidy``, then ``plain_times``;
    its columns of typed times of day (read as seconds since midnight by their role) are named in its attrs."""
    df = plain_times(_tidy(df))
    if clocks := time_columns(df):
        df.attrs.setdefault("source", {})["times_of_day"] = clocks
    return df


def unread(df: pd.DataFrame) -> bool:
    """Whether a frame handed over holds what ``as_read`` changes: objects or lists, zoned times, durations."""
    return any(isinstance(t, pd.DatetimeTZDtype) or pd.api.types.is_timedelta64_dtype(t) for t in df.dtypes) or any(
        isinstance(v, CONTAINERS) for c in df.columns if df[c].dtype == object for v in df[c].dropna().iloc[:1000])


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Names as stripped text; nested values (from JSON or Parquet) flattened or written as JSON text; empty
    columns left by a trailing delimiter removed."""
    df = tidy_names(df)
    empty_unnamed = [c for c in df.columns if c.startswith("Unnamed: ") and df[c].isna().all()]
    if empty_unnamed:
        df = df.drop(columns=empty_unnamed)
    for c in list(df.columns):
        s = df[c]
        if isinstance(s, pd.DataFrame) or s.dtype != object:
            continue
        filled = s.dropna()
        if len(filled) and filled.map(lambda v: isinstance(v, dict)).all():
            inner = json_records_frame(filled.tolist()).set_axis(filled.index).reindex(s.index)
            inner.columns = [f"{c}.{k}" for k in inner.columns]
            if not set(inner.columns) & set(df.columns):
                at = df.columns.get_loc(c)
                df = pd.concat([df.iloc[:, :at], _tidy(inner), df.iloc[:, at + 1:]], axis=1)
                continue
        probe = filled.iloc[:1000]
        if len(probe) and probe.map(lambda v: isinstance(v, dict | list | tuple | set | np.ndarray | bytes)).any():
            df[c] = s.map(plain_cell)
    return df


def _load_folder(path: Path, **kw: Any) -> pd.DataFrame:
    """Every part in a folder (Spark and Hive write folders like these), as one table."""
    files = sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        and not p.name.endswith(".crc")
    )
    parts = [p for p in files if any(s.lower() in FORMATS for s in p.suffixes)]
    if not parts:
        raise DataError(f"Folder {str(path)!r} holds no CSV, Parquet or JSON parts to read.")
    return _load_parts(parts, str(path), path, **kw)


def _load_parts(parts: list[Path], where: str, folder: Path | None, **kw: Any) -> pd.DataFrame:
    """The ``parts`` (a ``folder``'s, with its hive partitions, or the files a pattern matched) as one table."""
    path = Path(where)
    if all(FORMATS.get(p.suffix.lower()) == "parquet" for p in parts):
        try:
            table, partial = parquet_folder_table(folder if folder is not None else parts)
            df = as_read(table.to_pandas())
        except MLEngineerError:
            raise
        except Exception as e:  # a damaged part
            raise DataError(f"Cannot read the Parquet parts in {str(path)!r}: {first_line(e)}.") from None
        if df.shape[0] == 0 or df.shape[1] == 0:
            raise DataError(f"Folder {where!r} holds no rows." if folder is not None else
                            f"The files {where!r} matches hold no rows.")
        df.attrs["source"] = {"path": str(path), "format": "parquet", "parts": len(parts),
                              **({"partial_columns": partial} if partial else {}), **df.attrs.get("source", {})}
        return df
    frames = [load_table(p, **kw) for p in parts]
    first = frames[0].columns
    for p, f in zip(parts[1:], frames[1:], strict=True):
        if set(f.columns) != set(first):
            extra = sorted(set(f.columns) ^ set(first))[:3]
            raise DataError(
                f"Part {str(p)!r} has other columns than {str(parts[0])!r} ({', '.join(map(repr, extra))}): "
                "every part needs the same header."
            )
    df = pd.concat([f[list(first)] for f in frames], ignore_index=True)
    df.attrs["source"] = {**frames[0].attrs.get("source", {}), "path": str(path), "parts": len(parts)}
    return df


def check_unique_columns(columns: Any, where: str) -> None:
    """A DataError naming ``where`` and the first column name that ``columns`` holds twice, if any."""
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise DataError(f"{where!r} has two columns named {c!r}: give each column its own name.")
        seen.add(c)


def read_bytes_table(data: bytes, fmt: str) -> pd.DataFrame:
    """A table from bytes received over HTTP (CSV or Parquet); used by the server's batch upload."""
    if not data:
        raise DataError("The upload is empty: send a CSV or Parquet file with a header and rows.")
    try:
        if fmt == "parquet":
            df = pd.read_parquet(io.BytesIO(data))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                df, _ = _read_csv(io.BytesIO(data), "gzip" if data[:2] == b"\x1f\x8b" else None)
        df = as_read(df)
    except MLEngineerError as e:
        raise DataError(f"Cannot read the upload as {fmt.upper()}: {str(e).rstrip('.')}.") from None
    except pd.errors.ParserError as e:
        raise DataError(f"Cannot read the upload as {fmt.upper()}: {parser_problem(e)}") from None
    except Exception as e:
        raise DataError(f"Cannot read the upload as {fmt.upper()}: {first_line(e)}.") from None
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataError("The upload holds no rows: it needs a header and at least one row.")
    check_unique_columns(df.columns, "the upload")
    return df


#: a table whose in-memory size passes this share of the memory available is too large to train on in
#: memory: reading takes about 3x the table at its peak, and training needs room for the encoded matrix
MEMORY_SHARE = 0.25
_EXPANSION = {".gz": 4.0, ".zst": 4.0, ".bz2": 5.0, ".xz": 5.0}  # typical ratios of text to its compression


#: bytes a text value takes in a DataFrame at least (an offset and a short string), where a Parquet footer
#: cannot say: dictionary-encoded text is far smaller on disk, even uncompressed, than once read
_MIN_TEXT_BYTES = 12


def _parquet_frame_bytes(meta: Any) -> int:
    """The DataFrame size of a Parquet file, from its footer: 8 bytes a number (pandas widens smaller ones),
    and text at its uncompressed size but no less than ``_MIN_TEXT_BYTES`` a value."""
    total = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            column = group.column(j)
            if column.physical_type in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"):
                total += max(column.total_uncompressed_size, _MIN_TEXT_BYTES * group.num_rows)
            else:
                total += 8 * group.num_rows
    return total


def _in_memory_bytes(path: Path) -> int:
    """About how many bytes the table at ``path`` (a file or a folder of parts) takes once read."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(path).parts)]
    total = 0
    for p in files:
        suffixes = [s.lower() for s in p.suffixes]
        if any(FORMATS.get(s) == "parquet" for s in suffixes):
            try:
                import pyarrow.parquet as pq

                total += _parquet_frame_bytes(pq.ParquetFile(p).metadata)
                continue
            except Exception:
                pass
        ratio = next((_EXPANSION[s] for s in suffixes if s in _EXPANSION), 1.0)
        total += int(p.stat().st_size * ratio)
    return total


def available_memory() -> int | None:
    """Bytes of memory free for use (Linux ``MemAvailable``, else free pages), or None when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_verdict(source: str | Path, *, share: float = MEMORY_SHARE) -> tuple[bool, str]:
    """Whether the table at ``source`` fits in memory to train on, and a sentence that says why not:
    ``(False, "big.parquet takes about 14.2 GiB in memory, more than a quarter of the 22.0 GiB available")``.
    Sources it cannot size (a remote URI, a query) are taken to fit."""
    path = Path(source)
    available = available_memory()
    if not available or not path.exists():
        return True, ""
    need = _in_memory_bytes(path)
    if need <= share * available:
        return True, ""
    gib = 2.0**30
    return False, (f"{path.name} takes about {need / gib:.1f} GiB in memory, more than {share:.0%} of the "
                   f"{available / gib:.1f} GiB available")
