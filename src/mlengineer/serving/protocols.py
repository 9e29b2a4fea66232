"""Request bodies of each protocol decoded to columns, and predictions encoded to each protocol's answer.

- ``POST /predict``: ``{"records": [{column: value}, ...]}``, the bare list ``[{column: value}, ...]``, or one
  row ``{column: value}``.
- ``POST /invocations`` (MLflow's scoring protocol): JSON with one of ``dataframe_split``,
  ``dataframe_records``, ``instances`` or ``inputs``, or a CSV body; the answer is MLflow's
  ``{"predictions": [...]}`` with the same rows ``mlflow models serve`` gives for the bundle.
- ``POST /v2/models/{name}/infer`` (Open Inference Protocol v2): one named input tensor per column, as JSON
  or in the binary tensor data extension that tritonclient uses by default (``split_binary`` and
  ``binary_answer``: the JSON header, then each tensor's raw little-endian bytes).

Decoders return ``(columns, n_rows)`` with raw JSON values; ``RequestValidator`` types them. A field the
route's request object does not have is refused by name (``check_fields``), and so is a body that is not JSON
(``check_json_type``: 415).

``parse_json`` (``jsonbody.py``) reads every JSON body: text holding half a UTF-16 surrogate pair on its own,
or an object naming a key twice, is a 400 naming where, whichever the endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.nested import flat_nested
from ..errors import SchemaError
from .binary import BINARY_HEADER, BinaryReader, binary_answer, binary_outputs, split_binary
from .csvbody import columns_from_csv
from .errors import UnsupportedMediaType
from .jsonbody import parse_json, shown

__all__ = ["BINARY_HEADER", "EXPLAIN_FIELDS", "MLFLOW_FIELDS", "MLFLOW_PARAMS", "OIP_DATATYPES", "OIP_FIELDS",
           "OIP_PARAMS", "PREDICT_FIELDS", "RaggedColumns", "binary_answer", "binary_outputs", "check_fields",
           "check_json_type", "columns_from_csv", "columns_from_mlflow", "columns_from_oip", "columns_from_records",
           "inference_params", "mlflow_params", "parse_json", "records_in", "shown", "split_binary"]

Columns = dict[str, list[Any]]

_INT_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOAT_TYPES = ("FP16", "FP32", "FP64")
OIP_DATATYPES = ("BOOL", *_INT_TYPES, *_FLOAT_TYPES, "BYTES")
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: the fields each route's request object may have: any other is a mistake worth naming (a typo such as
#: 'instance' would otherwise be ignored). KServe's REST client also sends OIP's 'model_name'
MLFLOW_FIELDS = (*MLFLOW_KEYS, "params")
#: the keys of /invocations' 'params' object (MLflow's inference parameters)
MLFLOW_PARAMS = ("interval",)
OIP_FIELDS = ("id", "parameters", "inputs", "outputs", "model_name")
#: the keys of an infer request's 'parameters': the coverage, and the binary extension's default for outputs
OIP_PARAMS = ("interval", "binary_data_output")
PREDICT_FIELDS = ("records", "interval")
EXPLAIN_FIELDS = ("records", "top", "class")
#: the whole numbers each integer datatype holds, and the largest size of each floating-point one
_INT_RANGES = {t: (0, (1 << int(t[4:])) - 1) if t[0] == "U" else (-(1 << int(t[3:]) - 1), (1 << int(t[3:]) - 1) - 1)
               for t in _INT_TYPES}
_FLOAT_MAX = {"FP16": float(np.finfo(np.float16).max), "FP32": float(np.finfo(np.float32).max), "FP64": math.inf}


def check_json_type(content_type: str | None, where: str, *, binary: bool = False) -> None:
    """415 for a body whose Content-Type is not JSON, or that has none; ``binary``: OIP's infer, which also
    takes binary tensor data (application/octet-stream) and a body without a Content-Type, as tritonclient and
    KServe's client send it (a browser's is refused by the middleware)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json") or (binary and mime in ("application/octet-stream", "")):
        return
    if not mime:
        raise UnsupportedMediaType(f"The request has no Content-Type: send the body to {where} as application/json "
                                   "(with curl: -H 'Content-Type: application/json').")
    also = (" (or application/octet-stream for binary tensor data, with the Inference-Header-Content-Length "
            "header)") if binary else ""
    raise UnsupportedMediaType(f"Content-Type {shown(content_type)} is not read at {where}: send application/json"
                               f"{also}.")


