"""Nested values on Spark as the local loader reads them (``data/load.py``): a struct column flattened into one
column per field (``user.age``, ``user.addr.city``), and a list or a map, wherever it stands, as the JSON text
``plain_cell`` writes (``["a", "b"]``: keys sorted, a space after each comma and colon, non-ASCII escaped).

Lists and maps are written by Python on the executors, only for the columns that hold them. From a typed source
(Parquet, Delta, a query) each batch of a column reaches Python as Arrow and is converted by pyarrow, as the local
loader's ``Table.to_pandas`` converts it (a map as its ``[key, value]`` pairs, a float32 as its double), then
written by ``plain_cell``. From JSON, Spark's own types would rewrite ``[1, 2.5]`` as ``[1.0,2.5]``: the file is
read again with every list as its raw text (a field Spark is told is a string keeps a value's text), which is
parsed by the parser the local reader uses (pandas' for JSON Lines, ``json`` for a document) and written by
``plain_cell``, so numbers keep the form they have locally.

Where the local loader leaves a column of nulls, so does this: a struct null in every row is one empty column (not
flattened), and so is a struct within another that is null wherever its parent is filled; one null in some rows
where its parent is filled is its fields alone, missing there (``data.jsontable.json_records_frame``). From a typed
source one aggregation over the struct columns finds these; from JSON Spark's schema inference has already made
such a field a string, and a key no row holds is no column on either engine.

A JSON key holding an object (or a list) in some rows and a number or text in others is one column on both
engines (``data.jsontable.mixed_as_text``): Spark's inference makes it a string holding each object's raw text, which
is parsed and written by ``plain_cell`` as the local reader writes it (keys sorted). One aggregation over a JSON
table's string fields finds the ones holding such text; a text value that is itself JSON is written so too. Locally
such a column holds its numbers as numbers (the reference: the server reads a record's 2.0 as a number too); a
Spark column holds text, so a number's text is written as the category local cleaning makes of it (2.0 and 2 are
"2", 1e+20 is "100000000000000000000"): a category, a number and a yes/no read alike on both engines. Two corners
remain: text that looks like a number ("2.0" in quotes) is read as the number, and a free-text column (role text)
holds "2" where locally it holds "2.0".
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import pyarrow as pa

from ..data.jsontable import plain_cell
from ..data.values import category_key

__all__ = ["RAW_JSON", "flat_columns", "json_schema"]

#: the metadata key of a field read from JSON as raw text, its value "lines" or "document" (how to parse it)
RAW_JSON = "mlengineer.json_text"

Path_ = tuple[str, ...]
#: (column, Spark type, name) of one column of the flat table
Leaf = tuple[Any, Any, str]


def _col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


# -- reading JSON --------------------------------------------------------------------------------------------
def json_schema(schema: Any, *, document: bool) -> Any:
    """The schema to read a JSON source again with, its lists (at the top or within objects, and objects whose
    columns would take another column's name) as raw text marked ``RAW_JSON``; None when it holds none."""
    from pyspark.sql import types as T

    mode = "document" if document else "lines"
    changed = False

    def raw(f: Any) -> Any:
        nonlocal changed
        changed = True
        return T.StructField(f.name, T.StringType(), True, {**f.metadata, RAW_JSON: mode})

    def within(f: Any) -> Any:
        if isinstance(f.dataType, T.ArrayType | T.MapType):
            return raw(f)
        if isinstance(f.dataType, T.StructType):
            return T.StructField(f.name, T.StructType([within(g) for g in f.dataType.fields]), True, f.metadata)
        return f

    names = {str(f.name).strip() for f in schema.fields}
    fields = []
    for f in schema.fields:
        if isinstance(f.dataType, T.StructType) and set(_names(f.dataType, str(f.name).strip())) & names:
            fields.append(raw(f))
        else:
            fields.append(within(f))
    return T.StructType(fields) if changed else None


def _names(kind: Any, prefix: str) -> list[str]:
    """The dotted names a struct's fields flatten to (no nulls looked for)."""
    from pyspark.sql import types as T

    out: list[str] = []
    for f in kind.fields:
        name = f"{prefix}.{f.name}"
        out.extend(_names(f.dataType, name) if isinstance(f.dataType, T.StructType) else [name.strip()])
    return out


# -- the flat table --------------------------------------------------------------------------------------------
def flat_columns(frame: Any, names: list[str], *, look_for_nulls: bool = True,
                 json_mode: str | None = None) -> list[Leaf]:
    """(column, Spark type, name) of each column of ``frame`` as the local loader hands it over: structs
    flattened to dotted names, lists and maps (and raw JSON text) as ``plain_cell``'s JSON text, other columns
    as they are. ``names`` are ``frame``'s tidied top-level names; ``look_for_nulls`` runs the one aggregation
    that finds structs left null (a typed source: JSON's schema inference has already found them); ``json_mode``
    ("lines" or "document": read from JSON) runs the one that finds string fields holding objects' text."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    fields = frame.schema.fields
    flags = _struct_nulls(frame) if look_for_nulls else {}
    texts = (_object_texts(frame) if json_mode else set(), json_mode)
    taken = set(names)
    out: list[Leaf] = []
    for f, name in zip(fields, names, strict=True):
        c = _col(f.name)
        if not isinstance(f.dataType, T.StructType):
            out.append(_leaf(c, f, name, (f.name,) in texts[0], json_mode))
            continue
        if not flags.get((f.name,), True):  # null in every row: one empty column, as read locally
            out.append((F.lit(None).cast("string"), T.StringType(), name))
            continue
        leaves = [(col, kind, n.strip()) for col, kind, n in
                  _struct_leaves(c, f.dataType, name, (f.name,), flags, texts)]
        if {n for _, _, n in leaves} & (taken - {name}):  # locally kept whole, as JSON text
            out.append((_typed_text(f.dataType)(c), T.StringType(), name))
        else:
            taken.update(n for _, _, n in leaves)
            out.extend(leaves)
    return out


def _struct_leaves(c: Any, kind: Any, prefix: str, path: Path_, flags: dict[Path_, bool],
                   texts: tuple[set[Path_], str | None], top: bool = True) -> list[Leaf]:
    """The leaves of the struct ``c``, in ``json_normalize``'s order: at its first level plain fields first and
    structs after them, deeper down in place."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    plain: list[Leaf] = []
    nested: list[Leaf] = []
    for f in kind.fields:
        child, at, name = c.getField(f.name), (*path, f.name), f"{prefix}.{f.name}"
        if not isinstance(f.dataType, T.StructType):
            plain.append(_leaf(child, f, name, at in texts[0], texts[1]))
            continue
        if not flags.get(at, True):  # null wherever its parent is filled: a plain value of null, locally
            plain.append((F.lit(None).cast("string"), T.StringType(), name))
            continue
        (nested if top else plain).extend(_struct_leaves(child, f.dataType, name, at, flags, texts, top=False))
    return plain + nested


def _leaf(c: Any, f: Any, name: str, objects: bool = False, json_mode: str | None = None) -> Leaf:
    """A column that is no struct: raw JSON text or a list or a map as JSON text, a JSON string field holding
    objects' text (``objects``) with that text rewritten, anything else as it is."""
    from pyspark.sql import types as T

    mode = f.metadata.get(RAW_JSON)
    if mode:
        return _json_text(mode == "document")(c), T.StringType(), name
    if isinstance(f.dataType, T.ArrayType | T.MapType):
        return _typed_text(f.dataType)(c), T.StringType(), name
    if objects:
        return _mixed_text(json_mode == "document")(c), T.StringType(), name
    return c, f.dataType, name


def _struct_paths(kind: Any, path: Path_) -> list[Path_]:
    from pyspark.sql import types as T

    out: list[Path_] = []
    for f in kind.fields:
        if isinstance(f.dataType, T.StructType):
            out.extend([(*path, f.name), *_struct_paths(f.dataType, (*path, f.name))])
    return out


def _at(path: Path_) -> Any:
    c = _col(path[0])
    for name in path[1:]:
        c = c.getField(name)
    return c


def _struct_nulls(frame: Any) -> dict[Path_, bool]:
    """For each struct (a column, or a field of one): whether it is filled in some row where its parent is (a
    column: in some row). One aggregation over the struct columns alone; none without one."""
    from pyspark.sql import functions as F

    paths = _struct_paths(frame.schema, ())
    if not paths:
        return {}
    aggs = []
    for i, path in enumerate(paths):
        parent = _at(path[:-1]).isNotNull() if len(path) > 1 else F.lit(True)
        aggs.append(F.max((parent & _at(path).isNotNull()).cast("int")).alias(f"f{i}"))
    row = frame.agg(*aggs).first()
    # no rows at all: every struct counts as filled (the table is refused for holding no rows anyway)
    return {p: row[f"f{i}"] != 0 for i, p in enumerate(paths)}


def _string_paths(kind: Any, path: Path_) -> list[Path_]:
    """The string fields of a JSON table (at the top or within structs) that are not raw lists already."""
    from pyspark.sql import types as T

    out: list[Path_] = []
    for f in kind.fields:
        if isinstance(f.dataType, T.StructType):
            out.extend(_string_paths(f.dataType, (*path, f.name)))
        elif isinstance(f.dataType, T.StringType) and not f.metadata.get(RAW_JSON):
            out.append((*path, f.name))
    return out


def _object_texts(frame: Any) -> set[Path_]:
    """The string fields of a table read from JSON where some row holds an object's or a list's text (Spark's
    inference makes a key that is an object in some rows and a number or text in others a string): one
    aggregation over those fields; none without one."""
    from pyspark.sql import functions as F

    paths = _string_paths(frame.schema, ())
    if not paths:
        return set()
    starts = [F.substring(F.ltrim(_at(p)), 1, 1) for p in paths]
    row = frame.agg(*[F.max(s.isin("{", "[").cast("int")).alias(f"t{i}") for i, s in enumerate(starts)]).first()
    return {p for i, p in enumerate(paths) if row is not None and row[f"t{i}"] == 1}


# -- the text, written on the executors ------------------------------------------------------------------------
def typed_cells(values: pa.Array) -> list[Any]:
    """Nested Arrow values (a ``pyarrow.Array``) as the local loader's text: pyarrow's conversion, then
    ``plain_cell``."""
    return [None if v is None else plain_cell(v) for v in values.to_pandas()]


def json_cells(texts: list[str | None], document: bool) -> list[Any]:
    """Raw JSON texts as the local reader's text: parsed as it parses them, then written by ``plain_cell``."""
    if document:
        return [None if t is None else plain_cell(json.loads(t)) for t in texts]
    from pandas.io.json import ujson_loads  # pd.read_json's parser, numbers and all

    return [None if t is None else plain_cell(ujson_loads(t, precise_float=True)) for t in texts]


#: a JSON number's text, as Spark hands it over in a string field that mixes objects and other values
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def mixed_cells(texts: list[str | None], document: bool) -> list[Any]:
    """A JSON string field's values (``_object_texts``): an object's or a list's text parsed and written as the
    local reader writes it (``json_cells``); a number's text (Spark hands it over as written: ``2.0``,
    ``1e+20``) as the category local cleaning makes of the number the local reader holds (``category_key``:
    2.0 and 2 are "2", as a model trained locally, and the server, read them); any other text as it is."""
    out: list[Any] = []
    for t in texts:
        if t is not None and t.lstrip()[:1] in ("{", "["):
            try:
                out.append(json_cells([t], document)[0])
                continue
            except ValueError:
                pass
        elif t is not None and _JSON_NUMBER.fullmatch(t):
            try:
                out.append(category_key(_json_number(t, document)))
                continue
            except (ValueError, OverflowError):
                pass
        out.append(t)
    return out


def _json_number(text: str, document: bool) -> Any:
    """A JSON number as the local reader parses it: ``json`` for a document, pandas' parser for JSON Lines."""
    if document:
        return json.loads(text)
    from pandas.io.json import ujson_loads

    return ujson_loads(text, precise_float=True)


def _arrow_cells(values: pa.Array) -> pa.Array:
    return pa.array(typed_cells(values), pa.string())


def _typed_text(kind: Any) -> Any:
    """The UDF writing a nested column of Spark type ``kind`` as text: an Arrow UDF (PySpark 4.1 and later);
    before it a pandas UDF, whose values (Spark's conversion of the Arrow batch) are made Arrow again."""
    from pyspark.sql import functions as F

    if hasattr(F, "arrow_udf"):
        return F.arrow_udf(_arrow_cells, "string")  # type: ignore[call-overload]
    from pyspark.sql.pandas.types import to_arrow_type

    arrow = to_arrow_type(kind)

    def cells(s: pd.Series) -> pd.Series:
        return pd.Series(typed_cells(pa.array(list(s), type=arrow)), index=s.index, dtype=object)

    return F.pandas_udf(cells, "string")  # type: ignore[call-overload]


def _json_text(document: bool) -> Any:
    from pyspark.sql import functions as F

    def cells(s: pd.Series) -> pd.Series:
        return pd.Series(json_cells([None if t is None or t != t else t for t in s], document), index=s.index,
                         dtype=object)

    return F.pandas_udf(cells, "string")  # type: ignore[call-overload]


def _mixed_text(document: bool) -> Any:
    from pyspark.sql import functions as F

    def cells(s: pd.Series) -> pd.Series:
        return pd.Series(mixed_cells([None if t is None or t != t else t for t in s], document), index=s.index,
                         dtype=object)

    return F.pandas_udf(cells, "string")  # type: ignore[call-overload]
