"""Request bodies sent compressed (``Content-Encoding: gzip`` or ``deflate``, as tritonclient's
``request_compression_algorithm`` sends them), decoded as they stream in.

The server's body limit holds on the decoded bytes: a small body that inflates past it (a "zip bomb") is
refused with 413 as soon as it does, having inflated at most the limit and one step more, never the whole.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["ENCODINGS", "Inflater", "body_encoding", "inflating"]

#: the compressions a request body may come in
ENCODINGS = ("gzip", "deflate")
#: the most bytes one step of inflating gives; what a bomb can make the server hold past the limit
STEP = 64 * 1024


def body_encoding(value: bytes | None) -> str | None:
    """The compression a ``Content-Encoding`` header names (None: none, or ``identity``), or
    UnsupportedMediaType (415) for one that is not read here."""
    if value is None:
        return None
    names = [n.strip().lower() for n in value.decode("latin-1").split(",")]
    names = ["gzip" if n == "x-gzip" else n for n in names if n and n != "identity"]
    if not names:
        return None
    if len(names) == 1 and names[0] in ENCODINGS:
        return names[0]
    raise UnsupportedMediaType(f"Content-Encoding {value.decode('latin-1')[:60]!r} is not read here: send the body "
                               f"uncompressed, or compressed once with {' or '.join(ENCODINGS)}.")


class Inflater:
    """Decodes one request's body chunk by chunk, counting the decoded bytes against ``limit``."""

    def __init__(self, encoding: str, limit: int, too_large: str) -> None:
        self.encoding = encoding
        self.limit = limit
        self.too_large = too_large
        self.size = 0  # decoded bytes so far
        self._d: Any = None  # made at the first bytes: a deflate body's first two say which form it has

    def _start(self, head: bytes) -> Any:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is zlib's format (RFC 9110), but some clients send the bare stream without its header
        zlib_header = len(head) < 2 or (head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0)
        return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)

    def feed(self, data: bytes, *, final: bool) -> bytes:
        """The decoded bytes of the next chunk; ``final``: the body ends with it."""
        out: list[bytes] = []
        if data:
            if self._d is None:
                self._d = self._start(data)
            self._inflate(data, out)
        if final and self._d is not None and not self._d.eof:
            raise BadRequest(f"The body ends inside its {self.encoding} data: send the whole compressed body.")
        return b"".join(out)

    def _inflate(self, data: bytes, out: list[bytes]) -> None:
        d = self._d
        while True:
            if d.eof:
                if not d.unused_data:
                    return
                if self.encoding != "gzip":
                    raise BadRequest("The body holds bytes after the end of its deflate data: send only the "
                                     "compressed body.")
                data = d.unused_data  # gzip members may follow one another (RFC 1952)
                d = self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                chunk = d.decompress(data, STEP)
            except zlib.error as e:
                raise BadRequest(f"The body is not {self.encoding} data ({e}), as its Content-Encoding header says: "
                                 "compress it so, or leave the header out.") from None
            self.size += len(chunk)
            if self.size > self.limit:
                raise PayloadTooLarge(self.too_large)
            out.append(chunk)
            data = d.unconsumed_tail
            if not data and len(chunk) < STEP and not d.eof:
                return  # all taken in, nothing more to give out until more comes


def inflating(receive: Callable[[], Awaitable[dict[str, Any]]],
              inflater: Inflater) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` whose request messages carry the decoded body."""

    async def wrapped() -> dict[str, Any]:
        message = await receive()
        if message["type"] == "http.request":
            body = inflater.feed(message.get("body", b""), final=not message.get("more_body", False))
            message = {**message, "body": body}
        return message

    return wrapped
