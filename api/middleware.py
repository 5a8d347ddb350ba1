"""One ASGI middleware for what every request shares: request id, body limit, Idempotency-Key
replay, and one structured access-log line.

Pure ASGI (not ``BaseHTTPMiddleware``) so the endpoint runs in this task and contextvars
bound by the auth dependency (principal, role) are visible when the line is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.catalogue import t
from api.i18n import choose_language
from api.problems import problem_body, problem_response

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Requests whose body is read (and limited) here; ``api.metrics`` counts them as commands.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REPLAYED_HEADERS = {b"etag", b"location"}  # part of the answer, so part of the replay
_MULTIPART_KEY = re.compile(rb'name="api_key"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]{1,512})\r\n')


def start_headers(message: Message) -> dict[bytes, bytes]:
    """A ``http.response.start`` message's headers by lower-cased name."""
    return {name.lower(): value for name, value in message.get("headers", [])}


class _TooLarge(Exception):
    pass


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """Same request = same method, path, query and JSON content (key order ignored)."""
    try:
        canonical = json.dumps(
            json.loads(body) if body else None, sort_keys=True, separators=(",", ":")
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _credential(headers: dict[str, str], scope: Scope, body: bytes) -> str:
    """Whose request this is, for scoping Idempotency-Keys: the bearer token, or the
    Open311 ``api_key`` sent in the query string or the form body."""
    if headers.get("authorization"):
        return headers["authorization"]
    query_string: bytes = scope.get("query_string", b"")
    query = parse_qs(query_string.decode("latin-1"))
    if "api_key" in query:
        return "api_key:" + query["api_key"][0]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"))
        if "api_key" in form:
            return "api_key:" + form["api_key"][0]
    if headers.get("content-type", "").startswith("multipart/form-data"):  # Open311 with media
        found = _MULTIPART_KEY.search(body)
        if found:
            return "api_key:" + found.group(1).decode("latin-1")
    return ""


class KeyLocks:
    """One lock per (credential, Idempotency-Key) in use in this process: requests with the
    same key run one at a time, so the later ones replay the first one's stored answer.
    (Across processes the domain's command id keeps a repeat from recording twice.)"""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, credential: str, key: str) -> AsyncIterator[None]:
        name = (credential, key)
        lock, users = self._locks.get(name, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)


class ApiMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int = 64 * 1024, max_upload_bytes: int | None = None
    ) -> None:
        self.app = app
        self.key_locks = KeyLocks()
        self.max_body_bytes = max_body_bytes
        # multipart/form-data (attachments) may be larger; the routes check the file itself.
        self.max_upload_bytes = max(max_upload_bytes or 0, max_body_bytes)
        self.log = structlog.get_logger("api.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self._handle(scope, receive, send_logged, headers)
            finally:
                route = scope.get("route")
                self.log.info(
                    "request",
                    request_id=request_id,
                    method=scope["method"],
                    route=getattr(route, "path", None) or scope["path"],
                    status=status["code"],
                    latency_ms=round((time.perf_counter() - started) * 1000, 2),
                    principal=state.get("principal"),
                    role=state.get("role"),
                )
                structlog.contextvars.unbind_contextvars("principal", "role")

    async def _problem(
        self, scope: Scope, send: Send, code: str, message: str, **params: Any
    ) -> None:
        lang = choose_language(Request(scope))
        body = problem_body(
            code, lang, t(f"error.{message}", lang, **params), instance=scope["path"]
        )

        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await problem_response(body)(scope, no_body, send)

    async def _read_body(self, receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        method = scope["method"]
        if method not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        too_large = ("payload-too-large", "body-too-large")
        content_type = headers.get("content-type", "")
        multipart = content_type.startswith("multipart/form-data")
        limit = self.max_upload_bytes if multipart else self.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await self._problem(scope, send, *too_large, max_bytes=limit)
            return
        try:
            body = await self._read_body(receive, limit)
        except _TooLarge:
            await self._problem(scope, send, *too_large, max_bytes=limit)
            return

        sent = False

        async def replay_receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        key = headers.get("idempotency-key")
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if method != "POST" or not key or services is None or len(key) > 255:
            await self.app(scope, replay_receive, send)
            return

        store = services.idempotency
        credential = hashlib.sha256(_credential(headers, scope, body).encode()).hexdigest()
        # A retried upload may come with a new multipart boundary: the same request still.
        boundary = content_type.partition("boundary=")[2].strip('"').encode() if multipart else b""
        same = body.replace(boundary, b"") if boundary else body
        print_ = fingerprint(method, scope["path"], scope.get("query_string", b"").decode(), same)
        async with self.key_locks.hold(credential, key):
            await self._once(scope, replay_receive, send, store, credential, key, print_)

    async def _once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: Any,
        credential: str,
        key: str,
        print_: str,
    ) -> None:
        """Replay the stored answer to this key, or run the request and keep its answer."""
        stored = await anyio.to_thread.run_sync(store.get, credential, key)
        if stored is not None:
            if stored.fingerprint != print_:
                await self._problem(
                    scope, send, "idempotency-key-reused", "idempotency-key-reused-elsewhere"
                )
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": stored.status,
                    "headers": [
                        (b"content-type", stored.content_type.encode()),
                        (b"content-length", str(len(stored.body)).encode()),
                        *((n.encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": stored.body})
            return

        captured: dict[str, Any] = {"status": 0, "content_type": "", "body": [], "headers": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                headers = start_headers(message)
                captured["content_type"] = headers.get(b"content-type", b"").decode("latin-1")
                captured["headers"] = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in headers.items()
                    if name in _REPLAYED_HEADERS
                ]
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        # Only successes are kept: a refused command recorded nothing, so a retry may
        # legitimately succeed later (and is answered afresh). The answer has been sent;
        # the key stays locked until it is stored, so a concurrent twin replays it.
        if 200 <= captured["status"] < 300:
            await anyio.to_thread.run_sync(
                store.put,
                credential,
                key,
                print_,
                captured["status"],
                captured["content_type"] or "application/json",
                b"".join(captured["body"]),
                captured["headers"],
            )
