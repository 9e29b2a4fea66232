"""One pure-ASGI middleware for what every request goes through: its id, the API key, the body size limit,
the content types a browser may send unasked, compressed bodies (``encoding.py``), timing, metrics and the
JSON access line. (Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per request; this costs a few
dict look-ups.)

Each request has an id: the client's ``X-Request-ID``, else one of the server's making; an Open Inference
Protocol request's body ``id`` takes its place where no header gave one (``adopt_request_id``), so clients
that cannot set headers (tritonclient) still key the prediction log. It comes back in the answer's
``x-request-id`` header and keys the access line and the prediction log.

A page in a browser can post to any server it can reach with a "simple" request (form data or text/plain,
or no Content-Type at all, as ``fetch`` of a Blob and ``sendBeacon`` send: no preflight, and no key needed
where the server has none), so a body of one of those types is refused with 415 before it reaches a model;
a body without a Content-Type is refused so when a browser sent it (it carries ``Origin`` or ``Sec-Fetch-*``),
and by the routes that read JSON whoever sent it (tritonclient and KServe's client send none to OIP's infer).
A client that goes away before it sent its whole body is logged as 499 (client closed the request), not as an
error of the server; a body that stops arriving is cut by the server (``server.py``: 408 after
``read_timeout``, 503 at shutdown), which the body's reader here raises.
"""

from __future__ import annotations

import hmac
import itertools
import os
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from starlette.requests import ClientDisconnect

from .encoding import Inflater, body_encoding, inflating
from .errors import PayloadTooLarge, UnsupportedMediaType, error_body
from .logs import server_log

if TYPE_CHECKING:
    from .lanes import Lanes
    from .service import Service

__all__ = ["DOCS_PATH", "OPEN_PATHS", "READ_CUT", "ServiceMiddleware", "adopt_request_id", "sent_key"]

