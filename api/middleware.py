"""One ASGI middleware for what every request shares: request id, security headers, rate
limits, body limit, Idempotency-Key replay, and one structured access-log line.

Order: the address's rate limit, the body, then the caller's credential (a bearer token, or
Open311's ``api_key``) is authenticated, then the token's rate limit, and only then is an
``Idempotency-Key`` looked up, in the scope of the token's id: a revoked token never
replays a stored answer, and callers without a valid credential have no idempotency at all
(nothing shared to probe).

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
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.catalogue import t
from api.deps import Services, authenticated, key_from_authorization
from api.i18n import choose_language
from api.keyclaims import KeyClaims
from api.open311.render import Format
from api.open311.render import error as open311_error
from api.open311.render import render_error as open311_render_error
from api.problems import problem_body, problem_response
from api.ratelimit import Bucket, RateLimiter
from api.stores import StoredResponse, TokenRecord
from domain.model import Role

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Requests whose body is read (and limited) here; ``api.metrics`` counts them as commands.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REPLAYED_HEADERS = {b"etag", b"location"}  # part of the answer, so part of the replay
CLAIM_WAIT = 30.0  # seconds a request waits for another process's answer to its key
_MULTIPART_KEY = re.compile(rb'name="api_key"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]{1,512})\r\n')
# Filing routes: an Open311 client's filings count against its quota.
_OPEN311_FILING = re.compile(r"^/open311/v2/requests\.(json|xml)$")
_V1_FILING = "/v1/grievances"
_OPEN311_PREFIX = "/open311/"  # answered (and authenticated) in Open311's own way

#: On every answer. No inline script anywhere (pages load their scripts from this origin);
#: inline styles are allowed (Swagger UI and ReDoc set them); blob: for attachment previews
#: and ReDoc's worker. Nobody may frame a page (clickjacking), no page sends a Referer
#: (a ``?token=`` address must not travel).
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        b"worker-src 'self' blob:; frame-src 'self' blob:; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
#: Answers that set no caching rule of their own (all but static files) may carry personal
#: data: no cache, shared or private, keeps them.
_NO_STORE = (b"cache-control", b"no-store")


async def _answer(response: Response, scope: Scope, send: Send) -> None:
    """Send an answer the middleware makes itself, without reading the request's body."""

    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    await response(scope, no_body, send)


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


def credential_of(scope: Scope, headers: dict[str, str], body: bytes) -> str | None:
    """The credential the route will authenticate: the bearer token for ``/v1``; for Open311
    (as its router reads them) the ``api_key`` of the form body, else of the query string,
    else of the ``Authorization`` header (Bearer, or HTTP Basic's password)."""
    header = headers.get("authorization", "")
    if not scope["path"].startswith(_OPEN311_PREFIX):
        scheme, _, token = header.partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None
    content_type = headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"))
        if form.get("api_key", [""])[0]:
            return form["api_key"][0]
    if content_type.startswith("multipart/form-data"):  # Open311 with media
        found = _MULTIPART_KEY.search(body)
        if found:
            return found.group(1).decode("utf-8", "replace")
    query_string: bytes = scope.get("query_string", b"")
    in_query: str = parse_qs(query_string.decode("latin-1")).get("api_key", [""])[0]
    return in_query or key_from_authorization(header)


def _files(scope: Scope, record: TokenRecord) -> bool:
    """Whether this request files a grievance for an Open311 client: any key through the
    Open311 route, or an ``open311`` token through ``POST /v1/grievances``."""
    if scope["method"] != "POST":
        return False
    path = scope["path"]
    return bool(_OPEN311_FILING.match(path)) or (
        path == _V1_FILING and record.role == Role.OPEN311.value
    )


