"""Small file helpers: write to a temporary path beside the destination, then rename into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..errors import DataError

__all__ = ["atomic_path", "write_table"]


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    if dest.parent and not dest.parent.exists():
        raise DataError(f"Cannot write {str(dest)!r}: the folder {str(dest.parent)!r} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes it private; the result should be like any new file
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    ".csv": lambda df, p: df.to_csv(p, index=False),
    ".parquet": lambda df, p: df.to_parquet(p, index=False),
    ".pq": lambda df, p: df.to_parquet(p, index=False),
    ".json": lambda df, p: df.to_json(p, orient="records"),
    ".jsonl": lambda df, p: df.to_json(p, orient="records", lines=True),
}


def write_table(df: pd.DataFrame, dest: str | Path) -> Path:
    """Write ``df`` to ``dest`` in the format its suffix names (CSV, Parquet, JSON, JSONL), atomically."""
    dest = Path(dest)
    writer = _WRITERS.get(dest.suffix.lower())
    if writer is None:
        raise DataError(f"Cannot write {str(dest)!r}: use a name ending in {', '.join(_WRITERS)}.")
    with atomic_path(dest) as tmp:
        writer(df, tmp)
    return dest
