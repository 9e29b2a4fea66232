"""Batch prediction over files larger than memory: read in chunks, predict each, write each, in order.

CSV (plain or compressed) is read with pandas in chunks of rows, Parquet by record batches (row groups),
JSON Lines in chunks of lines; memory holds one chunk at a time. Other sources (a JSON array, Excel, a
folder of parts, SQL) are read whole by ``load_table`` and predicted chunk by chunk. The output is CSV,
Parquet, JSON or JSON Lines by its suffix, written to a temporary file beside it and renamed into place
only when every row is predicted, so a failure leaves no half-written output.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..bundle.model import Model
from ..data.files import atomic_path
from ..errors import DataError, MLEngineerError

__all__ = ["Chunks", "load_model", "open_chunks", "predict_data", "predict_to_file"]

CHUNK_ROWS = 50_000
_WRITABLE = (".csv", ".parquet", ".pq", ".json", ".jsonl")


def load_model(ref: str, *, tracking_uri: str | None = None) -> Model:
    """A bundle folder, or the version a registry reference (``models:/NAME@ALIAS``) names now."""
    from ..bundle.model import load
    from ..tracking.registry import is_model_ref, resolve

    if is_model_ref(ref):
        _, path = resolve(ref, tracking_uri=tracking_uri)
        return load(path)
    return load(ref)


@dataclass
class Chunks:
    """Chunks of a source with a way to tell progress: ``total`` in ``unit`` (bytes or rows), ``position()``."""

    frames: Iterator[pd.DataFrame]
    total: int | None
    unit: str
    position: Callable[[], int]


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


def _tidy_names(df: pd.DataFrame) -> pd.DataFrame:
    df.columns = [str(c).strip() or f"column_{i + 1}" for i, c in enumerate(df.columns)]
    return df


def open_chunks(path: str | Path, *, chunk_rows: int = CHUNK_ROWS, stack: ExitStack) -> Chunks:
    """Chunks of the table at ``path``; files it opens are closed with ``stack``."""
    from ..data.load import _format_of, _sample, load_table, sniff_csv

    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {str(p)!r} does not exist: check the path.")
    if p.is_dir():
        return _whole(load_table(p), chunk_rows)
    if p.stat().st_size == 0:
        raise DataError(f"Data file {str(p)!r} is empty: it holds no rows.")
    fmt, compression = _format_of(p)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(p)
        stack.callback(pf.close)
        done = [0]

        def batches() -> Iterator[pd.DataFrame]:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                done[0] += batch.num_rows
                yield _tidy_names(batch.to_pandas())

        return Chunks(batches(), pf.metadata.num_rows, "rows", lambda: done[0])
    if fmt not in ("csv", "jsonl"):
        return _whole(load_table(p), chunk_rows)
    raw = stack.enter_context(p.open("rb"))
    counted = _Counting(raw)
    if compression == "zstd":
        import zstandard

        text: Any = stack.enter_context(zstandard.ZstdDecompressor().stream_reader(counted))  # type: ignore[arg-type]
    elif compression in ("gzip", "bz2", "xz"):
        opener: Any = {"gzip": gzip.GzipFile, "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}[compression]
        text = stack.enter_context(opener(fileobj=counted) if compression == "gzip" else opener(counted))
    else:
        text = io.BufferedReader(counted)
    if fmt == "jsonl":
        reader = pd.read_json(io.TextIOWrapper(text, encoding="utf-8-sig"), lines=True, chunksize=chunk_rows,
                              dtype=False, convert_dates=False)
    else:
        suffixes = [s.lower() for s in p.suffixes]
        opts = sniff_csv(_sample(p, compression), suffixes[-2] if compression and len(suffixes) > 1 else p.suffix.lower())
        header = opts.get("header", 0)
        reader = pd.read_csv(text, chunksize=chunk_rows, index_col=False, **opts)
        if header is None:
            reader = (c.set_axis([f"column_{i + 1}" for i in range(c.shape[1])], axis=1) for c in reader)
    stack.callback(getattr(reader, "close", lambda: None))
    return Chunks((_tidy_names(c) for c in reader), p.stat().st_size, "bytes", lambda: counted.n)


def _whole(df: pd.DataFrame, chunk_rows: int) -> Chunks:
    done = [0]

    def slices() -> Iterator[pd.DataFrame]:
        for start in range(0, len(df), chunk_rows):
            part = df.iloc[start:start + chunk_rows]
            done[0] += len(part)
            yield part

    return Chunks(slices(), len(df), "rows", lambda: done[0])


class _Writer:
    """Appends frames to one output file of the suffix's format."""

    def __init__(self, path: Path, suffix: str) -> None:
        self.path = path
        self.suffix = suffix
        self.n = 0
        self._f: IO[str] | None = None
        self._pq: Any = None

    def write(self, df: pd.DataFrame) -> None:
        if self.suffix in (".parquet", ".pq"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._pq is None:
                table = pa.Table.from_pandas(df, preserve_index=False)
                self._pq = pq.ParquetWriter(self.path, table.schema)
            else:
                table = pa.Table.from_pandas(df, schema=self._pq.schema, preserve_index=False)
            self._pq.write_table(table)
        else:
            if self._f is None:
                self._f = self.path.open("w", encoding="utf-8", newline="")
                if self.suffix == ".json":
                    self._f.write("[")
            if self.suffix == ".csv":
                df.to_csv(self._f, index=False, header=self.n == 0)
            elif self.suffix == ".jsonl":
                text = df.to_json(orient="records", lines=True)
                self._f.write(text if not text or text.endswith("\n") else text + "\n")
            else:
                body = df.to_json(orient="records")[1:-1]
                if body:
                    self._f.write(("," if self.n else "") + body)
        self.n += len(df)

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._f is not None:
            if self.suffix == ".json":
                self._f.write("]")
            self._f.close()


def predict_to_file(model: Model, data: str | Path, out: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                    interval: float | None = None,
                    progress: Callable[[int, int | None, str, int], None] | None = None) -> int:
    """Predict every row of ``data`` into ``out``, one chunk at a time; the number of rows written.

    ``progress(position, total, unit, rows)`` is called after each chunk."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in _WRITABLE:
        raise DataError(f"Cannot write {str(out)!r}: use a name ending in {', '.join(_WRITABLE)}.")
    with ExitStack() as stack:
        chunks = open_chunks(data, chunk_rows=chunk_rows, stack=stack)
        with atomic_path(out) as tmp:
            writer = _Writer(tmp, suffix)
            try:
                start = 0
                for df in _reading(chunks.frames, data):
                    pred = _predict_chunk(model, df, start, data, interval)
                    writer.write(pred)
                    start += len(df)
                    if progress is not None:
                        progress(chunks.position(), chunks.total, chunks.unit, start)
            finally:
                writer.close()
            if writer.n == 0:
                raise DataError(f"Data file {str(data)!r} holds no rows to predict.")
        return writer.n


def _predict_chunk(model: Model, df: pd.DataFrame, start: int, data: str | Path, interval: float | None) -> pd.DataFrame:
    try:
        return model.predict_frame(df.reset_index(drop=True), interval=interval)
    except MLEngineerError as e:
        where = f"{Path(data).name}, rows {start + 1:,}-{start + len(df):,}" if start else Path(data).name
        raise type(e)(f"{where}: {e}") from None


def _reading(frames: Iterator[pd.DataFrame], data: str | Path) -> Iterator[pd.DataFrame]:
    """``frames``, with a malformed line found mid-file named as the data's fault, not a traceback."""
    rows = 0
    while True:
        try:
            df = next(frames)
        except StopIteration:
            return
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise DataError(f"{Path(data).name}: cannot read the rows after row {rows:,}: "
                            f"{str(e).splitlines()[0][:200]}.") from None
        rows += len(df)
        yield df


def predict_data(model: Model, data: str | None, out: str | None, *, sql: str | None = None, db: str | None = None,
                 interval: float | None = None, console: Any = None, chunk_rows: int = CHUNK_ROWS) -> int:
    """What ``mlengineer predict`` does locally: stream a file into ``out`` with a progress bar, or show
    the first predictions when there is no ``out``. SQL sources are read whole."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..data.files import write_table
    from ..data.load import load_table

    if sql or db:
        df = load_table(data or "", sql=sql, db=db)
        pred = model.predict_frame(df, interval=interval)
        if out:
            write_table(pred, out)
            if console is not None:
                console.print(f"Wrote {len(pred):,} predictions to [bold]{out}[/].")
        elif console is not None:
            _show(console, pred, len(pred))
        return len(pred)
    if not data:
        raise DataError("No data given: pass a file path, or --sql QUERY --db URL.")
    if not out:
        with ExitStack() as stack:
            first = next(_reading(open_chunks(data, chunk_rows=50, stack=stack).frames, data), None)
        if first is None or first.empty:
            raise DataError(f"Data file {data!r} holds no rows to predict.")
        pred = _predict_chunk(model, first, 0, data, interval)
        if console is not None:
            _show(console, pred, None)
        return len(pred)
    bar = Progress(TextColumn("[bold]predicting"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(),
                   console=console, transient=True, disable=console is None)
    with bar:
        task = bar.add_task("predict", total=None, rows="0")

        def progress(position: int, total: int | None, unit: str, rows: int) -> None:
            bar.update(task, completed=position, total=total, rows=f"{rows:,}")

        n = predict_to_file(model, data, out, chunk_rows=chunk_rows, interval=interval, progress=progress)
    if console is not None:
        console.print(f"Wrote {n:,} predictions to [bold]{out}[/].")
    return n


def _show(console: Any, pred: pd.DataFrame, total: int | None) -> None:
    console.print(pred.head(50).to_string(index=False))
    if total is None:
        console.print("(the first rows only; use --out FILE to predict them all)")
    elif total > 50:
        console.print(f"... {total - 50:,} more rows; use --out FILE to save them all.")
