"""A folder of Parquet parts (as Spark, Hive or a pandas loop write them) read as one table, whatever schema
each part has: pyarrow's dataset takes the first part's schema for all, so a column added in later parts was
dropped and a column one part wrote all-null (type null) failed the whole folder. The parts' schemas are
unified first: numbers widened to one type (int and double -> double), a column missing from a part empty
there; a column that is text in one part and a number in another is refused, naming both parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["parquet_folder_table"]


def parquet_folder_table(path: Path) -> tuple[Any, list[str]]:
    """The parts under ``path`` as one Arrow table (hive partitions as columns), and the columns that not
    every part holds."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    first = ds.dataset(path, format="parquet", partitioning="hive")
    fragments = list(first.get_fragments())
    schemas = [f.physical_schema for f in fragments]
    try:
        unified = pa.unify_schemas([first.schema, *schemas], promote_options="permissive").remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise DataError(_clash(path, fragments, schemas, e)) from None
    partial = [n for n in unified.names
               if n not in first.partitioning.schema.names and any(n not in s.names for s in schemas)]
    table = ds.dataset(path, format="parquet", partitioning="hive", schema=unified).to_table()
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
