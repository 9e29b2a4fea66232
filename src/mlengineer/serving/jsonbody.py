"""A request's JSON body read as the routes take it (``parse_json``), and a client's value as an answer may echo
it (``shown``).

Every JSON body goes through ``parse_json``, whichever the endpoint; refused there, naming where, with a 400:

- text holding half a UTF-16 surrogate pair on its own (``"\\ud800"``, which orjson refuses and the standard
  library lets through): no later step could store it or answer with it;
- an object that names a key twice (``{"a": 1, "a": 2}``): JSON readers keep one of the two without a word
  (orjson and the standard library the last), so a row would be predicted on a value its client may not have
  meant. Training's JSON reader refuses it too.

orjson cannot say whether it dropped a key. Every key of the text is followed by a colon outside any string,
so a body whose colons all show up again in the value as read (one per key kept, plus those inside its
strings, which orjson's compact writing gives back in one C call) names no key twice; only a body where
they differ (a repeated key, a colon written as ``\\u003a``, nesting too deep to write again) is read a
second time, key by key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import orjson

from ..bundle.notes import shown
from .errors import BadRequest

__all__ = ["RepeatedKey", "parse_json", "shown"]  # shown: bundle.notes's, the words every door echoes a value in


class RepeatedKey(BadRequest):
    """A JSON object of the body names a key twice."""


def cut(text: str, limit: int = 120) -> str:
    """``text`` as it is, or cut to ``limit`` characters with an ellipsis (a path through the body's keys)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``. Strict JSON goes through orjson; Python clients that write ``NaN``,
    ``Infinity`` or integers beyond 64 bits are read too, so that validation can name the field. A lone
    surrogate or a key named twice in one object is refused here, naming where it is."""
    if not body:
        raise BadRequest("The request body is empty: send JSON.")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest(f"The body is not valid JSON: {str(e).split(':')[0]}.") from None
        _check_surrogates(body, value)
        _check_keys(body, value)
        return value
    if len(body) < 4096 and b"\\" not in body:  # a small body without escapes (most): the check inline
        colons = body.count(b":")
        try:
            if not colons or colons == orjson.dumps(value).count(b":"):
                return value
        except TypeError:
            pass
    _check_keys(body, value)
    return value


def _check_surrogates(body: bytes, value: Any) -> None:
    # in an ASCII body a lone surrogate can only be written as an escape: search the value only if one is there
    found = _lone_surrogate(value) if not body.isascii() or _SURROGATE_ESCAPE.search(body) else None
    if found is not None:
        where, char = found
        raise BadRequest(f"The body is not valid JSON: {where} holds \\u{ord(char):04x}, half of a UTF-16 surrogate "
                         "pair on its own, which is no character; send UTF-8 text.")


def _colons(data: bytes) -> int:
    """How many colons ``data`` holds: NumPy counts a large body about ten times faster than ``bytes.count``."""
    if len(data) < 4096:
        return data.count(b":")
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == _COLON))


_COLON = ord(":")


def _colons_again(value: Any) -> int:
    """The colons of ``value`` written compactly by orjson (NaN as null, which has none)."""
    return _colons(orjson.dumps(value))


def _check_keys(body: bytes, value: Any) -> None:
    """Refuse a body that names a key twice in one object. Each key of the text has its colon outside strings;
    every other colon of the text is inside a string, written as it is or as ``\\u003a``. Written again
    compactly, the value has a colon per key it kept and one per colon of its strings: with nothing dropped,
    the text's colons plus its escaped ones are exactly the value's, and a key dropped leaves the value fewer.
    Counting more escapes than there are (any ``\\u003?``) only sends a body to the slow way, never lets a
    repeated key through."""
    colons = _colons(body)
    if not colons:
        return
    escaped = body.count(b"\\u003") if b"\\" in body else 0  # memchr first: most bodies have no escape
    try:
        if colons + escaped == _colons_again(value):
            return
    except TypeError:  # nesting deeper than orjson writes, integers beyond 64 bits: read it key by key
        pass
    try:
        again = json.loads(body, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):  # deeper than Python's reader goes: validation refuses such nesting
        return
    found = _first_repeated(again)
    if found is not None:
        where, key = found
        raise RepeatedKey(f"The body names the key {shown(key)} twice in {where}: JSON readers keep one of the two "
                         "without a word, so which value is meant cannot be told; send each key once.")


class _Repeated(dict[str, Any]):
    """An object of the body that names ``key`` twice (the first key it names again)."""

    key: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as the standard library reads it, marked when it names a key twice."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    marked = _Repeated(obj)
    for k, _ in pairs:
        if k in seen:
            marked.key = k
            break
        seen.add(k)
    return marked


def _first_repeated(value: Any) -> tuple[str, str] | None:
    """Where the first object (in the body's order) that names a key twice is, and the key."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        v, at = stack.pop()
        if isinstance(v, _Repeated):
            return (cut(at) if at else "the top object"), v.key
        if isinstance(v, dict):
            stack.extend((item, f"{at}.{k}" if at else k) for k, item in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((item, f"{at}[{i}]") for i, item in reversed(list(enumerate(v))))
    return None


#: an escape of half a UTF-16 surrogate pair (\\ud800 to \\udfff)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: Any) -> tuple[str, str] | None:
    """Where in a decoded JSON value a string or key holds a lone surrogate (``the text at records[0].plan``,
    ``the key '\\ud800' in records[0]``), and the surrogate."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        v, at = stack.pop()
        if isinstance(v, str):
            if (m := _SURROGATES.search(v)) is not None:
                return f"the text at {cut(at) if at else 'the top'}", m.group()
        elif isinstance(v, dict):
            for k in v:
                if (m := _SURROGATES.search(k)) is not None:
                    return f"the key {shown(k)} in {cut(at) if at else 'the top object'}", m.group()
            stack.extend((item, f"{at}.{k}" if at else k) for k, item in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((item, f"{at}[{i}]") for i, item in reversed(list(enumerate(v))))
    return None