def check_fields(body: Any, allowed: tuple[str, ...], where: str, *, kind: str = "Field") -> None:
    """422 naming the first field of a request object that ``where`` does not take, and those it takes
    (``kind``: what the message calls a key of the object)."""
    unknown = [k for k in body if k not in allowed] if isinstance(body, dict) else []
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], allowed, n=1)
        raise SchemaError(f"{kind} {shown(unknown[0])} is not one {where} takes"
                          f"{f' (did you mean {near[0]!r}?)' if near else ''}; it takes {', '.join(allowed)}.")


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise SchemaError(message)


def records_in(body: Any) -> tuple[Any, dict[str, Any]]:
    """The rows of a ``/predict`` or ``/explain`` body and the request's other fields: ``{"records": [...],
    ...}``; the bare list of records other servers take (``[{column: value}, ...]``); or one row alone
    (``{column: value}``, no value a list), which has no other fields."""
    if isinstance(body, list):
        return body, {}
    if isinstance(body, dict) and "records" not in body and body and not any(type(v) is list for v in body.values()):
        return [body], {}  # nested objects in it are flattened as in any record
    if not isinstance(body, dict) or "records" not in body:
        raise SchemaError("The body must be a JSON list of rows, each {column: value}, an object with 'records': "
                          "that list, or one row {column: value}.")
    return body["records"], body


class RaggedColumns(dict[str, list[Any]]):
    """Columns of records that do not all name the same columns: ``absent`` holds, for each column some record
    lacks, where the first such record is (``records[1]``). Its cells there are None; the validator refuses a
    feature column that is absent from some records (null is how a record says a value is missing)."""

    def __init__(self, columns: dict[str, list[Any]], absent: dict[str, str]) -> None:
        super().__init__(columns)
        self.absent = absent


def columns_from_records(records: Any, *, field: str = "records", nested: frozenset[str] = frozenset()
                         ) -> tuple[Columns, int]:
    """Columns from a list of JSON objects. A column absent from some records (and named by others) is noted
    in a ``RaggedColumns``, so that validation can name the record that lacks a column the model needs."""
    _need(isinstance(records, list), f"{field!r} must be a list of JSON objects, one per row.")
    if not records:
        return {}, 0
    first = records[0]
    for i, r in enumerate(records):
        _need(type(r) is dict, f"{field}[{i}] must be a JSON object of column: value; got {type(r).__name__}.")
        if nested:  # objects (their JSON text, null) under a nested JSON column's name, read as training read them
            records[i] = flat_nested(r, nested, f", row {i}")
    first = records[0]
    keys = first.keys()
    if all(r.keys() == keys for r in records):
        return {k: [r[k] for r in records] for k in first}, len(records)
    union: dict[str, None] = {}
    for r in records:
        union.update(dict.fromkeys(r))
    absent: dict[str, str] = {}
    for i, r in enumerate(records):
        for k in union:
            if k not in r and k not in absent:
                absent[k] = f"{field}[{i}]"
    return RaggedColumns({k: [r.get(k) for r in records] for k in union}, absent), len(records)


def columns_from_split(obj: Any, *, field: str = "dataframe_split") -> tuple[Columns, int]:
    """Columns from pandas' split orientation: ``{"columns": [...], "data": [[...], ...]}``."""
    _need(isinstance(obj, dict), f"{field!r} must be an object with 'columns' and 'data'.")
    names, data = obj.get("columns"), obj.get("data")
    _need(isinstance(names, list) and all(isinstance(c, str) for c in names),
          f"{field}.columns must be a list of column names.")
    _need(isinstance(data, list), f"{field}.data must be a list of rows, each a list of values.")
    _need(len(set(names)) == len(names), f"{field}.columns names a column twice.")
    width = len(names)
    for i, row in enumerate(data):
        _need(isinstance(row, list) and len(row) == width,
              f"{field}.data[{i}] must be a list of {width} values, one per column.")
    return {c: [row[j] for row in data] for j, c in enumerate(names)}, len(data)


def _columns_from_mapping(obj: dict[str, Any], field: str) -> tuple[Columns, int]:
    """``{column: [values]}`` (columnar), or ``{column: value}`` for one row."""
    if obj and all(isinstance(v, list) for v in obj.values()):
        lengths = {len(v) for v in obj.values()}
        _need(len(lengths) == 1, f"The columns of {field!r} have different lengths: {sorted(lengths)}.")
        return {k: list(v) for k, v in obj.items()}, lengths.pop()
    return {k: [v] for k, v in obj.items()}, 1 if obj else 0


