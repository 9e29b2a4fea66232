"""Read a table from a file, a folder of parts or a SQL query into a pandas DataFrame.

Formats are chosen from the file name (.csv, .tsv, .txt, .tab, .parquet/.pq, .json, .jsonl/.ndjson, .xlsx/.xlsm),
each optionally compressed (.gz, .zst, .bz2, .xz); a file whose name says nothing is recognised by its first
bytes. Delimited text is sniffed: encoding (UTF-8, UTF-16 by its byte-order mark, Windows-1252, Latin-1),
delimiter, decimal comma, and whether the first row is a header. What was found is kept in
``df.attrs["source"]`` so commands can say how they read the file.

Every failure is a DataError naming the file and what to do; nothing else escapes, whatever the bytes.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, MLEngineerError
from .sql import read_sql

__all__ = ["SUPPORTED_SUFFIXES", "describe_source", "load_table", "read_bytes_table", "read_sql"]

_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".tab": "csv", ".dat": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel",
}
SUPPORTED_SUFFIXES = tuple(_FORMATS)
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_SAMPLE_BYTES = 1 << 16
_DELIMITERS = (",", ";", "\t", "|")


# -- what a file is ------------------------------------------------------------------------------------------
def _format_of(path: Path) -> tuple[str, str | None]:
    """(format, compression) from the file name, or from its first bytes when the name says nothing."""
    suffixes = [s.lower() for s in path.suffixes if len(s) <= 8]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    with path.open("rb") as f:
        head = f.read(8)
    magic = next((c for m, c in _MAGIC if head.startswith(m)), None)
    if magic and fmt != "parquet":
        compression = magic  # a compressed file whose name does not say so
    if fmt is None:
        if suffixes:
            raise DataError(
                f"Cannot tell the format of {str(path)!r} from its name: use one of "
                f"{', '.join(SUPPORTED_SUFFIXES)} (optionally with .gz, .zst, .bz2 or .xz)."
            )
        fmt = _format_from_content(path, compression, head)
    return fmt, compression


def _format_from_content(path: Path, compression: str | None, head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    first = _sample(path, compression, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if first[:1] in (b"{", b"["):
        return "json"
    return "csv"


def _sample(path: Path, compression: str | None, n: int = _SAMPLE_BYTES) -> bytes:
    """The first ``n`` bytes of the file, decompressed."""
    if compression == "zstd":
        import zstandard

        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as f:
            return bytes(f.read(n))
    opener: Any = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression or "")
    if opener is not None:
        with opener(path, "rb") as f:
            return bytes(f.read(n))
    with path.open("rb") as f:
        return f.read(n)


# -- sniffing delimited text ------------------------------------------------------------------------------
def _decode(sample: bytes) -> tuple[str, str]:
    """(text, encoding) of the sample: a byte-order mark wins, then UTF-8, Windows-1252 and Latin-1."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return sample.decode("utf-16", errors="ignore"), "utf-16"
    if len(sample) >= 4 and sample[1::2].count(0) > 0.4 * len(sample) / 2 and sample[0] != 0:
        return sample.decode("utf-16-le", errors="ignore"), "utf-16-le"  # UTF-16 without a byte-order mark
    utf8 = "utf-8-sig" if sample.startswith(b"\xef\xbb\xbf") else "utf-8"
    for enc in (utf8, "cp1252", "latin-1"):
        try:
            return sample.decode(enc), enc
        except UnicodeDecodeError as e:
            if enc == utf8 and e.start > len(sample) - 4:  # a character cut at the end of the sample
                return sample[: e.start].decode(enc), enc
    return sample.decode("latin-1"), "latin-1"


def _rows(lines: list[str], sep: str) -> list[list[str]]:
    try:
        return list(csv.reader(lines, delimiter=sep))
    except csv.Error:
        return []


def _sniff_delimiter(lines: list[str], suffix: str) -> str:
    """The delimiter that splits the sample's lines into the most consistent number of fields (> 1)."""
    if suffix in (".tsv", ".tab"):
        return "\t"
    best, best_score = ",", (0.0, 0)
    for sep in _DELIMITERS:
        counts = [len(r) for r in _rows(lines, sep) if r]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (round(counts.count(mode) / len(counts), 2), mode)
        if score > best_score:
            best, best_score = sep, score
    return best


