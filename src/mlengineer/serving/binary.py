"""The Open Inference Protocol's binary tensor data extension, which tritonclient uses by default: the JSON
header (its length in the ``Inference-Header-Content-Length`` header), then each binary input's raw
little-endian bytes, in input order; answers in kind for the outputs asked for as binary data."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from ..errors import SchemaError
from .errors import BadRequest

__all__ = ["BINARY_HEADER", "BinaryReader", "binary_answer", "binary_outputs", "split_binary"]


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise SchemaError(message)


#: the header that says how many bytes of the body are the JSON request (or answer); the rest is tensor data
BINARY_HEADER = "Inference-Header-Content-Length"
_NUMPY_TYPES = {"BOOL": "<u1", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1",
                "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part and the tensor bytes of an infer request (all JSON without the header)."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 < n <= len(body):
        raise BadRequest(f"Header {BINARY_HEADER} must be the length of the JSON part of the body, between 1 and "
                         f"{len(body)}; got {header_length[:30]!r}.")
    return body[:n], body[n:]


class BinaryReader:
    """Takes each binary input's bytes in turn from the tensor data after the JSON header."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, where: str, datatype: str, size: Any, count: int) -> list[Any]:
        _need(type(size) is int and size >= 0, f"{where}: 'binary_data_size' must be a number of bytes.")
        _need(self.at + size <= len(self.data), f"{where} has binary_data_size {size}, but only "
              f"{len(self.data) - self.at} bytes of tensor data are left after the JSON header (send the "
              f"{BINARY_HEADER} header with the JSON part's length).")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        if datatype == "BYTES":
            values: list[Any] = _bytes_elements(where, chunk)
        else:
            width = np.dtype(_NUMPY_TYPES[datatype]).itemsize
            _need(size == count * width, f"{where}: {count} {datatype} values take {count * width} bytes; "
                  f"binary_data_size is {size}.")
            arr = np.frombuffer(chunk, dtype=_NUMPY_TYPES[datatype])
            if datatype == "BOOL" and (arr > 1).any():  # one byte each, 0 or 1: any other byte is no BOOL
                i = int(np.argmax(arr > 1))
                raise SchemaError(f"{where}, element {i}: datatype BOOL needs the byte 0 (false) or 1 (true); "
                                  f"got {int(arr[i])}.")
            if datatype.startswith("FP") and np.isinf(arr).any():  # NaN is a missing value; infinity is none
                raise SchemaError(f"{where}, element {int(np.argmax(np.isinf(arr)))}: the value is infinite; send a "
                                  "finite number, or NaN for a missing value (a tensor has no null).")
            values = arr.astype(bool).tolist() if datatype == "BOOL" else arr.tolist()
        _need(len(values) == count, f"{where} holds {len(values)} values in its binary data; its shape holds {count}.")
        return values

    def done(self) -> None:
        _need(self.at == len(self.data), f"The body holds {len(self.data) - self.at} bytes of tensor data that no "
              "input's binary_data_size accounts for.")


def _bytes_elements(where: str, chunk: bytes) -> list[Any]:
    """BYTES elements: each a 4-byte little-endian length, then that many bytes: UTF-8 text, or kept as
    bytes when they are not (a picture's file for an image column; a text column refuses them, naming the row)."""
    out: list[Any] = []
    at = 0
    while at < len(chunk):
        _need(at + 4 <= len(chunk), f"{where}: its binary BYTES data ends inside an element's length.")
        (n,) = struct.unpack_from("<I", chunk, at)
        _need(at + 4 + n <= len(chunk), f"{where}: element {len(out)} is longer than the binary data left.")
        raw = chunk[at + 4:at + 4 + n]
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(raw)
        at += 4 + n
    return out


def binary_outputs(body: dict[str, Any], names: list[str]) -> set[str]:
    """The outputs an infer request wants as binary data: all with ``parameters.binary_data_output``, each
    output's own ``parameters.binary_data`` deciding for it."""
    params = body.get("parameters")
    default = isinstance(params, dict) and params.get("binary_data_output") is True
    asked: dict[str, Any] = {}
    for o in body.get("outputs") or []:
        if isinstance(o, dict) and isinstance(o.get("parameters"), dict):
            asked[o["name"]] = o["parameters"].get("binary_data")
    return {n for n in names if asked.get(n) is True or (asked.get(n) is None and default)}


def binary_answer(answer: dict[str, Any], binary: set[str]) -> tuple[bytes, int]:
    """The infer answer with the ``binary`` outputs' data moved after the JSON part, and that part's length
    (for the BINARY_HEADER)."""
    chunks: list[bytes] = []
    for out in answer["outputs"]:
        if out["name"] not in binary:
            continue
        data = out.pop("data")
        if out["datatype"] == "BYTES":
            raw = b"".join(struct.pack("<I", len(b)) + b for b in
                           (v if isinstance(v, bytes) else ("" if v is None else str(v)).encode() for v in data))
        else:
            values = np.asarray([np.nan if v is None else v for v in data] if isinstance(data, list) else data)
            raw = values.astype(_NUMPY_TYPES[out["datatype"]]).tobytes()
        out["parameters"] = {**(out.get("parameters") or {}), "binary_data_size": len(raw)}
        chunks.append(raw)
    head = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    return head + b"".join(chunks), len(head)