def columns_from_mlflow(body: Any) -> tuple[Columns, int]:
    """Columns from an MLflow scoring request (``dataframe_split``, ``dataframe_records``, ``instances``
    or ``inputs``)."""
    _need(isinstance(body, dict), "The body must be a JSON object with one of: " + ", ".join(MLFLOW_KEYS) + ".")
    check_fields(body, MLFLOW_FIELDS, "/invocations")
    given = [k for k in MLFLOW_KEYS if k in body]
    _need(len(given) == 1, "The body must have exactly one of " + ", ".join(MLFLOW_KEYS)
          + (f"; it has {', '.join(given)}." if given else f"; it has {', '.join(map(shown, list(body)[:5])) or 'none'}."))
    key = given[0]
    value = body[key]
    if key == "dataframe_split":
        return columns_from_split(value)
    if key == "dataframe_records":
        return columns_from_records(value, field=key)
    if isinstance(value, dict):
        return _columns_from_mapping(value, key)
    _need(isinstance(value, list), f"{key!r} must be a list of records or an object of columns.")
    _need(all(isinstance(r, dict) for r in value),
          f"{key!r} must hold records ({{column: value}}): this model takes named columns, not tensors.")
    return columns_from_records(value, field=key)


def mlflow_params(body: dict[str, Any]) -> dict[str, Any]:
    """The ``params`` object of an /invocations request ({} where it has none)."""
    return inference_params(body, "params", MLFLOW_PARAMS, "/invocations")


