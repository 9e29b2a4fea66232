"""JSON tables: records, columns, one key holding records, or JSON Lines, as ``load_table`` reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError
from .formats import read_sample

__all__ = ["read_json_table"]


def read_json_table(path: Path, fmt: str, compression: str | None, **kw: Any) -> pd.DataFrame:
    """The JSON or JSON Lines file at ``path`` as a DataFrame (nested objects left for the caller to tidy)."""
    head = read_sample(path, compression, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    lines = fmt == "jsonl" or (head[:1] == b"{" and re.search(rb"}\s*\n\s*{", read_sample(path, compression)) is not None)
    if lines:
        return pd.read_json(path, lines=True, compression=compression, dtype=False, convert_dates=False, **kw)
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
