"""Objects under a nested JSON column's name, however a row hands them over.

A model trained on nested JSON (a JSON file's objects, PostgreSQL's ``jsonb``, a Parquet struct) learnt one
column per key: ``meta.a`` and ``meta.b`` for ``{"meta": {"a": 3, "b": "x"}}``. At prediction the object may come
as an object (a record, a DataFrame cell, a request), as its JSON text (a CSV export, ``psql \\copy``, a
DataFrame cell holding ``'{"a": 3, "b": "x"}'``) or as null; every door reads each of them the same way, as the
JSON reader reads a file of them: the object flattened into its keys, a key it lacks missing, null (or an empty
cell) every key missing. Anything else under that name (text that is not a JSON object, a number) is refused
in one line naming the column: it is never read as all keys missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SchemaError
from .values import MISSING_TOKENS, as_written

__all__ = ["NestedNames", "flat_columns", "flat_frame", "flat_nested", "flat_record", "nested_columns",
           "nested_gaps", "nested_prefixes", "object_of"]


class NestedNames(frozenset[str]):
    """The top-level names of a model's columns read from nested JSON ('meta' for 'meta.a'), a frozenset of
    them, with the model's columns under each name (``columns``)."""

    columns: dict[str, tuple[str, ...]]

    def __new__(cls, features: Iterable[str] = ()) -> NestedNames:
        names = [str(c) for c in features]
        plain = set(names)
        under: dict[str, list[str]] = {}
        for c in names:
            head = c.split(".", 1)[0]
            if "." in c and head not in plain:  # 'age' and 'age.1' (a header naming it twice) nest nothing
                under.setdefault(head, []).append(c)
        self = super().__new__(cls, under)
        self.columns = {k: tuple(v) for k, v in under.items()}
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickled (Spark ships the model) as the features it was made of
        return NestedNames, (tuple(c for cols in self.columns.values() for c in cols),)


def nested_prefixes(columns: Iterable[str]) -> NestedNames:
    """The top-level names of a model's columns read from nested JSON ('user' for 'user.age'): a row's object
    under one of these names is flattened (``flat_record``); under another name it stays a value, and is
    refused as one."""
    return NestedNames(columns)


def nested_columns(nested: frozenset[str], name: str) -> tuple[str, ...]:
    """The model's columns under the nested name ``name`` (() where ``nested`` is a plain frozenset)."""
    return getattr(nested, "columns", {}).get(name, ())


def flat_record(record: Mapping[str, Any], prefix: str = "", only: frozenset[str] | None = None) -> dict[str, Any]:
    """A record whose values hold objects, flattened as a table's nested values are read (``user.age`` for
    ``{"user": {"age": ...}}``); ``only``: the top-level names whose objects are flattened (every one when None)."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, Mapping) and v and (only is None or k in only):
            out.update(flat_record(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float | np.floating) and v != v)


def object_of(v: Any, name: str, columns: Sequence[str] = (), where: str = "") -> Mapping[str, Any] | None:
    """The object a row's value under the nested name ``name`` stands for: an object as it is; its JSON text
    parsed; None for null, NaN, an empty cell or a placeholder ('NA', 'null'), every key missing. Anything else
    is a SchemaError naming the column (``where``: ', row 3') and what to send."""
    if _missing(v):
        return None
    if isinstance(v, Mapping):
        return v or None
    if isinstance(v, str):
        text = v.strip()
        if text.lower() in MISSING_TOKENS:
            return None
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = v
        if parsed is None or isinstance(parsed, dict):
            return parsed or None
    keys = sorted({c[len(name) + 1:].split(".", 1)[0] for c in columns})
    what = f" with the keys {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}" if keys else ""
    example = ", ".join(f'"{k}": ...' for k in keys[:2]) + (", ..." if len(keys) > 2 else "")
    raise SchemaError(f"Column {name!r}{where}: {as_written(v)} is not a JSON object, and the model reads {name!r} "
                      f"as an object{what}; send each row's object, its JSON text ({{{example}}}) or null for none.")


def _flat_object(name: str, obj: Mapping[str, Any] | None, columns: Sequence[str]) -> dict[str, Any]:
    """The columns of the object ``obj`` under ``name``: its keys flattened, the model's keys it lacks as None."""
    out = flat_record(obj, f"{name}.") if obj else {}
    for c in columns:
        out.setdefault(c, None)
    return out