class KeyLocks:
    """One lock per (token id, Idempotency-Key) in use in this process: requests with the
    same key run one at a time, so the later ones replay the first one's stored answer.
    (Across processes the domain's command id keeps a repeat from recording twice.)"""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, token_id: str, key: str) -> AsyncIterator[None]:
        name = (token_id, key)
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
                given = list(message.get("headers", []))
                named = {name.lower() for name, _ in given}
                # A route's own rule (an attachment's stricter CSP, a file's caching) stays.
                added = [h for h in (*SECURITY_HEADERS, _NO_STORE) if h[0] not in named]
                message["headers"] = [*given, (b"x-request-id", request_id.encode()), *added]
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
        self,
        scope: Scope,
        send: Send,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        """The problem+json of ``code`` (its status from ``api.problems.STATUSES``), its
        detail the catalogue's ``error.<message>``."""
        lang = choose_language(Request(scope))
        text = t(f"error.{message}", lang, **params)
        body = problem_body(code, lang, text, instance=scope["path"])
        await _answer(problem_response(body, headers), scope, send)

    async def _too_many(self, scope: Scope, send: Send, wait: int) -> None:
        """429, in problem+json (Open311: its own format), with ``Retry-After``."""
        retry = {"Retry-After": str(wait)}
        path = scope["path"]
        if not path.startswith(_OPEN311_PREFIX):
            await self._problem(scope, send, "rate-limited", "rate-limited", retry, seconds=wait)
            return
        text = t("error.rate-limited", choose_language(Request(scope)), seconds=wait)
        fmt: Format = "xml" if path.endswith(".xml") else "json"
        response = open311_render_error(open311_error(429, text), fmt)
        response.headers.update(retry)
        await _answer(response, scope, send)

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
        found = getattr(scope["app"].state, "services", None) if "app" in scope else None
        services: Services | None = found
        limits = services.rate_limits if services is not None else None
        client = scope.get("client")
        address = client[0] if client else "-"
        if limits is not None:
            wait = limits.spent(Bucket.FAILED_AUTH, address) or limits.hit(Bucket.ADDRESS, address)
            if wait:
                await self._too_many(scope, send, wait)
                return
        method = scope["method"]
        content_type = headers.get("content-type", "")
        body = b""
        if method in WRITE_METHODS:
            multipart = content_type.startswith("multipart/form-data")
            limit = self.max_upload_bytes if multipart else self.max_body_bytes
            length = headers.get("content-length", "")
            try:
                if length.isdigit() and int(length) > limit:
                    raise _TooLarge
                body = await self._read_body(receive, limit)
            except _TooLarge:
                await self._problem(
                    scope, send, "payload-too-large", "body-too-large", max_bytes=limit
                )
                return

            sent = False

            async def replay_receive() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            receive = replay_receive

        key = headers.get("idempotency-key") if method == "POST" else None
        wanted = services is not None and (limits is not None or bool(key))
        credential = credential_of(scope, headers, body) if wanted else None
        record = await authenticated(services, credential) if services and credential else None
        if limits is not None and credential is not None:
            if record is None:
                limits.hit(Bucket.FAILED_AUTH, address)
            elif wait := limits.hit(Bucket.TOKEN, record.id):
                await self._too_many(scope, send, wait)
                return
        if record is None or not key or len(key) > 255:
            # No valid credential: no idempotency either (the route answers 401/403).
            await self._run(scope, receive, send, record, limits)
            return
        # A retried upload may come with a new multipart boundary: the same request still.
        boundary = content_type.partition("boundary=")[2].strip('"').encode()
        same = body.replace(boundary, b"") if boundary else body
        print_ = fingerprint(method, scope["path"], scope.get("query_string", b"").decode(), same)
        async with self.key_locks.hold(record.id, key):
            await self._once(scope, receive, send, services, record, limits, key, print_)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        record: TokenRecord | None,
        limits: RateLimiter | None,
    ) -> None:
        """The request itself, once its filing (if it files for an Open311 client) fits
        the client's quota: every attempt counts, a replay does not."""
        if limits is not None and record is not None and _files(scope, record):
            # Per client: its tokens (a rotation) share one quota.
            wait = limits.hit(Bucket.FILING, record.client_id or record.id)
            if wait:
                await self._too_many(scope, send, wait)
                return
        await self.app(scope, receive, send)

    async def _replay(self, scope: Scope, send: Send, stored: StoredResponse, print_: str) -> None:
        """The stored answer again, byte for byte (or 422 if the key came with another request)."""
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

    @staticmethod
    def _claims(store: Any) -> KeyClaims | None:
        """The claims kept beside ``store``'s answers, in its database."""
        db = getattr(store, "db", None)
        return KeyClaims(db) if db is not None else None

    async def _once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        services: Any,
        record: TokenRecord,
        limits: RateLimiter | None,
        key: str,
        print_: str,
    ) -> None:
        """Replay the stored answer to this token's key, or claim the key (waiting while
        another process holds it), run the request and keep its answer."""
        store = services.idempotency
        claims = self._claims(store)
        owner, pause, waited = None, 0.02, 0.0
        while True:
            stored = await anyio.to_thread.run_sync(store.get, record.id, key)
            if stored is not None:
                await self._replay(scope, send, stored, print_)
                return
            if claims is None:
                break
            owner = await anyio.to_thread.run_sync(claims.claim, record.id, key)
            # Held elsewhere: wait for its answer. Past CLAIM_WAIT run anyway: the key is
            # the domain's command id, so the command is still recorded once.
            if owner is not None or waited >= CLAIM_WAIT:
                break
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.5)
        try:
            await self._run_and_keep(scope, receive, send, store, record, limits, key, print_)
        finally:
            if owner is not None and claims is not None:
                await anyio.to_thread.run_sync(claims.release, record.id, key, owner)

    async def _run_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: Any,
        record: TokenRecord,
        limits: RateLimiter | None,
        key: str,
        print_: str,
    ) -> None:
        """Run the request and keep a successful answer under the token's key."""
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

        await self._run(scope, receive, capture, record, limits)
        # Only successes are kept: a refused command recorded nothing, so a retry may
        # legitimately succeed later (and is answered afresh). The answer has been sent;
        # the key stays locked until it is stored, so a concurrent twin replays it.
        if 200 <= captured["status"] < 300:
            await anyio.to_thread.run_sync(
                store.put,
                record.id,
                key,
                print_,
                captured["status"],
                captured["content_type"] or "application/json",
                b"".join(captured["body"]),
                captured["headers"],
            )
