"""Small file helpers: write to a temporary path beside the destination, then rename into place.

Temporary paths carry their owner (process id and start time), so leftovers of a process that was killed
mid-write (``kill -9``, a power cut) are recognised and swept by the next write to the same destination,
and never mistaken for the work of a process still running.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..errors import DataError

__all__ = ["atomic_path", "cache_dir", "owner_alive", "owner_tag", "staging_dir", "sweep_leftovers", "write_table"]


def cache_dir() -> Path:
    """The folder for what mlengineer keeps between runs (measured costs, the blank tracking store):
    ``MLENGINEER_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlengineer``, else ``~/.cache/mlengineer``."""
    return Path(os.environ.get("MLENGINEER_CACHE_DIR")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlengineer")


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    if dest.parent and not dest.parent.exists():
        raise DataError(f"Cannot write {str(dest)!r}: the folder {str(dest.parent)!r} does not exist.")
    if dest.is_dir():
        raise DataError(f"Cannot write {str(dest)!r}: it is a folder; name a file in it.")
    if dest.parent and not dest.parent.is_dir():
        raise DataError(f"Cannot write {str(dest)!r}: {str(dest.parent)!r} is a file, not a folder.")
    sweep_leftovers(dest)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-{owner_tag()}-", suffix=".tmp", dir=dest.parent or ".")
    except OSError as e:  # a folder this process may not write in (or one, like /proc, that takes no files)
        raise DataError(f"Cannot write {str(dest)!r}: the folder {str(dest.parent)!r} takes no new files "
                        f"({e.strerror or type(e).__name__}); choose a folder you can write to.") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes it private; the result should be like any new file
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tag() -> str:
    """This process as ``PID-START``: what a temporary path or a tracked run is stamped with."""
    pid = os.getpid()
    return f"{pid}-{_start_time(pid) or 0}"


def owner_alive(tag: str) -> bool:
    """Whether the process a ``PID-START`` tag names still runs (the same process, not a reused pid)."""
    m = re.fullmatch(r"(\d+)-(\d+)", tag)
    if m is None:
        return False
    pid, start = int(m[1]), m[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    now = _start_time(pid)
    return now is None or start == "0" or now == start


def staging_dir(dest: Path, kind: str = "staging") -> Path:
    """A new folder beside ``dest`` to build it in, named for this process so a leftover can be swept."""
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.{kind}-{owner_tag()}-", dir=dest.parent))


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:staging|old|tmp)-(?P<owner>\d+-\d+)(?:-.*)?$")


def sweep_leftovers(dest: Path) -> list[Path]:
    """Remove what writers of ``dest`` left beside it when they were killed mid-write; the paths removed."""
    removed: list[Path] = []
    try:
        siblings = list(dest.parent.iterdir()) if dest.parent.is_dir() else []
    except OSError:
        return removed
    for p in siblings:
        m = _LEFTOVER.match(p.name)
        if m is None or m["name"] != dest.name or owner_alive(m["owner"]):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


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