def inference_params(body: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    """The object of inference parameters under ``key`` ({} where there is none): not an object, or a key in it
    that is not ``allowed``, is refused by name, as a field of the request is (a typo would otherwise be ignored)."""
    params = body.get(key)
    if params is None:
        return {}
    _need(isinstance(params, dict), f"{key!r} must be an object of inference parameters, such as "
          f"{{\"interval\": 0.9}}; got {_kind_of(params)}.")
    check_fields(params, allowed, where, kind=f"{key!r} key")
    return params


def _kind_of(v: Any) -> str:
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return "true" if v is True else "false" if v is False else shown(v, 40)


def _values_of(data: list[Any], shape: list[int], where: str) -> list[Any]:
    """The values of an input's ``data``: flat (no value a list), or nested exactly as its shape says, level
    by level (``[[1], [2], [3]]`` for shape [3, 1]); any other nesting is refused rather than flattened, for
    it cannot say which value belongs to which row."""
    if not any(isinstance(v, list) for v in data):
        return data
    level: list[Any] = [data]
    for depth, size in enumerate(shape):
        below: list[Any] = []
        for i, part in enumerate(level):
            if not isinstance(part, list) or len(part) != size:
                at = "".join(f"[{j}]" for j in _index(i, shape[:depth]))
                got = f"{len(part)} value{'s' if len(part) != 1 else ''}" if isinstance(part, list) \
                    else f"the value {_kind_of(part)}"
                raise SchemaError(f"{where}: data{at} holds {got} where its shape {shape} has {size} at that "
                                  f"level: send data flat ({math.prod(shape)} values) or nested exactly as the "
                                  "shape says.")
            below.extend(part)
        level = below
    _need(not any(isinstance(v, list) for v in level),
          f"{where}: data is nested deeper than its shape {shape}: send data flat ({math.prod(shape)} values) or "
          "nested exactly as the shape says.")
    return level


def _index(i: int, sizes: list[int]) -> list[int]:
    """The position ``i`` of a flat row-major order as one index per level of ``sizes``."""
    out = []
    for size in reversed(sizes):
        i, j = divmod(i, size) if size else (i, 0)
        out.append(j)
    return out[::-1]


def _check_elements(name: str, datatype: str, values: list[Any]) -> None:
    for i, v in enumerate(values):
        if v is None:
            continue  # a missing value, whatever the datatype
        t = type(v)
        if datatype == "BYTES":
            ok = t is str or t is bytes  # bytes: binary data that is not UTF-8 (a picture's file)
            need = "text"
        elif datatype == "BOOL":
            ok = t is bool
            need = "true or false"
        elif datatype in _INT_TYPES:
            lo, hi = _INT_RANGES[datatype]
            ok = t is int and lo <= v <= hi
            need = f"a whole number from {lo} to {hi}"
        else:  # NaN and infinity are the validator's to name
            top = _FLOAT_MAX[datatype]
            ok = (t is float or t is int) and not (math.isfinite(v) and abs(v) > top)
            need = f"a number between {-top:g} and {top:g}" if top < math.inf else "a number"
        if not ok:
            raise SchemaError(f"Input {shown(name)}, element {i}: datatype {datatype} needs {need}; got {shown(v)}.")


def columns_from_oip(body: Any, binary: bytes = b"") -> tuple[Columns, int, list[str] | None]:
    """Columns from an Open Inference Protocol infer request, and the output names it asks for (None: all).

    Each input is one column: ``{"name", "shape": [n] or [n, 1], "datatype", "data"}`` with ``data`` flat or
    nested row by row. ``null`` elements are missing values, and so is NaN in a floating-point tensor (tensors
    have no null: tritonclient and KServe's client write a missing number as NaN). An input with
    ``parameters.binary_data_size`` instead of ``data`` takes its values from ``binary`` (the bytes after the
    JSON header), in input order."""
    reader = BinaryReader(binary)
    _need(isinstance(body, dict), "The body must be an inference request: a JSON object with 'inputs'.")
    check_fields(body, OIP_FIELDS, "/v2/models/.../infer")
    request_id = body.get("id")
    _need(request_id is None or isinstance(request_id, str),
          f"'id' must be a string (the request's id, given back in the answer); got {_kind_of(request_id)}.")
    inputs = body.get("inputs")
    _need(isinstance(inputs, list) and len(inputs) > 0,
          "'inputs' must be a non-empty list: one input per column, each with name, shape, datatype and data.")
    columns: Columns = {}
    n_rows: int | None = None
    for j, inp in enumerate(inputs):
        _need(isinstance(inp, dict), f"inputs[{j}] must be an object with name, shape, datatype and data.")
        name, shape, datatype, data = (inp.get(k) for k in ("name", "shape", "datatype", "data"))
        _need(isinstance(name, str) and name != "", f"inputs[{j}].name must be the column's name.")
        where = f"Input {shown(name)}"
        _need(name not in columns, f"{where} is given twice.")
        _need(isinstance(shape, list) and len(shape) >= 1 and all(type(d) is int and d >= 0 for d in shape),
              f"{where}: 'shape' must be a list of sizes such as [{'n'}] or [n, 1].")
        _need(datatype in OIP_DATATYPES, f"{where}: 'datatype' must be one of {', '.join(OIP_DATATYPES)}; "
              f"got {shown(datatype, 30)}.")
        _need(math.prod(shape[1:]) == 1,
              f"{where} has shape {shape}: send one value per row, shape [n] or [n, 1].")
        size = (inp.get("parameters") or {}).get("binary_data_size") if isinstance(inp.get("parameters"), dict) \
            else None
        flat: list[Any] = []
        if size is not None and data is None:
            flat = reader.take(where, str(datatype), size, math.prod(shape))
        else:
            _need(isinstance(data, list), f"{where}: 'data' must be a list of values.")
            flat = _values_of(data, shape, where)
        _need(len(flat) == math.prod(shape),
              f"{where} has {len(flat)} values but its shape {shape} holds {math.prod(shape)}.")
        _need(n_rows is None or shape[0] == n_rows,
              f"{where} has {shape[0]} rows; the inputs before it have {n_rows}.")
        _check_elements(name, str(datatype), flat)
        if datatype in _FLOAT_TYPES:  # tensors have no null: numpy clients write a missing number as NaN
            flat = [None if type(v) is float and v != v else v for v in flat]
        n_rows = shape[0]
        columns[name] = flat
    reader.done()
    outputs = body.get("outputs")
    wanted: list[str] | None = None
    if outputs is not None:
        _need(isinstance(outputs, list) and all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs),
              "'outputs' must be a list of objects, each with the 'name' of an output.")
        wanted = [o["name"] for o in outputs]
    return columns, int(n_rows or 0), wanted


# -- answers ---------------------------------------------------------------------------------------------------

def plain(values: np.ndarray) -> list[Any]:
    """A 1-d array as JSON-ready Python values (NumPy scalars and NaN made plain)."""
    out = values.tolist()
    if values.dtype.kind == "f":
        return [None if v != v else v for v in out]
    return out


def oip_datatype(values: Sequence[Any] | np.ndarray) -> str:
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return "BOOL"
    if arr.dtype.kind in "iu":
        return "INT64"
    if arr.dtype.kind == "f":
        return "FP64"
    return "BYTES"