#: answered without an API key: health checks (load balancers and orchestrators carry no key). The document
#: needs the key like the rest (/openapi.json names every input column and shows values from the training data)
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})
#: the docs page: a shell holding no model data, open so that a browser (which cannot send a header from its
#: address bar) can load it; it asks for the key to read /openapi.json (``docs.py``)
DOCS_PATH = "/docs"
_UNGUARDED = OPEN_PATHS | {DOCS_PATH}
#: the scope key where the server puts the error to raise when it cuts a request whose body stopped arriving
READ_CUT = "mlengineer.read_cut"
#: the body types a browser sends cross-site without asking the server first (CORS "simple" requests)
BROWSER_SIMPLE_TYPES = frozenset({b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data"})
CLIENT_CLOSED = 499

Scope = dict[str, Any]
MAX_REQUEST_ID = 128  # characters of a client's id kept


def adopt_request_id(scope: MutableMapping[str, Any], value: str) -> None:
    """Make ``value`` (a request body's own id, such as OIP's ``id``) the request's id, unless the client sent
    an ``X-Request-ID`` header, which wins: the prediction log, the access line and the answer's
    ``x-request-id`` header then carry it. A header can hold printable ASCII only, so there any other
    character is percent-encoded (UTF-8); the log keeps the id as given."""
    if not value or scope.get("mlengineer.request_id_given"):
        return
    rid = value[:MAX_REQUEST_ID]
    scope["mlengineer.request_id"] = rid
    scope["mlengineer.request_id_header"] = header_form(rid)


def header_form(rid: str) -> str:
    """A request id as a header can hold it: as it is when printable ASCII, else percent-encoded (UTF-8)."""
    return rid if rid.isascii() and rid.isprintable() else quote(rid, safe="")


def _given_id(raw: bytes) -> str:
    """A client's X-Request-ID as text: UTF-8 as clients write it, else Latin-1 (any bytes read as some text)."""
    try:
        return raw.decode("utf-8")[:MAX_REQUEST_ID]
    except UnicodeDecodeError:
        return raw.decode("latin-1")[:MAX_REQUEST_ID]


def _error(status: int, message: str, path: str) -> tuple[dict[str, Any], bytes]:
    body = orjson.dumps(error_body(message, status, path))
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, body


def sent_key(headers: dict[bytes, bytes]) -> bytes:
    """The API key a request sends (X-API-Key, else Authorization: Bearer), empty where none."""
    given = headers.get(b"x-api-key")
    if given is None:
        auth = headers.get(b"authorization", b"")
        given = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
    return given


class ServiceMiddleware:
    def __init__(self, app: Any, *, service: Service, lanes: Lanes | None = None) -> None:
        self.app = app
        self.service = service
        self.lanes = lanes  # the prediction endpoints' short way (``lanes.py``)
        settings = service.settings
        key = settings.resolved_api_key()
        self.api_key = key.encode() if key else None
        self.max_body = settings.max_body_bytes
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-{int(time.time()):x}-"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope["headers"])
        raw_id = headers.get(b"x-request-id")
        given = _given_id(raw_id) if raw_id else ""
        rid = given or f"{self._prefix}{next(self._ids)}"
        scope["mlengineer.request_id"] = rid
        scope["mlengineer.request_id_given"] = bool(given)
        if given and not given.isascii():  # echoed as adopt_request_id writes a body's id: percent-encoded
            scope["mlengineer.request_id_header"] = header_form(given)
        path: str = scope["path"]
        status = [0]
        reason = ""

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                shown = scope.get("mlengineer.request_id_header") or scope["mlengineer.request_id"]
                extra = [(b"x-request-id", shown.encode("latin-1"))]
                version = scope.get("mlengineer.version")
                if version is not None:
                    extra.append((b"x-model-version", str(version).encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            refusal = self._refusal(headers) if self.api_key is not None and path not in _UNGUARDED else None
            if refusal is not None:
                reason = "unauthorized"
                await self._send_error(send_with_headers, 401, refusal, path,
                                       extra=[(b"www-authenticate", b'Bearer realm="mlengineer"')])
                return
            if scope["method"] == "POST" and _from_a_page(headers):
                reason = "unsupported_media_type"
                media = _media_type(headers).decode("latin-1")
                await self._send_error(send_with_headers, 415, f"Content-Type {media!r} is not read here" if media else
                                       "A body without a Content-Type, as a web page sends one, is not read here",
                                       path, suffix=": send the body as application/json (with curl: -H "
                                       "'Content-Type: application/json'); /invocations also reads text/csv.")
                return
            try:
                encoding = body_encoding(headers.get(b"content-encoding"))
            except UnsupportedMediaType as e:
                reason = "unsupported_media_type"
                await self._send_error(send_with_headers, 415, str(e), path)
                return
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                reason = "too_large"
                await self._send_error(send_with_headers, 413, self._too_large(int(length)), path)
                return
            body = self._limited(scope, receive)
            if encoding is not None:  # the routes read the decoded body; the limit holds on it too
                body = inflating(body, Inflater(encoding, self.max_body, self._too_large(decoded=True)))
                scope["headers"] = [(k, v) for k, v in scope["headers"]
                                    if k not in (b"content-encoding", b"content-length")]
            lane = None if self.lanes is None or scope.get("root_path") else self.lanes.match(scope["method"], path)
            if lane is not None and self.lanes is not None:
                await self.lanes(scope, body, send_with_headers, lane)
            else:
                await self.app(scope, body, send_with_headers)
        except ClientDisconnect:  # the client went away mid-body: nobody to answer, nothing of ours broke
            reason = "client_closed"
            status[0] = status[0] or CLIENT_CLOSED
        except Exception as e:
            reason = "internal"
            rid = scope["mlengineer.request_id"]  # a body's id may have taken the place of the one made here
            server_log.error("request failed", exc_info=True, extra={"fields": {"request_id": rid, "path": path}})
            if status[0] == 0:
                await self._send_error(send_with_headers, 500, f"Internal error ({type(e).__name__}); the request "
                                       f"id {rid} is in the server's log.", path)
        finally:
            self._record(scope, status[0] or 500, reason, t0, scope["mlengineer.request_id"])

    def _refusal(self, headers: dict[bytes, bytes]) -> str | None:
        """Why a request's key (X-API-Key, else Authorization: Bearer) is refused: none sent, or not this
        server's; None when it is this server's key."""
        given = sent_key(headers)
        if not given:
            return "An API key is needed: send it in the X-API-Key header or as Authorization: Bearer KEY."
        if hmac.compare_digest(given, self.api_key or b""):
            return None
        return ("The API key given is not the one this server takes: check the key you send in the X-API-Key "
                "header (or as Authorization: Bearer KEY).")

    def _too_large(self, n: int | None = None, *, decoded: bool = False) -> str:
        size = f" ({n:,} bytes)" if n is not None else " once decompressed" if decoded else ""
        return (f"The request body is too large{size}: the limit is {self.max_body:,} bytes. Split the rows into "
                "smaller requests (or start the server with a larger --max-body-mb).")

    def _limited(self, scope: Scope, receive: Any) -> Any:
        """``receive``, raising 413 past the body limit, and the error the server put in the scope when it cut a
        body that stopped arriving (``READ_CUT``: 408 past the read timeout, 503 at shutdown)."""
        seen = 0
        limit = self.max_body

        async def wrapped() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                cut = scope.get(READ_CUT)
                if cut is not None:
                    raise cut
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(self._too_large())
            return message

        return wrapped

    @staticmethod
    async def _send_error(send: Any, status: int, message: str, path: str, *, suffix: str = "",
                          extra: list[tuple[bytes, bytes]] | None = None) -> None:
        start, body = _error(status, message + suffix, path)
        start["headers"] += extra or []
        await send(start)
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, reason: str, t0: float, rid: str) -> None:
        seconds = time.perf_counter() - t0
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "other"
        m = self.service.metrics
        m.child(m.requests, endpoint, scope["method"], str(status)).inc()
        m.child(m.latency, endpoint).observe(seconds)
        if status >= 400:
            m.child(m.errors, endpoint, reason or _REASONS.get(status, "error")).inc()
        logs = self.service.logs
        if logs.enabled_access:
            client = scope.get("client")
            logs.access({
                "request_id": rid, "method": scope["method"], "path": scope["path"], "status": status,
                "ms": round(seconds * 1000, 3), "rows": scope.get("mlengineer.rows"),
                "model_version": scope.get("mlengineer.version"), "client": client[0] if client else None,
            })


def _media_type(headers: dict[bytes, bytes]) -> bytes:
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower()


def _from_a_page(headers: dict[bytes, bytes]) -> bool:
    """Whether a POST's body is one a web page can send cross-site without asking first: form data, text/plain,
    or no Content-Type from a browser (which marks what it sends with Origin and Sec-Fetch-*; tritonclient and
    KServe's client, which send no Content-Type to OIP's infer, send neither)."""
    media = _media_type(headers)
    if media:
        return media in BROWSER_SIMPLE_TYPES
    return b"origin" in headers or b"sec-fetch-mode" in headers or b"sec-fetch-site" in headers


_REASONS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
            408: "timeout", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_input", 500: "internal", 503: "unavailable"}
