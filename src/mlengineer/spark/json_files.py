"""JSON read by Spark with its columns in the order the local reader gives them.

Spark's schema inference lists a JSON table's keys, and each object's keys, alphabetically; the local reader
keeps the file's order: a key as it is first seen, one missing from the first records after those seen before
it, an object's keys flattened as ``pd.json_normalize`` flattens them (``data.load``). The audit, the report,
the schema's roles and a bundle's input signature list the columns in that order, whichever engine read the
file. So the beginning of the files is read here as well, record by record until every key Spark found has been
seen (or 8 MiB have been read; a remote source's first 1,000 lines), and the records that bring a new key, or a
key holding another kind of value (an object where it held a number), are handed to the local reader's own
code: the names it gives are the order of the columns Spark reads. A key first seen beyond what was read goes
after them, as Spark lists it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..data.formats import format_of, read_sample
from .nested import json_schema

__all__ = ["column_order", "ordered", "read_json"]

#: bytes of the files' beginning read to learn their keys' order: a first look, then a longer one where a key
#: Spark found was not among the first records
_LOOKS = (1 << 16, 1 << 23)
#: lines of a remote JSON Lines source read (through Spark) to learn its keys' order
_REMOTE_LINES = 1000

Path_ = tuple[str, ...]


def read_json(spark: Any, paths: list[str], document: bool, files: list[Path] | None = None
              ) -> tuple[Any, list[str]]:
    """JSON Lines, or a JSON document (``[{...}, ...]``), as a DataFrame, read twice: once for the schema Spark
    infers, again with every list as its raw text (``nested.json_schema``, for ``read._tidy`` to write as the
    local reader does) and every object's keys in the file's order. With it the names of the columns in the
    order the local reader gives them (``column_order``), for ``read._tidy`` to put them in. ``files``: the
    local files at ``paths``, in order; None for a remote source."""
    frame = spark.read.json(paths, multiLine=document)
    corrupt = spark.conf.get("spark.sql.columnNameOfCorruptRecord", "_corrupt_record")
    wanted = {p for p in _schema_paths(frame.schema, ()) if p != (corrupt,)}
    records = _local_records(files, document, wanted) if files is not None else _remote_records(
        spark, paths, document)
    schema = json_schema(frame.schema, document=document) or frame.schema
    schema = _in_file_order(schema, _key_ranks(records))
    return spark.read.schema(schema).json(paths, multiLine=document), column_order(records, document)


def column_order(records: list[dict[str, Any]], document: bool) -> list[str]:
    """The names the local reader gives the columns of ``records`` (JSON Lines read by pandas, or a JSON
    document's records), in its order; [] where there are none or it cannot read them (Spark's order stands)."""
    import pandas as pd

    from ..data.jsontable import json_records_frame
    from ..data.load import as_read

    if not records:
        return []
    try:  # the order is how the columns are listed: a sample the local code cannot read leaves Spark's order
        frame = json_records_frame(records) if document else pd.DataFrame(records)
        return [str(c) for c in as_read(frame).columns]
    except Exception:
        return []


def ordered(names: list[str], order: list[str]) -> list[int]:
    """The positions of ``names`` (the flat columns Spark read) sorted into ``order`` (``column_order``'s): a
    name found there at its place; one the sample flattened (``user.age``) where Spark kept it whole (``user``),
    or the other way round, at its first relative's place; any other after them, in Spark's order."""
    at = {n: i for i, n in enumerate(order)}

    def rank(j: int) -> tuple[int, int, int]:
        n = names[j]
        if n in at:
            return at[n], 0, j
        near = [i for m, i in at.items() if m.startswith(n + ".") or n.startswith(m + ".")]
        return (min(near), 1, j) if near else (len(order), 0, j)

    return sorted(range(len(names)), key=rank)


def _schema_paths(kind: Any, path: Path_) -> Iterator[Path_]:
    """The key paths of an inferred JSON schema: every field, at the top and within objects."""
    from pyspark.sql import types as T

    for f in kind.fields:
        yield (*path, f.name)
        if isinstance(f.dataType, T.StructType):
            yield from _schema_paths(f.dataType, (*path, f.name))


def _record_paths(record: dict[str, Any], path: Path_ = ()) -> Iterator[Path_]:
    for k, v in record.items():
        yield (*path, k)
        if isinstance(v, dict):
            yield from _record_paths(v, (*path, k))


def _record_kinds(record: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Each key path of ``record`` with what it holds there: an object, null or another value (whether the local
    reader flattens a key or keeps it whole turns on these)."""
    for k, v in record.items():
        at = (*path, k)
        if isinstance(v, dict):
            yield at, "object"
            yield from _record_kinds(v, at)
        else:
            yield at, "null" if v is None else "value"


def _telling(records: Iterator[dict[str, Any]], kinds: set[tuple[Path_, str]]) -> Iterator[dict[str, Any]]:
    """The ``records`` that bring a key path not seen before, or one holding another kind of value than before
    (an object, null, another value; ``kinds``, updated): the only ones the order of the columns turns on."""
    for record in records:
        new = set(_record_kinds(record)) - kinds
        if new:
            kinds |= new
            yield record


def _local_records(files: list[Path], document: bool, wanted: set[Path_]) -> list[dict[str, Any]]:
    """The records at the beginning of ``files`` that tell the order of the columns (``_telling``): the first
    look's, or a longer look's where a key path of ``wanted`` was not among them."""
    kept: list[dict[str, Any]] = []
    for size in _LOOKS:
        kept, left, whole = [], size, True
        kinds: set[tuple[Path_, str]] = set()
        for p in files:
            if left <= 0:
                whole = False
                break
            head = read_sample(p, format_of(p)[1], left + 1)
            whole &= len(head) <= left
            kept.extend(_telling(_records(head[:left], document, complete=len(head) <= left), kinds))
            left -= len(head)
        if whole or wanted <= {at for at, _ in kinds}:
            break
    return kept


def _remote_records(spark: Any, paths: list[str], document: bool) -> list[dict[str, Any]]:
    """The records at the beginning of a remote source that tell the order of the columns (``_telling``), read
    by Spark: a JSON Lines source's first lines, the beginning of a JSON document (its first file's)."""
    from pyspark.sql import functions as F

    if document:
        head = spark.read.text(paths, wholetext=True).select(F.substring("value", 1, _LOOKS[-1])).first()
        text, complete = ("", True) if head is None or head[0] is None else (head[0], len(head[0]) < _LOOKS[-1])
    else:
        text = "\n".join(r[0] for r in spark.read.text(paths).limit(_REMOTE_LINES).collect())
        complete = True
    return list(_telling(_records(text.encode("utf-8"), document, complete=complete), set()))


def _records(data: bytes, document: bool, *, complete: bool) -> Iterator[dict[str, Any]]:
    """The objects in ``data``, the beginning of a JSON Lines file or of a JSON document, in order: a line that
    is no object is passed over, as is what is cut off at the end of ``data`` (not ``complete``)."""
    text = data.decode("utf-8-sig", errors="replace")
    if not document:
        lines = text.splitlines()
        for line in lines if complete or not lines else lines[:-1]:
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
        return
    decoder, i = json.JSONDecoder(), text.find("[") + 1
    while 0 < i < len(text):
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        try:
            record, i = decoder.raw_decode(text, i)
        except ValueError:  # the closing bracket, or a record cut off
            return
        if isinstance(record, dict):
            yield record


def _key_ranks(records: list[dict[str, Any]]) -> dict[Path_, int]:
    """Each key path of ``records`` with the place it is first seen at."""
    ranks: dict[Path_, int] = {}
    for record in records:
        for p in _record_paths(record):
            ranks.setdefault(p, len(ranks))
    return ranks


def _in_file_order(schema: Any, ranks: dict[Path_, int], path: Path_ = ()) -> Any:
    """``schema`` with the fields of every object in the order they are first seen (``ranks``); a field not seen
    goes after those seen, in Spark's order."""
    from pyspark.sql import types as T

    fields = []
    for f in schema.fields:
        if isinstance(f.dataType, T.StructType):
            f = T.StructField(f.name, _in_file_order(f.dataType, ranks, (*path, f.name)), f.nullable, f.metadata)
        fields.append(f)
    key = {id(f): (ranks.get((*path, f.name), len(ranks)), j) for j, f in enumerate(fields)}
    return T.StructType(sorted(fields, key=lambda f: key[id(f)]))