def _is_number(v: str) -> bool:
    try:
        float(v.replace(",", "."))
        return True
    except ValueError:
        return False


def _has_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns. A header cell is text; a file whose first row holds
    numbers exactly where the other rows do has no header. Tables that cannot tell (all text) have one."""
    if len(rows) < 2:
        return True
    first, body = rows[0], rows[1:]
    width = min(len(first), max(len(r) for r in body))
    numeric_cols = []
    for j in range(width):
        values = [r[j].strip() for r in body if j < len(r) and r[j].strip()]
        if values and sum(map(_is_number, values)) >= 0.9 * len(values):
            numeric_cols.append(j)
    if not numeric_cols:
        return True
    cells = [first[j].strip() for j in numeric_cols]
    if not all(c and _is_number(c) for c in cells):
        return True
    years = all(re.fullmatch(r"(19|20)\d\d", c) for c in cells) and len(set(cells)) == len(cells) > 1
    return bool(years and len(numeric_cols) == width)  # a wide table whose columns are years


def sniff_csv(sample: bytes, suffix: str = ".csv") -> dict[str, Any]:
    """read_csv options for delimited text whose first bytes are ``sample``."""
    text, encoding = _decode(sample)
    if "\x00" in text:
        raise DataError("it holds binary content, not text")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(text) >= len(sample) - 4 and len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of the sample may be cut in the middle
    lines = lines[:200]
    if not lines:
        raise DataError("it holds no text lines")
    sep = _sniff_delimiter(lines, suffix)
    rows = _rows(lines, sep)
    opts: dict[str, Any] = {"sep": sep, "encoding": encoding}
    if rows and not _has_header(rows):
        opts["header"] = None
    body = [c for r in rows[1:] for c in r]
    if sep == ";" and body and sum(bool(re.fullmatch(r"-?\d+,\d+", c.strip())) for c in body) > 0.1 * len(body):
        opts["decimal"] = ","  # 1,5;2,25: a decimal comma, as spreadsheets write in much of Europe
    if len(lines) > 1 and sum(f"{sep} " in ln for ln in lines) > 0.8 * len(lines):
        opts["skipinitialspace"] = True
    if rows:
        widths = [len(r) for r in rows[1:] if r]
        if widths and "header" not in opts:
            mode = max(set(widths), key=widths.count)
            if mode > len(rows[0]) and widths.count(mode) > 0.9 * len(widths):
                raise DataError(
                    f"the header names {len(rows[0])} columns but the rows hold {mode} fields: add the missing "
                    "column names to the first line"
                )
    return opts


# -- reading -------------------------------------------------------------------------------------------------
def load_table(source: str | Path, *, sql: str | None = None, db: str | None = None, **read_kwargs: Any) -> pd.DataFrame:
    """Read ``source`` (a file or a folder of parts), or run ``sql`` against ``db``, into a DataFrame.

    With ``sql`` and no ``db`` the query runs in DuckDB: over ``source`` (as the table ``data``) when given,
    else over whatever files the query names (``SELECT * FROM 'rows.parquet'``).
    """
    if sql is not None or db is not None:
        if not sql:
            raise DataError("--db needs a query: pass --sql \"SELECT ...\" too.")
        if db:
            if source not in (None, ""):
                raise DataError("Pass either a DATA file or --sql with --db, not both.")
            return read_sql(sql, db)
        tables = {"data": load_table(source, **read_kwargs)} if source not in (None, "") else {}
        return read_sql(sql, None, tables=tables)
    path = Path(source)
    if not path.exists():
        raise DataError(f"Data file {str(path)!r} does not exist: check the path.")
    if path.is_dir():
        return _load_folder(path, **read_kwargs)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"Data file {str(path)!r} is empty: it holds no rows.")
        fmt, compression = _format_of(path)
    except OSError as e:
        raise DataError(f"Cannot open {str(path)!r}: {e.strerror or e}.") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            df, info = _read(path, fmt, compression, **read_kwargs)
        df = _tidy(df)
    except MLEngineerError as e:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {str(e).rstrip('.')}.") from None
    except pd.errors.ParserError as e:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {_parser_problem(e)}") from None
    except pd.errors.ParserWarning:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: some rows hold more fields than the header "
                        "names; give every column a name in the first line.") from None
    except MemoryError:
        raise DataError(f"{str(path)!r} does not fit in memory: read a sample, or use --engine spark.") from None
    except Exception as e:  # parsers raise many exception types on junk; none may end in a traceback
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {_first_line(e)}. Check the file's format.") from None
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise DataError(f"Data file {str(path)!r} holds no rows: it needs a header and at least one row.")
    _check_columns(df, str(path))
    df.attrs["source"] = {"path": str(path), "format": fmt, **({"compression": compression} if compression else {}),
                          **info}
    return df


def describe_source(src: dict[str, Any]) -> list[str]:
    """How a table was read, in words (format, compression, delimiter, encoding, header, parts), from the
    ``source`` record ``load_table`` leaves in ``df.attrs``."""
    how = [str(src["format"]).upper()] if src.get("format") else []
    if src.get("compression"):
        how.append(f"{src['compression']}-compressed")
    if src.get("delimiter"):
        how.append(f"delimiter {src['delimiter']!r}")
    if src.get("encoding"):
        how.append(f"encoding {src['encoding']}")
    if src.get("header") is False:
        how.append("no header row: columns named column_1, column_2, ...")
    if src.get("parts"):
        how.append(f"{src['parts']} parts")
    return how


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _parser_problem(e: Exception) -> str:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
    if m:
        return (f"line {m[2]} holds {m[3]} fields where the header names {m[1]} columns: fix that row, or quote "
                "fields that contain the delimiter.")
    return f"{_first_line(e)}. Check the file's format."


def _read(path: Path, fmt: str, compression: str | None, **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    if fmt == "csv":
        return _read_csv(path, compression, **kw)
    if fmt == "parquet":
        if compression:
            raise DataError("Parquet files are compressed inside; do not compress them again")
        return _read_parquet(path, **kw), {}
    if fmt in ("json", "jsonl"):
        return _read_json(path, fmt, compression, **kw), {}
    if fmt == "excel":
        if compression:
            raise DataError("Excel files are compressed inside; do not compress them again")
        if path.suffix.lower() == ".xls":
            raise DataError("old .xls workbooks are not supported: save the sheet as .xlsx or CSV")
        return pd.read_excel(path, engine="openpyxl", **kw), {}
    raise DataError(f"unsupported format {fmt}")


def _read_csv(path: Path | io.BytesIO, compression: str | None, **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    if isinstance(path, Path):
        sample = _sample(path, compression)
        name_suffixes = [s.lower() for s in path.suffixes]
        suffix = name_suffixes[-2] if compression and len(name_suffixes) > 1 else path.suffix.lower()
    elif compression == "gzip":
        with gzip.GzipFile(fileobj=io.BytesIO(path.getvalue())) as f:
            sample, suffix = f.read(_SAMPLE_BYTES), ".csv"
    else:
        sample, suffix = path.getvalue()[:_SAMPLE_BYTES], ".csv"
    opts = sniff_csv(sample, suffix)
    info = {"delimiter": opts["sep"], "encoding": opts["encoding"], "header": opts.get("header", 0) == 0}
    if "decimal" in opts:
        info["decimal"] = opts["decimal"]
    opts.update(kw)
    opts = {"compression": compression, "low_memory": False, "index_col": False, **opts}
    try:
        df = pd.read_csv(path, **opts)
    except UnicodeDecodeError:  # the sample decoded but a later byte did not
        if isinstance(path, io.BytesIO):
            path.seek(0)
        opts["encoding"] = info["encoding"] = "cp1252" if opts["encoding"] != "cp1252" else "latin-1"
        try:
            df = pd.read_csv(path, **opts)
        except UnicodeDecodeError:
            if isinstance(path, io.BytesIO):
                path.seek(0)
            opts["encoding"] = info["encoding"] = "latin-1"
            df = pd.read_csv(path, **opts)
    except pd.errors.EmptyDataError:
        raise DataError("the file holds no columns") from None
    if opts.get("header", 0) is None:
        df.columns = [f"column_{i + 1}" for i in range(df.shape[1])]
    return df, info


def _read_parquet(path: Path, **kw: Any) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(path, **kw)
    return table.to_pandas()


def _read_json(path: Path, fmt: str, compression: str | None, **kw: Any) -> pd.DataFrame:
    head = _sample(path, compression, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    lines = fmt == "jsonl" or (head[:1] == b"{" and re.search(rb"}\s*\n\s*{", _sample(path, compression)) is not None)
    if lines:
        return pd.read_json(path, lines=True, compression=compression, dtype=False, convert_dates=False, **kw)
    raw = _sample(path, compression, n=-1) if compression else path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError("JSON must be UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    return _frame_from_json(data)


def _frame_from_json(data: Any) -> pd.DataFrame:
    """Records ([{...}, ...]), columns ({"a": [...], ...}), or one key holding records ({"data": [...]})."""
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list)}
        if len(lists) == 1 and all(isinstance(r, dict) for r in next(iter(lists.values()))):
            data = next(iter(lists.values()))
        elif lists and len(lists) == len(data) and len({len(v) for v in lists.values()}) == 1:
            return pd.DataFrame(lists)
        elif data and all(isinstance(v, dict) for v in data.values()):
            return pd.DataFrame(data)  # {"col": {"row": value}}, as pandas writes by default
        else:
            raise DataError("expected a list of records, or an object of equal-length columns")
    if not isinstance(data, list) or not data:
        raise DataError("expected a non-empty list of records")
    if not all(isinstance(r, dict) for r in data):
        raise DataError("every record must be a JSON object of column: value")
    return pd.json_normalize(data)


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Names as stripped text; nested values (from JSON or Parquet) flattened or written as JSON text; empty
    columns left by a trailing delimiter removed."""
    df.columns = [str(c).strip() if str(c).strip() else f"column_{i + 1}" for i, c in enumerate(df.columns)]
    empty_unnamed = [c for c in df.columns if c.startswith("Unnamed: ") and df[c].isna().all()]
    if empty_unnamed:
        df = df.drop(columns=empty_unnamed)
    for c in list(df.columns):
        s = df[c]
        if isinstance(s, pd.DataFrame) or s.dtype != object:
            continue
        filled = s.dropna()
        if len(filled) and filled.map(lambda v: isinstance(v, dict)).all():
            inner = pd.json_normalize(filled.tolist()).set_axis(filled.index).reindex(s.index)
            inner.columns = [f"{c}.{k}" for k in inner.columns]
            if not set(inner.columns) & set(df.columns):
                at = df.columns.get_loc(c)
                df = pd.concat([df.iloc[:, :at], _tidy(inner), df.iloc[:, at + 1:]], axis=1)
                continue
        probe = filled.iloc[:1000]
        if len(probe) and probe.map(lambda v: isinstance(v, dict | list | tuple | set | np.ndarray | bytes)).any():
            df[c] = s.map(_plain_cell)
    return df



