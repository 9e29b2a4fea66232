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

__all__ = ["CONTAINERS", "flat_objects", "nested_gaps", "plain_cell", "read_json_table"]

#: the value types a reader writes as JSON text (a list of tags, an object in a column of mixed values)
CONTAINERS = (dict, list, tuple, set, np.ndarray)


def flat_objects(df: pd.DataFrame, names: frozenset[str]) -> pd.DataFrame:
    """``df`` with each of its columns named in ``names`` whose values are objects replaced by one column per key
    (``user.age``, deeper levels the same way), as a JSON file's nested objects are read; ``df`` itself when no
    such column is there (a frame already flat)."""
    for c in [c for c in df.columns if c in names and df[c].dtype == object]:
        filled = df[c].dropna()
        if len(filled) and all(isinstance(v, dict) for v in filled):
            inner = pd.json_normalize(filled.tolist()).set_axis(filled.index).reindex(df.index)
            inner.columns = [f"{c}.{k}" for k in inner.columns]
            at, attrs = df.columns.get_loc(c), df.attrs
            df = pd.concat([df.iloc[:, :at], inner, df.iloc[:, at + 1:]], axis=1)
            df.attrs = attrs
    return df


def nested_gaps(df: pd.DataFrame, names: frozenset[str], needed: list[str]) -> pd.DataFrame:
    """``df`` (flattened by ``flat_objects``) with the ``needed`` columns under a nested name that it lacks
    added as missing values, where the rows hold that nested name at all: a key no row of a JSON file (or of one
    chunk of it) holds, or an object that is null in every row, is a missing value, as a file read whole has it."""
    present = {c.split(".", 1)[0] for c in df.columns if "." in c} | set(df.columns)
    gaps = [c for c in needed if c not in df.columns and c.split(".", 1)[0] in names & present]
    if not gaps:
        return df
    empty = [c for c in df.columns if c in names and df[c].isna().all()]  # an object null in every row
    return df.drop(columns=empty).assign(**dict.fromkeys(gaps, np.nan))


def plain_cell(v: Any) -> Any:
    """A cell as every reader and the cleaning plan read it: a list, tuple, set or object as its JSON text
    (keys sorted), other bytes than a picture's as UTF-8 text, anything else as it is."""
    if isinstance(v, bytes):  # a picture's bytes stay bytes (an image column); other bytes are text
        return v if is_image_bytes(v) else v.decode("utf-8", errors="replace")
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict | list | tuple | set):
        return json.dumps(list(v) if isinstance(v, set) else v, default=str, sort_keys=True)
    return v


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
    return pd.json_normalize(data)
