"""Batch prediction over files larger than memory: read in chunks, predict each, write each, in order.

The data is read one chunk at a time by ``data.chunks.open_chunks`` (SQL sources are read whole by
``load_table``). The output is CSV, Parquet, JSON or JSON Lines by its suffix, written to a temporary file
beside it and renamed into place only when every row is predicted, so a failure leaves no half-written output.
A classifier's ``prediction_set`` is JSON text in CSV and Parquet (as Spark writes it) and an array in JSON.

``InputNotes`` counts, chunk by chunk as the rows stream past (no second pass), what the server warns of: a
column's categories the model never saw (the server's own check) and numbers far outside the training range
(the server's rule, ``ranges.py``), said afterwards in a line per column.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ..bundle.model import Model
from ..bundle.notes import DateNotes, far_bounds, note_lines, unknown_columns_note
from ..bundle.rows import read_marks
from ..data.chunks import CHUNK_ROWS, open_chunks
from ..data.files import atomic_path, refuse_bundle, refuse_input
from ..data.images import image_root
from ..errors import DataError, MLEngineerError

__all__ = ["InputNotes", "data_folder", "extra_columns_note", "predict_data", "predict_to_file", "sets_as_text",
           "write_predictions"]

_WRITABLE = (".csv", ".parquet", ".pq", ".json", ".jsonl")


class _Writer:
    """Appends frames to one output file of the suffix's format."""

    def __init__(self, path: Path, suffix: str, model: Model | None = None) -> None:
        self.path = path
        self.suffix = suffix
        self.task = model.task if model is not None else None  # CSV text writes its labels as training read them
        self.n = 0
        self._f: IO[str] | None = None
        self._pq: Any = None

    def write(self, df: pd.DataFrame) -> None:
        if self.suffix in (".parquet", ".pq", ".csv"):
            df = sets_as_text(df)
        if self.suffix == ".csv" and self.task is not None and "prediction" in df.columns:
            df = df.assign(prediction=self.task.as_written(df["prediction"]))
            written = getattr(self.task, "written", None)  # the probabilities' columns named alike: proba_TRUE
            if written:
                df = df.rename(columns={f"proba_{c}": f"proba_{w}" for c, w in zip(self.task.classes, written,
                                                                                 strict=True)})
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
                text = _json_ready(df).to_json(orient="records", lines=True, double_precision=15)
                self._f.write(text if not text or text.endswith("\n") else text + "\n")
            else:
                body = _json_ready(df).to_json(orient="records", double_precision=15)[1:-1]
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


class InputNotes:
    """What the rows a batch predicts hold that the model never learnt from, per column, counted chunk by chunk:
    categories it never saw (``RequestValidator``'s check: the schema's categories, a code written with other
    leading zeros being the same one) and numbers far outside the training range (the schema's ``min`` and
    ``max``: beyond it by more than its width, as an Excel percent cell learnt as 0.181 and a CSV's 18.1%).
    ``lines()`` says them, one line a column, a few lines at most."""

    def __init__(self, model: Model) -> None:
        from ..features.encoder import RARE
        from .validation import RequestValidator

        check = RequestValidator(model)
        self.categories, self.twins = check.categories, check.twins
        cats = getattr(model.encoder, "categories_", {})
        #: how the encoder reads a category it does not know: its group of rare values, else a missing value
        self.read_as = {c: "rare" if RARE in cats.get(c, [RARE]) else "missing" for c in self.categories}
        self.ranges: dict[str, tuple[float, float]] = check.ranges  # the server's: one rule (``ranges.py``)
        self.unseen: dict[str, tuple[int, str]] = {}  # column: (rows, an example)
        self.far: dict[str, tuple[int, float]] = {}
        self.dates = DateNotes(model)  # dates far outside the training range, in the same words

    def add(self, df: pd.DataFrame) -> None:
        """Count what the rows of ``df`` (one chunk) hold; each distinct value is read once."""
        from ..data.values import twin_key
        from ..monitoring.columns import prepare

        self.dates.add(df)

        for name, known in self.categories.items():
            s = df.get(name)
            if not isinstance(s, pd.Series):
                continue
            p = prepare(s, "categorical", name=name)
            new = [i for i, k in enumerate(p.categories) if k not in known and twin_key(k, self.twins[name]) is None]
            if new:
                rows = int(np.bincount(p.values[p.values >= 0], minlength=len(p.categories))[new].sum())
                before = self.unseen.get(name, (0, p.categories[new[0]]))
                self.unseen[name] = (before[0] + rows, before[1])
        for name, (low, high) in self.ranges.items():
            s = df.get(name)
            if not isinstance(s, pd.Series):
                continue
            v = prepare(s, "numeric", name=name).values
            lo, hi = far_bounds(low, high)
            far = (v < lo) | (v > hi)
            if far.any():
                count, value = self.far.get(name, (0, float(v[far][0])))
                self.far[name] = (count + int(far.sum()), value)

    def lines(self) -> list[str]:
        """One line a column (at most ``MOST_LINES``, then one counting the rest); none when nothing was found."""
        return [*note_lines(unseen=self.unseen, far=self.far, spans=self.ranges, read_as=self.read_as),
                *self.dates.lines()]


