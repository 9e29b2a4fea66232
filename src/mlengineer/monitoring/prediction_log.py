"""The prediction log: every served request's rows and predictions, appended to Parquet files for monitoring.

A request only hands its columns to ``PredictionLog.append`` (a list append under a lock); a background
thread writes what has gathered every few seconds, or sooner when many rows wait, as one Parquet file per
flush and model version. Each file is written beside its final name and renamed into place, so a reader
never sees half a file, and each process writes its own files (the process id is in the name), so several
server workers can log into one folder:

    LOG_DIR/part-20250101T120000-<pid>-000001.parquet

Columns: the model's feature columns as the server validated them (numbers as float64, categories, dates and
text as strings), then ``prediction`` and ``proba_<class>`` for classifiers, then ``_ts`` (UTC time of the
request), ``_row`` (the row's position in its request), ``_request_id``, ``_endpoint``, ``_model`` and
``_version``. ``read_prediction_log`` reads it all
back as one DataFrame.

If the disk cannot keep up, rows beyond ``max_pending_rows`` are dropped (and counted) rather than slowing
requests or growing memory without bound. A request whose rows cannot be written (a value Parquet cannot
hold) is dropped alone and counted, never the other requests of its flush.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PredictionLog", "read_prediction_log"]

log = logging.getLogger("mlengineer.monitoring")
#: requests turned into Arrow at a time: each piece holds the interpreter's lock for well under a millisecond
#: (the whole of 1,250 one-row requests about 4 ms, which the server's event loop would wait out)
CHUNK = 200
_seq = itertools.count(1)


@dataclass
class _Entry:
    ts: float
    request_id: str
    endpoint: str
    model: str
    version: str
    n_rows: int
    columns: Mapping[str, Any]
    outputs: Mapping[str, Any]


class PredictionLog:
    """Buffers served rows and their predictions and writes them to ``folder`` in the background."""

    def __init__(self, folder: str | Path, *, flush_seconds: float = 5.0, flush_rows: int = 20_000,
                 max_pending_rows: int = 1_000_000) -> None:
        self.folder = Path(folder)
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.max_pending_rows = max_pending_rows
        self.rows_written = 0
        self.rows_dropped = 0
        self.files_written = 0
        #: told the number of rows dropped when a write fails (the server counts them in its metrics)
        self.on_dropped: Callable[[int], None] | None = None
        self._pending: list[_Entry] = []
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the request side -----------------------------------------------------------------------------------
    def append(self, *, columns: Mapping[str, Any], outputs: Mapping[str, Any], n_rows: int, request_id: str,
               endpoint: str, model: str, version: str) -> bool:
        """Queue one request's rows; False (and counted as dropped) when too many rows already wait."""
        with self._lock:
            if self._pending_rows + n_rows > self.max_pending_rows:
                self.rows_dropped += n_rows
                return False
            self._pending.append(_Entry(time.time(), request_id, endpoint, model, version, n_rows, columns, outputs))
            self._pending_rows += n_rows
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()
        return True

    # -- the writing side -----------------------------------------------------------------------------------
    def start(self) -> PredictionLog:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Write everything still pending and stop the writer."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a full disk must not take the server down; say so and keep serving
                log.exception("could not write the prediction log to %s", self.folder)

    def flush(self) -> int:
        """Write the pending rows now; the number of rows written."""
        with self._lock:
            entries, self._pending = self._pending, []
            self._pending_rows = 0
        if not entries:
            return 0
        groups: dict[tuple[str, str], list[_Entry]] = {}
        for e in entries:
            groups.setdefault((e.model, e.version), []).append(e)
        n = 0
        for group in groups.values():
            n += self._write_or_split(group)
        return n

    def _write_or_split(self, entries: list[_Entry]) -> int:
        """Write ``entries`` as one file; if that fails, each request alone, dropping (and counting) only
        those that cannot be written. An error of the disk itself is raised for the writer thread to log."""
        try:
            return self._write(entries)
        except OSError:
            raise
        except Exception:
            if len(entries) == 1:
                self._dropped(entries[0].n_rows)
                log.warning("dropped %d logged rows that could not be written", entries[0].n_rows)
                return 0
        return sum(self._write_or_split([e]) for e in entries)

    def _dropped(self, n: int) -> None:
        self.rows_dropped += n
        if self.on_dropped is not None:
            self.on_dropped(n)

    def _write(self, entries: list[_Entry]) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = []
        for i in range(0, len(entries), CHUNK):
            parts.append(_table(entries[i:i + CHUNK]))
            time.sleep(0)  # the interpreter's lock back to the server's event loop between pieces
        try:
            table = pa.concat_tables(parts)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column typed differently across pieces: in one piece
            table = _table(entries)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        dest = self.folder / f"part-{stamp}-{os.getpid()}-{next(_seq):06d}.parquet"
        tmp = dest.with_name(f".{dest.name}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, dest)
        self.rows_written += table.num_rows
        self.files_written += 1
        return table.num_rows


def _table(entries: list[_Entry]) -> Any:
    """The entries' rows as one Arrow table, built from the arrays directly (no DataFrame between: that step
    and its conversion were a third of a flush's time, held on the server's interpreter lock)."""
    import pyarrow as pa

    data: dict[str, Any] = {}
    names = list(entries[0].columns) + list(entries[0].outputs)
    for name in names:
        parts: list[Any] = [e.columns[name] if name in e.columns else e.outputs.get(name) for e in entries]
        parts = [p if p is not None else [None] * e.n_rows for p, e in zip(parts, entries, strict=True)]
        if all(isinstance(p, np.ndarray) and p.dtype.kind in "fiub" for p in parts):
            data[name] = pa.array(np.concatenate(parts))
        else:
            values = list(itertools.chain.from_iterable(parts))
            try:
                data[name] = pa.array(values, type=pa.string())
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers or other objects among the text: their text
                data[name] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    counts = np.array([e.n_rows for e in entries], dtype=np.int64)
    ns = np.repeat(np.round(np.array([e.ts for e in entries]) * 1e9).astype(np.int64), counts)
    data["_ts"] = pa.array(ns, type=pa.timestamp("ns", tz="UTC"))
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    data["_row"] = pa.array((np.arange(int(counts.sum())) - starts).astype(np.int32))  # position in its request
    which = pa.array(np.repeat(np.arange(len(entries), dtype=np.int32), counts))  # each row's request
    for key in ("request_id", "endpoint", "model", "version"):
        data[f"_{key}"] = pa.array([str(getattr(e, key)) for e in entries], type=pa.string()).take(which)
    return pa.table(data)


def read_prediction_log(folder: str | Path) -> pd.DataFrame:
    """Every logged row of ``folder``, oldest first (columns of different model versions are unioned).

    The parts are joined and ordered as Arrow tables and converted to pandas once, so a log of a million rows
    costs about its own size in memory, not the three copies that concatenating and sorting frames make."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted(Path(folder).glob("part-*.parquet"))
    if not files:
        return pd.DataFrame()
    tables = [_read_part(f, pq.read_table) for f in files]
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # one column typed differently across versions: pandas unifies
        del tables
        frames = [_read_part(f, pd.read_parquet) for f in files]
        return pd.concat(frames, ignore_index=True, sort=False).sort_values("_ts", kind="stable", ignore_index=True)
    ts = table["_ts"]
    if len(ts) > 1 and not pc.all(pc.greater_equal(ts[1:], ts[:-1])).as_py():
        table = table.take(pc.sort_indices(table, sort_keys=[("_ts", "ascending")]))
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _read_part(path: Path, read: Callable[[Path], Any]) -> Any:
    """One part file read by ``read``; a file that is not a prediction log's Parquet is an error naming it."""
    import pyarrow as pa

    from ..errors import DataError

    try:
        part = read(path)
    except (pa.ArrowException, OSError, ValueError):
        raise DataError(f"{str(path)!r} in the prediction log cannot be read as Parquet: it is damaged or was not "
                        "written by mlengineer serve; move it out of the folder and try again.") from None
    if "_ts" not in getattr(part, "column_names", getattr(part, "columns", [])):
        raise DataError(f"{str(path)!r} in the prediction log has no _ts column: it was not written by mlengineer "
                        "serve; move it out of the folder and try again.")
    return part
