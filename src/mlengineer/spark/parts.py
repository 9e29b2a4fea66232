"""Folders whose parts disagree: CSV parts with another header, Parquet parts written with other schemas.

Spark reads a folder of parts with the schema of one of them. A CSV part whose header lists other columns (or
the same ones in another order) would be read by position, its values under the wrong names, so it is refused
as the local reader refuses it. Parquet parts whose schemas differ (a column added later, a column pandas
wrote as all-null, whole numbers in one part and decimals in another) fail mid-read or lose columns, so
each schema's parts are read on their own and put together: every column of every part, a column a part
lacks (or holds only nulls in) empty there, numbers widened to one type.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..data.formats import format_of, read_sample
from ..data.parquet_parts import kind_of, type_clash
from ..errors import DataError

__all__ = ["check_csv_headers", "csv_header", "parquet_groups", "read_parquet_parts"]


def csv_header(path: Path, sep: str, encoding: str) -> list[str] | None:
    """The names in the first line of the CSV file at ``path`` (stripped), or None for an empty file."""
    fmt_compression = format_of(path)[1]
    text = read_sample(path, fmt_compression, 1 << 16).decode(encoding, errors="replace").lstrip("\ufeff")
    line = next(iter(text.splitlines()), "")
    if not line.strip():
        return None  # an empty part: Spark skips it
    return [c.strip() for c in next(csv.reader([line], delimiter=sep))]


def check_csv_headers(files: list[Path], opts: dict[str, Any]) -> None:
    """Refuse a CSV part whose header differs from the first part's: Spark would read it by position."""
    if opts.get("header", 0) != 0 or len(files) < 2:
        return
    first, first_path = None, None
    for p in files:
        names = csv_header(p, opts["sep"], opts["encoding"])
        if names is None:
            continue
        if first is None:
            first, first_path = names, p
            continue
        if names != first:
            other = sorted(set(names) ^ set(first))[:3]
            what = (f"other columns than {str(first_path)!r} ({', '.join(map(repr, other))})" if other else
                    f"the columns of {str(first_path)!r} in another order")
            raise DataError(f"Part {str(p)!r} has {what}: every part needs the same header (Spark reads the "
                            "parts' columns by position).")


def parquet_groups(files: list[Path]) -> list[tuple[dict[str, Any], list[Path]]]:
    """The parts grouped by schema, in file order: ({column: Arrow type}, files) per schema. Empty when a
    footer cannot be read (Spark then says which part is damaged)."""
    import pyarrow.parquet as pq

    groups: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], list[Path]]] = {}
    for p in files:
        try:
            schema = pq.read_schema(p)
        except Exception:
            return []
        key = tuple((f.name, str(f.type)) for f in schema)
        groups.setdefault(key, ({f.name: f.type for f in schema}, []))[1].append(p)
    return list(groups.values())


#: what one part holds in a column: its Spark type, its Arrow type (None for a partition folder's value), the part
_Held = tuple[Any, Any, Path]


def _common_type(name: str, seen: list[_Held], root: Path) -> Any:
    """The one Spark type a column's parts can all be read as, or a DataError naming two parts that clash."""
    from pyspark.sql import types as T

    kinds = {t.simpleString(): t for t, _, _ in seen}
    if len(kinds) == 1:
        return seen[0][0]
    if all(isinstance(t, T.NumericType) for t, _, _ in seen):
        return T.LongType() if all(isinstance(t, T.IntegralType) for t, _, _ in seen) else T.DoubleType()
    if all(isinstance(t, T.DateType | T.TimestampType | T.TimestampNTZType) for t, _, _ in seen):
        return T.TimestampType()
    a, b = seen[0], next(s for s in seen if s[0].simpleString() != seen[0][0].simpleString())
    words = [kind_of(arrow) if arrow is not None else spark.simpleString() for spark, arrow, _ in (a, b)]
    if words[0] == words[1]:  # alike in words (two kinds of nested values, say): their Spark names tell them apart
        words = [a[0].simpleString(), b[0].simpleString()]
    raise DataError(type_clash(name, root, (words[0], a[2]), (words[1], b[2])))


def read_parquet_parts(spark: Any, root: Path, groups: list[tuple[dict[str, Any], list[Path]]]) -> tuple[Any, str]:
    """One DataFrame from parts of several schemas (see the module's note), and a few words on what differed."""
    from pyspark.sql import functions as F

    frames = [(spark.read.option("basePath", str(root)).parquet(*map(str, paths)), arrow, paths[0])
              for arrow, paths in groups]
    order: list[str] = []
    seen: dict[str, list[_Held]] = {}
    for frame, arrow, first in frames:
        for f in frame.schema.fields:
            if f.name not in seen:
                order.append(f.name)
                seen[f.name] = []
            if not _all_null(arrow, f.name):  # all-null in this part: pandas wrote it with no type
                seen[f.name].append((f.dataType, arrow.get(f.name), first))
    types = {n: _common_type(n, seen[n], root) if seen[n] else None for n in order}
    out = None
    for frame, arrow, _ in frames:
        cols = []
        for n in order:
            kind = types[n] or "string"
            held = n in frame.columns and not _all_null(arrow, n)
            c = F.col("`" + n.replace("`", "``") + "`").cast(kind) if held else F.lit(None).cast(kind)
            cols.append(c.alias(n))
        part = frame.select(*cols)
        out = part if out is None else out.union(part)
    gaps = [n for n in order if any(n not in frame.columns for frame, _, _ in frames)]
    words = f"{len(groups)} schemas merged" + (f"; not in every part: {', '.join(gaps[:3])}" if gaps else "")
    return out, words


def _all_null(arrow: dict[str, Any], name: str) -> bool:
    """Whether a part's column is of Arrow's null type (pandas wrote a column of no values so)."""
    return name in arrow and str(arrow[name]) == "null"
