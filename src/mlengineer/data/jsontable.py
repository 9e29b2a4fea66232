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

__all__ = ["CONTAINERS", "plain_cell", "read_json_table"]

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