def flat_nested(record: Mapping[str, Any], nested: frozenset[str], where: str = "") -> Mapping[str, Any]:
    """``record`` with the values under the nested names ``nested`` read by ``object_of`` and flattened (a
    null object as every key missing); the record itself where it holds none of them (the usual case)."""
    if not nested or nested.isdisjoint(record):
        return record
    out: dict[str, Any] = {}
    for k, v in record.items():
        columns = nested_columns(nested, k)
        if k in nested and _needed(columns, record):
            out.update(_flat_object(k, object_of(v, k, columns, where), columns))
        else:
            out[k] = v
    return out


def _needed(columns: Sequence[str], present: Any) -> bool:
    """Whether the model's ``columns`` under a nested name are to come from its objects: not all of them are
    ``present`` flat already (a table whose names merely hold dots, 'price.usd' beside a 'price' of its own)."""
    return not columns or not all(c in present for c in columns)


def flat_frame(df: pd.DataFrame, nested: frozenset[str]) -> pd.DataFrame:
    """``df`` with each column under a nested name (objects, their JSON text, nulls) replaced by one column per
    key, as a JSON file's objects are read; ``df`` itself when it holds no such column (a frame already flat)."""
    for c in [c for c in df.columns if c in nested and _needed(nested_columns(nested, c), df.columns)]:
        columns = nested_columns(nested, c)
        rows = [_flat_object(c, object_of(v, c, columns), columns) for v in df[c].tolist()]
        inner = pd.DataFrame.from_records(rows, index=df.index) if rows else pd.DataFrame(index=df.index)
        inner = inner.drop(columns=[k for k in inner.columns if k in df.columns])  # given flat too: that one
        at, attrs = df.columns.get_loc(c), df.attrs
        df = pd.concat([df.iloc[:, :at], inner, df.iloc[:, at + 1:]], axis=1)
        df.attrs = attrs
    return df


def flat_columns(columns: Mapping[str, Sequence[Any]], nested: frozenset[str]) -> dict[str, Sequence[Any]]:
    """A request's columns (name: values) with each one under a nested name read row by row (``object_of``) and
    flattened into the model's columns under it (a key the model does not know as a column of its own), in its
    place: the server's reading of a ``dataframe_split``, a CSV body or an OIP input of objects or JSON text."""
    out: dict[str, Sequence[Any]] = {}
    for name, values in columns.items():
        under = nested_columns(nested, name)
        if name not in nested or not _needed(under, columns):
            out.setdefault(name, values)
            continue
        rows = [_flat_object(name, object_of(v, name, under, f", row {i}"), under) for i, v in enumerate(values)]
        for key in dict.fromkeys(k for row in rows for k in row):
            if key in columns:
                raise SchemaError(f"Column {key!r} is given twice, on its own and in the objects of {name!r}: send "
                                  "it once.")
            out[key] = [row.get(key) for row in rows]
    return out


def nested_gaps(df: pd.DataFrame, names: frozenset[str], needed: list[str]) -> pd.DataFrame:
    """``df`` (flattened by ``flat_frame``) with the ``needed`` columns under a nested name that it lacks
    added as missing values, where the rows hold that nested name at all: a key no row of a JSON file (or of one
    chunk of it) holds is a missing value, as a file read whole has it."""
    present = {c.split(".", 1)[0] for c in df.columns if "." in c} | set(df.columns)
    gaps = [c for c in needed if c not in df.columns and c.split(".", 1)[0] in names & present]
    if not gaps:
        return df
    return df.assign(**dict.fromkeys(gaps, np.nan))
