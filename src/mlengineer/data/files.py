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

__all__ = ["atomic_path", "cache_dir", "check_place", "is_local", "owner_alive", "owner_tag", "refuse_bundle",
           "refuse_input", "staging_dir", "sweep_leftovers", "write_table"]


def cache_dir() -> Path:
    """The folder for what mlengineer keeps between runs (measured costs, the blank tracking store):
    ``MLENGINEER_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlengineer``, else ``~/.cache/mlengineer``."""
    return Path(os.environ.get("MLENGINEER_CACHE_DIR")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlengineer")


_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_local(source: str) -> bool:
    """Whether ``source`` names a path on this machine (plain, or ``file://``) rather than a URI (Spark's)."""
    return not _REMOTE.match(source) or source.startswith("file://")


def refuse_input(out: str | Path, data: str | Path | None) -> None:
    """Refuse an output that is the data it is made from, holds it, or lies inside it (a folder of parts):
    predictions written there would replace or mix with the rows they come from. (A URI is not looked at.)"""
    if not data or not is_local(str(data)):
        return
    out = Path(out)
    src, dest = Path(str(data).removeprefix("file://")).resolve(), out.resolve()
    other = "file" if out.suffix else "folder"
    if dest == src:
        raise DataError(f"--out {str(out)!r} is the data {'folder' if src.is_dir() else 'file'} itself: predictions "
                        f"would replace the rows they come from; write them to another {other}.")
    if src in dest.parents or dest in src.parents:
        raise DataError(f"--out {str(out)!r} {'holds' if dest in src.parents else 'lies inside'} the data {str(data)!r}: "
                        f"predictions would mix with the rows they come from; write them to another {other}.")


def refuse_bundle(out: str | Path, bundle: str | Path | None) -> None:
    """Refuse an output in a model bundle's folder: a file added there stops the bundle loading (it holds only
    the files its manifest names)."""
    if bundle is None or not is_local(str(out)):
        return
    dest, root = Path(out).resolve(), Path(bundle).resolve()
    if dest == root or root in dest.parents:
        raise DataError(f"--out {str(out)!r} lies inside the model bundle {str(bundle)!r}, which would then no longer "
                        "load (a bundle holds only the files it was saved with); write the predictions elsewhere.")


def check_place(dest: Path, *, folder: bool = False, instead: str = "", probe: bool = True) -> Path:
    """Refuse a place that cannot take ``dest``, a file (or with ``folder``, a folder, whose missing parents
    get made): a file whose folder does not exist, a folder where a file goes (``instead`` adds what else to
    name), a file where a folder goes, or (with ``probe``) a folder that takes no new files. Returns the folder
    that takes it."""
    if not folder and dest.parent and not dest.parent.exists():
        raise DataError(f"Cannot write {str(dest)!r}: the folder {str(dest.parent)!r} does not exist.")
    if not folder and dest.is_dir():
        raise DataError(f"Cannot write {str(dest)!r}: it is a folder; name a file in it{instead}.")
    parent = next(p for p in [*dest.parents, Path.cwd()] if p.exists())
    if not parent.is_dir():
        raise DataError(f"Cannot write {str(dest)!r}: {str(parent)!r} is a file, not a folder.")
    if probe:
        try:  # the one sure test of a place's writability, root and odd file systems included
            shutil.rmtree(tempfile.mkdtemp(prefix=".mlengineer-probe-", dir=parent))
        except OSError as e:
            raise DataError(_takes_no_files(dest, parent, e)) from None
    return parent


def _takes_no_files(dest: Path, parent: Path, e: OSError) -> str:
    return (f"Cannot write {str(dest)!r}: the folder {str(parent)!r} takes no new files "
            f"({e.strerror or type(e).__name__}); choose a folder you can write to.")


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    parent = check_place(dest, probe=False)  # making the temporary file below is the probe
    sweep_leftovers(dest)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-{owner_tag()}-", suffix=".tmp", dir=parent)
    except OSError as e:  # a folder this process may not write in (or one, like /proc, that takes no files)
        raise DataError(_takes_no_files(dest, parent, e)) from None
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
