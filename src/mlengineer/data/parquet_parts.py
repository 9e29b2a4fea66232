"""A folder of Parquet parts (as Spark, Hive or a pandas loop write them) read as one table, whatever schema
each part has: pyarrow's dataset takes the first part's schema for all, so a column added in later parts was
dropped and a column one part wrote all-null (type null) failed the whole folder. The parts' schemas are
unified first: numbers widened to one type (int and double -> double), a column missing from a part empty
there; a column that is text in one part and a number in another is refused, naming both parts. A pattern
(``rows/part-*.parquet``, ``logs/**/*.csv``) names its matching files as the parts of one table."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["common_folder", "is_pattern", "kind_of", "matching", "parquet_folder_table", "type_clash"]


def is_pattern(text: str) -> bool:
    """Whether ``text`` is a file name pattern (``*``, ``?`` or ``[...]``) rather than one path."""
    return glob.has_magic(text)


def matching(pattern: str) -> list[Path]:
    """The files ``pattern`` matches (``**`` spans folders), sorted; a DataError naming it when none does."""
    found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not found:
        raise DataError(f"No file matches {pattern!r}: check the pattern (quote it, so the shell leaves it to us).")
    return found


def parquet_folder_table(source: Path | list[Path]) -> tuple[Any, list[str]]:
    """The parts under the folder ``source`` (hive partitions as columns), or the files it lists, as one Arrow
    table, and the columns that not every part holds."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = source if isinstance(source, Path) else common_folder(source)
    files = source if isinstance(source, Path) else [str(p) for p in source]
    hive = "hive" if isinstance(source, Path) else None
    first = ds.dataset(files, format="parquet", partitioning=hive)
    fragments = list(first.get_fragments())
    schemas = [f.physical_schema for f in fragments]
    try:
        unified = pa.unify_schemas([first.schema, *schemas], promote_options="permissive").remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise DataError(_clash(path, fragments, schemas, e)) from None
    partitions = first.partitioning.schema.names if hive else []
    partial = [n for n in unified.names if n not in partitions and any(n not in s.names for s in schemas)]
    table = ds.dataset(files, format="parquet", partitioning=hive, schema=unified).to_table()
    return table, partial


def common_folder(files: list[Path]) -> Path:
    """The deepest folder holding every one of ``files`` (the parts a pattern matched)."""
    base = Path(os.path.commonpath([str(f) for f in files]))
    return base if base.is_dir() else base.parent


def type_clash(name: str, folder: Path, first: tuple[str, str | Path], second: tuple[str, str | Path]) -> str:
    """The line both engines say of a column whose type differs between two Parquet parts beyond widening:
    ``first`` and ``second`` are (what the part holds, in words, as ``kind_of`` says it; the part's path),
    each part named by its path inside ``folder``."""
    (k1, p1), (k2, p2) = first, second
    return (f"Column {name!r} of the Parquet parts in {str(folder)!r} is {k1} in {_inside(p1, folder)} and {k2} in "
            f"{_inside(p2, folder)}: write it as one type in every part.")


def _inside(part: str | Path, folder: Path) -> str:
    try:
        return str(Path(part).relative_to(folder))
    except ValueError:
        return str(part)


def _clash(path: Path, fragments: list[Any], schemas: list[Any], e: BaseException) -> str:
    """One line naming a column whose type differs between parts beyond widening, and two parts that differ."""
    for name in dict.fromkeys(n for s in schemas for n in s.names):
        seen: dict[str, str] = {}  # type -> the first part holding the column as that type
        for f, s in zip(fragments, schemas, strict=True):
            if name in s.names and s.field(name).type != "null":
                seen.setdefault(kind_of(s.field(name).type), f.path)
        if len(seen) > 1:
            (k1, p1), (k2, p2) = list(seen.items())[:2]
            return type_clash(name, path, (k1, p1), (k2, p2))
    return f"Cannot read the Parquet parts in {str(path)!r} as one table: {str(e).splitlines()[0][:200]}."


def kind_of(t: Any) -> str:
    """An Arrow type in a reader's words: numbers, text, true/false, dates or times (else the type's name)."""
    import pyarrow.types as pt

    if pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t):
        return "numbers"
    if pt.is_string(t) or pt.is_large_string(t):
        return "text"
    if pt.is_boolean(t):
        return "true/false"
    if pt.is_temporal(t):
        return "dates or times"
    return str(t)