def _json_ready(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``prediction_set`` as lists, so that JSON output holds an array rather than a string."""
    if "prediction_set" not in df.columns:
        return df
    sets = [json.loads(v) if isinstance(v, str) else v for v in df["prediction_set"]]
    return df.assign(prediction_set=pd.Series(sets, index=df.index, dtype=object))


def sets_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``prediction_set`` (a list of labels a row) as JSON text, as CSV, Parquet and Spark
    hold it: one string column whatever the labels' type."""
    if "prediction_set" not in df.columns:
        return df
    sets = [v if isinstance(v, str) else json.dumps(list(v), default=str) for v in df["prediction_set"]]
    return df.assign(prediction_set=pd.Series(sets, index=df.index, dtype=object))


def write_predictions(pred: pd.DataFrame, out: str | Path, model: Model | None = None) -> None:
    """Write a whole table of predictions to ``out`` in the format its suffix names, atomically."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in _WRITABLE:
        raise DataError(f"Cannot write {str(out)!r}: use a name ending in {', '.join(_WRITABLE)}.")
    with atomic_path(out) as tmp:
        writer = _Writer(tmp, suffix, model)
        try:
            writer.write(pred)
        finally:
            writer.close()


def predict_to_file(model: Model, data: str | Path, out: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                    interval: float | None = None,
                    progress: Callable[[int, int | None, str, int], None] | None = None,
                    notes: InputNotes | None = None) -> int:
    """Predict every row of ``data`` into ``out``, one chunk at a time; the number of rows written.

    ``progress(position, total, unit, rows)`` is called after each chunk; ``notes`` (``InputNotes(model)``)
    counts what the rows hold that the model never learnt from (``notes.lines()`` says it)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in _WRITABLE:
        raise DataError(f"Cannot write {str(out)!r}: use a name ending in {', '.join(_WRITABLE)}.")
    with ExitStack() as stack:
        chunks = open_chunks(data, chunk_rows=chunk_rows, stack=stack, marks=read_marks(model.metadata))
        stack.enter_context(image_root(data_folder(data)))  # image paths are relative to the table's folder
        with atomic_path(out) as tmp:
            writer = _Writer(tmp, suffix, model)
            try:
                start = 0
                for df in chunks.frames:
                    pred = _predict_chunk(model, df, start, data, interval)
                    if notes is not None:
                        notes.add(df)
                    writer.write(pred)
                    start += len(df)
                    if progress is not None:
                        progress(chunks.position(), chunks.total, chunks.unit, start)
            finally:
                writer.close()
            if writer.n == 0:
                raise DataError(f"Data file {str(data)!r} holds no rows to predict.")
        return writer.n


def data_folder(data: str | Path) -> Path | None:
    """The folder relative image paths in the table ``data`` are read from: its own, or a folder of parts."""
    p = Path(data)
    if "://" in str(data):
        return None
    return p if p.is_dir() else p.parent


def _predict_chunk(model: Model, df: pd.DataFrame, start: int, data: str | Path, interval: float | None) -> pd.DataFrame:
    try:
        return model.predict_frame(df.reset_index(drop=True), interval=interval)
    except MLEngineerError as e:
        row = getattr(e, "row", None)  # the position in the chunk of the value it is about (``at_row``)
        where = (f"{Path(data).name}, row {start + row + 1:,}" if row is not None else
                 f"{Path(data).name}, rows {start + 1:,}-{start + len(df):,}" if start else Path(data).name)
        raise type(e)(f"{where}: {e}") from None


def predict_data(model: Model, data: str | None, out: str | None, *, sql: str | None = None, db: str | None = None,
                 interval: float | None = None, console: Any = None, chunk_rows: int = CHUNK_ROWS,
                 notes_console: Any = None) -> int:
    """What ``mlengineer predict`` does locally: stream a file into ``out`` with a progress bar, or show
    the first predictions when there is no ``out``. SQL sources are read whole. What the rows hold that the
    model never learnt from (``InputNotes``) is said on ``notes_console`` (by default ``console``)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..data.load import load_table
    from ..data.sheets import source_note

    if out:  # as predict --engine spark refuses it, in the same words
        refuse_input(out, data)
        refuse_bundle(out, model.path)
    notes, said = InputNotes(model), notes_console if notes_console is not None else console
    if sql or db:
        df = load_table(data or "", sql=sql, db=db, marks=read_marks(model.metadata))
        _say(console, extra_columns_note(model, list(df.columns)))
        pred = model.predict_frame(df, interval=interval)
        notes.add(df)
        _say_notes(said, notes)
        if out:
            write_predictions(pred, out, model)
            _say(console, f"Wrote {_predictions(len(pred))} to ", (str(out), "bold"), ".")
        elif console is not None:
            _show(console, pred, len(pred))
        return len(pred)
    if not data:
        raise DataError("No data given: pass a file path, or --sql QUERY --db URL.")
    with ExitStack() as stack:
        chunks = open_chunks(data, chunk_rows=50, stack=stack, marks=read_marks(model.metadata))
        first = next(chunks.frames, None)
    if first is None or first.empty:
        raise DataError(f"Data file {data!r} holds no rows to predict.")
    _say(console, source_note(chunks.source))
    _say(console, extra_columns_note(model, list(first.columns)))
    if not out:
        with image_root(data_folder(data)):
            pred = _predict_chunk(model, first, 0, data, interval)
        notes.add(first)
        _say_notes(said, notes)
        if console is not None:
            _show(console, pred, None if len(first) == 50 else len(pred))  # fewer than asked for: all of them
        return len(pred)
    bar = Progress(TextColumn("[bold]predicting"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(),
                   console=console, transient=True, disable=console is None or not console.is_terminal)
    with bar:
        task = bar.add_task("predict", total=None, rows="0")

        def progress(position: int, total: int | None, unit: str, rows: int) -> None:
            bar.update(task, completed=position, total=total, rows=f"{rows:,}")

        n = predict_to_file(model, data, out, chunk_rows=chunk_rows, interval=interval, progress=progress,
                            notes=notes)
    _say_notes(said, notes)
    _say(console, f"Wrote {_predictions(n)} to ", (str(out), "bold"), ".")
    return n


def extra_columns_note(model: Model, columns: list[str]) -> str | None:
    """One line naming the columns of the data the model has never heard of (the server refuses a request
    holding them, in the same words), or None. Columns the model knows but does not use, such as an
    identifier or the target, are left out quietly, as the server leaves them out."""
    # a nested object's own name ('meta' for 'meta.a') is known: its objects, their JSON text or null are read
    known = {c.name for c in model.schema.columns} | {model.target} | set(getattr(model, "nested", ()))
    return unknown_columns_note([str(c) for c in columns if c not in known])


def _predictions(n: int) -> str:
    return f"{n:,} prediction{'' if n == 1 else 's'}"


def _say(console: Any, *parts: Any) -> None:
    """A line of user text on ``console``, printed literally (rich markup off); nothing without a console."""
    from rich.text import Text

    if console is not None and parts and parts[0] is not None:
        console.print(Text.assemble(*parts), highlight=False)


def _say_notes(console: Any, notes: InputNotes) -> None:
    for line in notes.lines():
        _say(console, (line, "yellow"))


def _show(console: Any, pred: pd.DataFrame, total: int | None) -> None:
    console.print(pred.head(50).to_string(index=False), markup=False, highlight=False)
    if total is None:
        console.print("(the first rows only; use --out FILE to predict them all)")
    elif total > 50:
        console.print(f"... {total - 50:,} more rows; use --out FILE to save them all.")
