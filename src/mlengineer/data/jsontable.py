"""JSON tables: records, columns, one key holding records, or JSON Lines, as ``load_table`` reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .formats import read_sample
from .images import is_image_bytes

__all__ = ["CONTAINERS", "json_records_frame", "mixed_as_text", "plain_cell", "read_json_table"]

#: the value types a reader writes as JSON text (a list of tags, an object in a column of mixed values)
CONTAINERS = (dict, list, tuple, set, np.ndarray)


def plain_cell(v: Any) -> Any:
    """A cell as every reader and the cleaning plan read it: a list, tuple, set or object as its JSON text
    (keys sorted), other bytes than a picture's as UTF-8 text, anything else as it is. A container nested too
    deeply to write (about a thousand levels: Python's recursion limit) is a DataError, not a crash."""
    if isinstance(v, bytes):  # a picture's bytes stay bytes (an image column); other bytes are text
        return v if is_image_bytes(v) else v.decode("utf-8", errors="replace")
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict | list | tuple | set):
        try:
            return json.dumps(list(v) if isinstance(v, set) else v, default=str, sort_keys=True)
        except RecursionError:
            raise DataError("a value is a list or object nested too deeply to read as text: flatten it") from None
    return v


def mixed_as_text(records: list[Any]) -> list[Any]:
    """JSON ``records`` with each key that holds an object in some rows and another value (a number, text, a
    list) in others kept whole, its objects as their JSON text (``plain_cell``), at any depth: one column, as a
    JSON Lines file's top-level keys are read (flattening it would give both ``a`` and ``a.b``). The records
    themselves where none does."""
    rows = [r for r in records if isinstance(r, dict)]
    changed: dict[str, Any] = {}
    for k in dict.fromkeys(k for r in rows for k in r):
        values = [r[k] for r in rows if k in r and r[k] is not None
                  and not (isinstance(r[k], float) and r[k] != r[k])]  # no null, no NaN
        objects = [v for v in values if isinstance(v, dict)]
        if objects and len(objects) < len(values):
            changed[k] = lambda v: plain_cell(v) if isinstance(v, dict) else v
        elif objects and (inner := mixed_as_text(objects)) is not objects:
            by_id = dict(zip(map(id, objects), inner, strict=True))
            changed[k] = lambda v, by_id=by_id: by_id.get(id(v), v)
    if not changed:
        return records
    return [{k: changed[k](v) if k in changed else v for k, v in r.items()} if isinstance(r, dict) else r
            for r in records]


def json_records_frame(records: list[Any]) -> pd.DataFrame:
    """JSON records as a table, as every reader flattens them (``pd.json_normalize``): a key mixing objects and
    other values kept whole (``mixed_as_text``), and a key null in some rows and an object in others no empty
    column of its own beside its keys (they are missing there, as a top-level key null in some rows is read)."""
    records = mixed_as_text(records)
    df = pd.json_normalize(records)
    objects = _object_keys(records)
    parents = [c for c in df.columns if c in objects and df[c].isna().all()]
    return df.drop(columns=parents) if parents else df


def _object_keys(records: list[Any], prefix: str = "") -> set[str]:
    """The dotted names of the keys that hold an object in some row of ``records``, at any depth."""
    rows = [r for r in records if isinstance(r, dict)]
    out: set[str] = set()
    for k in dict.fromkeys(k for r in rows for k in r):
        objects = [r[k] for r in rows if isinstance(r.get(k), dict)]
        if objects:
            out |= {f"{prefix}{k}", *_object_keys(objects, f"{prefix}{k}.")}
    return out


def read_json_table(path: Path, fmt: str, compression: str | None, **kw: Any) -> pd.DataFrame:
    """The JSON or JSON Lines file at ``path`` as a DataFrame (nested objects left for the caller to tidy)."""
    head = read_sample(path, compression, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    lines = fmt == "jsonl" or (head[:1] == b"{" and re.search(rb"}\s*\n\s*{", read_sample(path, compression)) is not None)
    if lines:
        # precise_float: pandas' default reads 1.493 as 1.4929999999999999, where json, the server and Spark read 1.493
        return pd.read_json(path, lines=True, compression=compression, dtype=False, convert_dates=False,
                            precise_float=True, **kw)
    raw = read_sample(path, compression, n=-1) if compression else path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_one_value_per_key)
    except UnicodeDecodeError:
        raise DataError("JSON must be UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    return _frame_from_json(data)


def _one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the file, refused when it names a key twice (Python's reader keeps the last silently)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DataError(f"an object names the key {k!r} twice: give each column its own name")
        out[k] = v
    return out


def _frame_from_json(data: Any) -> pd.DataFrame:
    """Records ([{...}, ...]), columns ({"a": [...], ...}), or one key holding records ({"data": [...]})."""
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list)}
        if len(lists) == 1 and all(isinstance(r, dict) for r in next(iter(lists.values()))):
            data = next(iter(lists.values()))
        elif lists and len(lists) == len(data) and len({len(v) for v in lists.values()}) == 1:
            return pd.DataFrame(lists)
        elif data and all(isinstance(v, dict) for v in data.values()):
            return pd.DataFrame(data)  # {"col": {"row": value}}, as pandas writes by default
        else:
            raise DataError("expected a list of records, or an object of equal-length columns")
    if not isinstance(data, list) or not data:
        raise DataError("expected a non-empty list of records")
    if not all(isinstance(r, dict) for r in data):
        raise DataError("every record must be a JSON object of column: value")
    return json_records_frame(data)
