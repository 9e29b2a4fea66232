"""Read a table from a file, a folder of parts or a SQL query into a pandas DataFrame.

Formats are chosen from the file name: .csv, .tsv, .txt (delimiter sniffed), .parquet/.pq, .json, .jsonl/
.ndjson, .xlsx/.xls, each optionally compressed with .gz or .zst. Every failure is a DataError naming the
file and what to do.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError

__all__ = ["SUPPORTED_SUFFIXES", "load_table", "read_sql"]

_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".tab": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel",
}
SUPPORTED_SUFFIXES = tuple(_FORMATS)


def _format_of(path: Path) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataError(
            f"Cannot tell the format of {str(path)!r} from its name: use one of "
            f"{', '.join(SUPPORTED_SUFFIXES)} (optionally with .gz or .zst)."
        )
    return fmt, compression


def _open_text_sample(path: Path, compression: str | None, n: int = 65536) -> bytes:
    if compression == "gzip":
        with gzip.open(path, "rb") as f:
            return f.read(n)
    if compression == "zstd":
        import zstandard

        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as f:
            return f.read(n)
    with path.open("rb") as f:
        return f.read(n)


def _sniff_csv(sample: bytes, suffix: str) -> dict[str, Any]:
    """Encoding and delimiter of a delimited text file, from its first bytes."""
    encoding = "utf-8"
    for enc in ("utf-8-sig", "utf-8", "cp1252", "latin-1"):
        try:
            text = sample.decode(enc)
            encoding = enc
            break
        except UnicodeDecodeError as e:
            if e.start > len(sample) - 4:  # a multi-byte character cut at the end of the sample
                text = sample[: e.start].decode(enc, errors="ignore")
                encoding = enc
                break
    if "\x00" in text:
        raise DataError("binary content")
    if suffix == ".tsv":
        return {"sep": "\t", "encoding": encoding}
    lines = text.splitlines()[:50]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    return {"sep": sep, "encoding": encoding}


def load_table(source: str | Path, *, sql: str | None = None, db: str | None = None, **read_kwargs: Any) -> pd.DataFrame:
    """Read ``source`` (a file or a folder of parts), or run ``sql`` against ``db``, into a DataFrame."""
    if sql is not None or db is not None:
        if not (sql and db):
            raise DataError("A SQL source needs both --sql QUERY and --db URL.")
        return read_sql(sql, db)
    path = Path(source)
    if not path.exists():
        raise DataError(f"Data file {str(path)!r} does not exist: check the path.")
    if path.is_dir():
        return _load_folder(path, **read_kwargs)
    fmt, compression = _format_of(path)
    if path.stat().st_size == 0:
        raise DataError(f"Data file {str(path)!r} is empty: it holds no rows.")
    try:
        df = _read(path, fmt, compression, **read_kwargs)
    except DataError as e:
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {e}.") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError, KeyError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {first[:200]}. Check the file's format.") from None
    except Exception as e:  # parsers raise many exception types on junk; none may end in a traceback
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise DataError(f"Cannot read {str(path)!r} as {fmt.upper()}: {first}. Check the file's format.") from None
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise DataError(f"Data file {str(path)!r} holds no rows: it needs a header and at least one row.")
    df.columns = [str(c) for c in df.columns]
    _check_columns(df, str(path))
    return df


def _read(path: Path, fmt: str, compression: str | None, **kw: Any) -> pd.DataFrame:
    if fmt == "csv":
        sniffed = _sniff_csv(_open_text_sample(path, compression), path.suffixes[0].lower() if compression else path.suffix.lower())
        opts = {**sniffed, "compression": compression, "low_memory": False, **kw}
        try:
            return pd.read_csv(path, **opts)
        except UnicodeDecodeError:  # the sample decoded but a later byte did not: fall back to latin-1
            return pd.read_csv(path, **{**opts, "encoding": "latin-1"})
        except pd.errors.EmptyDataError:
            raise DataError("the file holds no columns") from None
    if fmt == "parquet":
        if compression:
            raise DataError("Parquet files are compressed inside; do not compress them again")
        return pd.read_parquet(path, **kw)
    if fmt in ("json", "jsonl"):
        lines = fmt == "jsonl"
        if not lines:
            head = _open_text_sample(path, compression, 4096).lstrip()
            if head[:1] == b"{" and b"\n{" in _open_text_sample(path, compression):
                lines = True  # a .json file holding one object per line
        return pd.read_json(path, lines=lines, compression=compression, **kw)
    if fmt == "excel":
        return pd.read_excel(path, **kw)
    raise DataError(f"unsupported format {fmt}")


def _load_folder(path: Path, **kw: Any) -> pd.DataFrame:
    parts = sorted(
        p for p in path.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and any(s.lower() in _FORMATS for s in p.suffixes)
    )
    if not parts:
        raise DataError(f"Folder {str(path)!r} holds no CSV, Parquet or JSON parts to read.")
    frames = [load_table(p, **kw) for p in parts]
    first = list(frames[0].columns)
    for p, f in zip(parts[1:], frames[1:], strict=True):
        if list(f.columns) != first:
            raise DataError(f"Part {str(p)!r} has other columns than {str(parts[0])!r}: every part needs the same header.")
    return pd.concat(frames, ignore_index=True)


def _check_columns(df: pd.DataFrame, where: str) -> None:
    seen: set[str] = set()
    for c in df.columns:
        if c in seen:
            raise DataError(f"{where!r} has two columns named {c!r}: give each column its own name.")
        seen.add(c)


def read_sql(query: str, url: str, *, chunksize: int = 50_000) -> pd.DataFrame:
    """Run ``query`` against the database at SQLAlchemy ``url`` (or a DuckDB/SQLite file path), in chunks."""
    if "://" not in url:
        p = Path(url)
        if not p.exists():
            raise DataError(f"Database file {url!r} does not exist: pass a path or a SQLAlchemy URL.")
        url = f"duckdb:///{p}" if p.suffix.lower() in (".duckdb", ".ddb") else f"sqlite:///{p}"
    if url.startswith("duckdb:"):
        import duckdb

        try:
            with duckdb.connect(url.split(":///", 1)[-1], read_only=True) as con:
                return con.execute(query).df()
        except duckdb.Error as e:
            raise DataError(f"The query failed on {url!r}: {str(e).splitlines()[0]}") from None
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError, ModuleNotFoundError) as e:
        raise DataError(f"Cannot use the database URL {url!r}: {str(e).splitlines()[0]}.") from None
    try:
        with engine.connect() as con:
            chunks = list(pd.read_sql_query(sa.text(query), con, chunksize=chunksize))
    except sa.exc.OperationalError as e:
        raise DataError(f"Cannot connect to {engine.url.render_as_string(hide_password=True)!r} or run the query: {str(e.orig).splitlines()[0]}") from None
    except sa.exc.SQLAlchemyError as e:
        raise DataError(f"The query failed: {str(getattr(e, 'orig', e)).splitlines()[0]}") from None
    finally:
        engine.dispose()
    if not chunks:
        raise DataError("The query returned no rows.")
    df = pd.concat(chunks, ignore_index=True)
    if df.empty:
        raise DataError("The query returned no rows.")
    return df


def read_bytes_table(data: bytes, fmt: str) -> pd.DataFrame:
    """A table from bytes received over HTTP (CSV or Parquet); used by the server's batch upload."""
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(data))
    return pd.read_csv(io.BytesIO(data))
