"""A folder of Parquet parts (as Spark, Hive or a pandas loop write them) read as one table, whatever schema
each part has: pyarrow's dataset takes the first part's schema for all, so a column added in later parts was
dropped and a column one part wrote all-null (type null) failed the whole folder. The parts' schemas are
unified first: numbers widened to one type (int and double -> double), a column missing from a part empty
there; a column that is text in one part and a number in another is refused, naming both parts. A pattern
(``rows/part-*.parquet``, ``logs/**/*.csv``) names its matching files as the parts of one table."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["is_pattern", "matching", "parquet_folder_table"]


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

    path = source if isinstance(source, Path) else Path(str(source[0])).parent
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


def _clash(path: Path, fragments: list[Any], schemas: list[Any], e: BaseException) -> str:
    """One line naming a column whose type differs between parts beyond widening, and two parts that differ."""
    for name in dict.fromkeys(n for s in schemas for n in s.names):
        seen: dict[str, str] = {}  # type -> the first part holding the column as that type
        for f, s in zip(fragments, schemas, strict=True):
            if name in s.names and s.field(name).type != "null":
                seen.setdefault(_kind(s.field(name).type), f.path)
        if len(seen) > 1:
            (k1, p1), (k2, p2) = list(seen.items())[:2]
            return (f"Column {name!r} of the Parquet parts in {str(path)!r} is {k1} in {Path(p1).name} and {k2} in "
                    f"{Path(p2).name}: write it as one type in every part.")
    return f"Cannot read the Parquet parts in {str(path)!r} as one table: {str(e).splitlines()[0][:200]}."


def _kind(t: Any) -> str:
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
