"""A table read in chunks, for files larger than memory: memory holds one chunk at a time.

CSV (plain or compressed) is read with pandas in chunks of rows, Parquet by record batches (row groups),
JSON Lines in chunks of lines. Other sources (a JSON array, Excel, a folder of parts) are read whole by
``load_table`` and handed out in slices. Format, compression and CSV dialect are found as ``load_table``
finds them, and column names are tidied the same way.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..errors import DataError, MLEngineerError
from .formats import ODD_BYTES, comma_columns, csv_options, format_of, text_comma_columns
from .load import as_read, check_unique_columns, first_line, load_table, parser_problem
from .parquet_parts import is_pattern
from .sheets import split_sheet

__all__ = ["CHUNK_ROWS", "Chunks", "open_chunks"]

CHUNK_ROWS = 50_000


@dataclass
class Chunks:
    """Chunks of a source with a way to tell progress: ``total`` in ``unit`` (bytes or rows), ``position()``.

    A malformed line found mid-file raises a DataError naming the file and the rows read before it."""

    frames: Iterator[pd.DataFrame]
    total: int | None
    unit: str
    position: Callable[[], int]
    #: how a table read whole was read (``load_table``'s ``df.attrs["source"]``), for what a command says of it
    source: dict[str, Any] = field(default_factory=dict)


class _Counting(io.RawIOBase):
    """A binary file that counts the bytes read from the disk, for a progress bar over compressed files."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.n = 0

    def readinto(self, buf: Any) -> int:
        n = self.f.readinto(buf)  # type: ignore[attr-defined]
        self.n += n or 0
        return n or 0

    def readable(self) -> bool:
        return True


def open_chunks(path: str | Path, *, chunk_rows: int = CHUNK_ROWS, stack: ExitStack,
                marks: dict[str, Any] | None = None) -> Chunks:
    """Chunks of the table at ``path``; files it opens are closed with ``stack``. A workbook's sheet
    (``book.xlsx#Sales``) is read whole. ``marks``: how the training table wrote its numbers (``load_table``)."""
    p, sheet = split_sheet(path)
    if sheet is not None or (not p.exists() and is_pattern(str(p))):  # a sheet, or the files a pattern matches
        return _whole(load_table(path, marks=marks), chunk_rows)
    if not p.exists():
        raise DataError(f"Data file {str(p)!r} does not exist: check the path.")
    if p.is_dir():
        return _whole(load_table(p, marks=marks), chunk_rows)
    if p.stat().st_size == 0:
        raise DataError(f"Data file {str(p)!r} is empty: it holds no rows.")
    try:
        return _open(p, chunk_rows, stack, marks)
    except MLEngineerError:
        raise
    except Exception as e:  # a damaged file breaks its reader at the first bytes (BadGzipFile, ArrowInvalid, ...)
        raise DataError(_damaged(p, e)) from None


def _damaged(path: Path, e: BaseException) -> str:
    return (f"Cannot read {str(path)!r}: {first_line(e).rstrip('.')}; the file is damaged or cut short, or not "
            "the table its name says.")


def _open(p: Path, chunk_rows: int, stack: ExitStack, marks: dict[str, Any] | None = None) -> Chunks:
    fmt, compression = format_of(p)
    if fmt == "parquet":
        return _parquet(p, chunk_rows, stack)
    if fmt not in ("csv", "jsonl"):
        return _whole(load_table(p, marks=marks), chunk_rows)
    counted = _Counting(stack.enter_context(p.open("rb")))
    text = _decompressed(counted, compression, stack)
    if fmt == "jsonl":
        reader = pd.read_json(io.TextIOWrapper(text, encoding="utf-8-sig"), lines=True, chunksize=chunk_rows,
                              dtype=False, convert_dates=False, precise_float=True)
    else:
        # a byte its encoding cannot read, met after the sniffed sample, is read as load_table reads it
        opts, cells = text_comma_columns({**csv_options(p, compression, marks=marks), "encoding_errors": ODD_BYTES})
        header = opts.get("header", 0)
        reader = pd.read_csv(text, chunksize=chunk_rows, index_col=False, **opts)
        stack.callback(reader.close)
        reader = (comma_columns(c, cells) for c in reader)  # decimal commas a column at a time, as load_table
        if header is None:
            reader = (c.set_axis([f"column_{i + 1}" for i in range(c.shape[1])], axis=1) for c in reader)
    stack.callback(getattr(reader, "close", lambda: None))
    frames = (as_read(c) for c in reader)  # nested values, lists and a trailing delimiter as load_table reads them
    return Chunks(_reported(frames, p), p.stat().st_size, "bytes", lambda: counted.n)


def _decompressed(counted: _Counting, compression: str | None, stack: ExitStack) -> Any:
    """A binary stream of the file's decompressed bytes."""
    if compression == "zstd":
        import zstandard

        return stack.enter_context(zstandard.ZstdDecompressor().stream_reader(counted))  # type: ignore[arg-type]
    if compression in ("gzip", "bz2", "xz"):
        opener: Any = {"gzip": gzip.GzipFile, "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}[compression]
        return stack.enter_context(opener(fileobj=counted) if compression == "gzip" else opener(counted))
    return io.BufferedReader(counted)


def _parquet(path: Path, chunk_rows: int, stack: ExitStack) -> Chunks:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    stack.callback(pf.close)
    check_unique_columns(pf.schema_arrow.names, str(path))
    done = [0]

    def batches() -> Iterator[pd.DataFrame]:
        for batch in pf.iter_batches(batch_size=chunk_rows):
            done[0] += batch.num_rows
            yield as_read(batch.to_pandas())  # nested values, zoned times and durations as load_table reads them

    return Chunks(_reported(batches(), path), pf.metadata.num_rows, "rows", lambda: done[0])


def _whole(df: pd.DataFrame, chunk_rows: int) -> Chunks:
    done = [0]

    def slices() -> Iterator[pd.DataFrame]:
        for start in range(0, len(df), chunk_rows):
            part = df.iloc[start:start + chunk_rows]
            done[0] += len(part)
            yield part

    return Chunks(slices(), len(df), "rows", lambda: done[0], dict(df.attrs.get("source") or {}))


def _reported(frames: Iterator[pd.DataFrame], path: Path) -> Iterator[pd.DataFrame]:
    """``frames``, with a malformed line found mid-file named as the data's fault, not a traceback."""
    rows = 0
    while True:
        try:
            df = next(frames)
        except StopIteration:
            return
        except pd.errors.ParserError as e:
            raise DataError(f"Cannot read {str(path)!r} as CSV: {parser_problem(e)}") from None
        except (UnicodeDecodeError, ValueError) as e:
            if not rows:  # nothing read yet: the file itself is not what its name says
                raise DataError(_damaged(path, e)) from None
            raise DataError(f"{path.name}: cannot read the rows after row {rows:,}: "
                            f"{str(e).splitlines()[0][:200]}.") from None
        except MLEngineerError:
            raise
        except Exception as e:  # decompression breaking off mid-file (EOFError, BadGzipFile, LZMAError, ...)
            raise DataError(_damaged(path, e) if not rows else f"{path.name}: cannot read the rows after row "
                            f"{rows:,}: {first_line(e)}; the file "
                            "is damaged or cut short.") from None
        rows += len(df)
        yield df