def _plain_cell(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict | list | tuple | set):
        return json.dumps(list(v) if isinstance(v, set) else v, default=str, sort_keys=True)
    return v


def _load_folder(path: Path, **kw: Any) -> pd.DataFrame:
    """Every part in a folder (Spark and Hive write folders like these), as one table."""
    files = sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        and not p.name.endswith(".crc")
    )
    parts = [p for p in files if any(s.lower() in _FORMATS for s in p.suffixes)]
    if not parts:
        raise DataError(f"Folder {str(path)!r} holds no CSV, Parquet or JSON parts to read.")
    if all(_FORMATS.get(p.suffix.lower()) == "parquet" for p in parts):
        try:
            import pyarrow.dataset as ds

            df = _tidy(ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas())
        except Exception as e:  # parts whose schemas disagree, or a damaged part
            raise DataError(f"Cannot read the Parquet parts in {str(path)!r}: {_first_line(e)}.") from None
        if df.shape[0] == 0 or df.shape[1] == 0:
            raise DataError(f"Folder {str(path)!r} holds no rows.")
        df.attrs["source"] = {"path": str(path), "format": "parquet", "parts": len(parts)}
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


def _check_columns(df: pd.DataFrame, where: str) -> None:
    seen: set[str] = set()
    for c in df.columns:
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
        df = _tidy(df)
    except MLEngineerError as e:
        raise DataError(f"Cannot read the upload as {fmt.upper()}: {str(e).rstrip('.')}.") from None
    except pd.errors.ParserError as e:
        raise DataError(f"Cannot read the upload as {fmt.upper()}: {_parser_problem(e)}") from None
    except Exception as e:
        raise DataError(f"Cannot read the upload as {fmt.upper()}: {_first_line(e)}.") from None
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataError("The upload holds no rows: it needs a header and at least one row.")
    _check_columns(df, "the upload")
    return df
