"""The API's own small tables: bearer tokens and Idempotency-Key responses.

They live in the same kind of database as the event store (an SQLite file next to it, or
tables in the same PostgreSQL schema), written with sqlite3 / psycopg directly. Tokens are
stored only as a SHA-256 hash and compared in constant time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from domain.model import Role

API_ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.DEPARTMENT, Role.OPEN311)

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS api_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        department TEXT,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS api_idempotency (
        scope TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        headers TEXT,
        PRIMARY KEY (scope, idem_key)
    )
    """,
    # ``api.keyclaims``: who is running the request of a key, across API processes.
    """
    CREATE TABLE IF NOT EXISTS api_idempotency_claims (
        scope TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        owner TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (scope, idem_key)
    )
    """,
)
# Tables made before a column existed get it here (each backend ignores "already there").
_ADDED_COLUMNS = (("api_idempotency", "headers", "TEXT"), ("api_tokens", "client_id", "TEXT"))
# Then rows made before a column existed get their value (a token was its own client).
_BACKFILL = ("UPDATE api_tokens SET client_id = id WHERE client_id IS NULL",)


class Database(Protocol):
    """``?`` placeholders; each call is its own transaction. ``durable=False``: its commit
    does not wait for the disk (for rows a machine crash may lose without harm)."""

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, durable: bool = True
    ) -> list[tuple[Any, ...]]: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class SqliteDatabase:
    """One connection, opened once and shared under a lock (a call is a short statement).

    A ``durable=False`` call commits without waiting for the disk (WAL with
    ``synchronous=NORMAL`` for that statement): the Idempotency-Key answers, which the
    domain's command ids back up, so an accepted command costs one fsync, its event's.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=10, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for ddl in _SCHEMA:
            self._conn.execute(ddl)
        for table, column, kind in _ADDED_COLUMNS:
            with contextlib.suppress(sqlite3.OperationalError):  # duplicate column
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for backfill in _BACKFILL:
            self._conn.execute(backfill)

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, durable: bool = True
    ) -> list[tuple[Any, ...]]:
        with self._lock:
            if durable:
                return list(self._conn.execute(sql, tuple(params)).fetchall())
            self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                return list(self._conn.execute(sql, tuple(params)).fetchall())
            finally:
                self._conn.execute("PRAGMA synchronous=FULL")

    def ping(self) -> bool:
        try:
            self.execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresDatabase:
    """A small psycopg pool; tables go in the configured schema (``search_path``)."""

    def __init__(
        self, connect_kwargs: Mapping[str, Any], *, schema: str = "", pool_size: int = 4
    ) -> None:
        """``connect_kwargs``: psycopg's (the composition root builds them from settings)."""
        from psycopg_pool import ConnectionPool

        kwargs = {k: v for k, v in connect_kwargs.items() if v is not None}
        kwargs["autocommit"] = True
        if schema:
            kwargs["options"] = f"-c search_path={schema}"
        self._pool = ConnectionPool(
            kwargs=kwargs,
            min_size=1,
            max_size=max(1, pool_size),
            timeout=10,
            open=True,
        )
        for ddl in _SCHEMA:
            try:
                self.execute(ddl)
            except Exception:
                # Two processes creating it at once: PostgreSQL lets one fail (a unique
                # violation on its catalogue) even with IF NOT EXISTS. It exists now.
                self.execute(ddl)
        for table, column, kind in _ADDED_COLUMNS:
            self.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        for backfill in _BACKFILL:
            self.execute(backfill)

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, durable: bool = True
    ) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            # Not durable: in a transaction whose commit does not wait for the WAL flush.
            block = contextlib.nullcontext() if durable else conn.transaction()
            with block, conn.cursor() as cur:
                if not durable:
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
                cur.execute(sql.replace("?", "%s"), tuple(params))
                if cur.description is None:
                    return []
                return list(cur.fetchall())

    def ping(self) -> bool:
        try:
            self.execute("SELECT 1")
        except Exception:
            return False
        return True

    def close(self) -> None:
        self._pool.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    id: str
    role: str
    department: str | None
    name: str
    created_at: str
    revoked_at: str | None
    # Who the token belongs to: unique per client (an integration, a person); several
    # tokens of one client (rotation) share it. Ownership goes by it, never by ``name``.
    client_id: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


TOKEN_PREFIX = "cl"
_COLUMNS = "id, role, department, name, created_at, revoked_at, client_id"


class DuplicateTokenNameError(ValueError):
    """An active token already has this name (and the new one was not said to share its
    client)."""

    def __init__(self, name: str, *, joinable: bool) -> None:
        super().__init__(name)
        self.name = name
        self.joinable = joinable  # False: the named token's role or department differs


class TokenStore:
    """Bearer tokens ``cl_<id>_<secret>``: the id finds the row, the hash proves the secret.

    ``cached`` answers a token this process authenticated less than ``ttl`` seconds ago
    without a query, so a token revoked elsewhere (the CLI) stops working within ``ttl``;
    one revoked through this store stops at once."""

    def __init__(self, db: Database, *, ttl: float = 2.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, TokenRecord]] = {}

    def cached(self, token: str) -> TokenRecord | None:
        """The record if this token was authenticated within ``ttl`` (else None: ask
        ``authenticate``)."""
        hit = self._cache.get(hash_token(token))
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def create(
        self,
        role: str,
        *,
        department: str | None = None,
        name: str | None = None,
        same_client: bool | None = None,
    ) -> tuple[TokenRecord, str]:
        """A new token; the plain text is returned once and never stored.

        It gets a new client id, unless ``same_client`` says it belongs to the client of
        the active token with this ``name`` (same role and department). With
        ``same_client=False`` an active token of the same name is refused
        (``DuplicateTokenNameError``); ``None`` (programs) does not look."""
        parsed = Role(role)
        if parsed not in API_ROLES:
            raise ValueError(f"role must be one of {', '.join(r.value for r in API_ROLES)}")
        if parsed is Role.DEPARTMENT and not department:
            raise ValueError("a department token needs --department CODE")
        if parsed is not Role.DEPARTMENT and department:
            raise ValueError("only department tokens carry a department code")
        token_id = secrets.token_hex(6)
        client_id = secrets.token_hex(8)
        if name and same_client is not None:
            named = [r for r in self.list() if r.name == name and r.active]
            if named and not same_client:
                raise DuplicateTokenNameError(name, joinable=True)
            if same_client:
                sharing = [r for r in named if (r.role, r.department) == (parsed.value, department)]
                if len({r.client_id for r in sharing}) != 1:  # none, or ambiguous
                    raise DuplicateTokenNameError(name, joinable=False)
                client_id = sharing[0].client_id
        token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(
            id=token_id,
            role=parsed.value,
            department=department,
            name=name or f"{parsed.value}-{token_id}",
            created_at=_now(),
            revoked_at=None,
            client_id=client_id,
        )
        self.db.execute(
            "INSERT INTO api_tokens "
            "(id, token_hash, role, department, name, created_at, client_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                hash_token(token),
                record.role,
                record.department,
                record.name,
                record.created_at,
                record.client_id,
            ),
        )
        return record, token

    def authenticate(self, token: str) -> TokenRecord | None:
        """The active token this secret belongs to, or None."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
            return None
        rows = self.db.execute(
            f"SELECT token_hash, {_COLUMNS} FROM api_tokens WHERE id = ?", (parts[1],)
        )
        if not rows:
            hmac.compare_digest(hash_token(token), hash_token(""))  # same work either way
            return None
        row = rows[0]
        digest = hash_token(token)
        record = TokenRecord(*row[1:])
        if not hmac.compare_digest(str(row[0]), digest) or not record.active:
            self._cache.pop(digest, None)
            return None
        if self.ttl > 0:
            if len(self._cache) > 10_000:  # bound it; entries are refreshed on use
                self._cache.clear()
            self._cache[digest] = (time.monotonic(), record)
        return record

    def list(self) -> list[TokenRecord]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, id")
        return [TokenRecord(*row) for row in rows]

    def revoke(self, id_or_prefix: str) -> TokenRecord:
        """Revoke by id or a unique id prefix (the ``cl_<id>_`` head of a token works too)."""
        key = id_or_prefix.strip()
        if key.startswith(f"{TOKEN_PREFIX}_"):
            key = key.split("_", 2)[1]
        if not key:
            raise LookupError("give a token id or prefix")
        matches = [r for r in self.list() if r.id.startswith(key)]
        if not matches:
            raise LookupError(f"no token id starts with {key!r}")
        if len(matches) > 1:
            raise LookupError(f"{key!r} matches {len(matches)} tokens; give more of the id")
        record = matches[0]
        self._cache = {k: v for k, v in self._cache.items() if v[1].id != record.id}
        if record.revoked_at is None:
            self.db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_now(), record.id),
            )
        return next(r for r in self.list() if r.id == record.id)


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class IdempotencyStore:
    """The first successful response to each (credential, Idempotency-Key), kept for a while."""

    PURGE_EVERY = 500  # puts between sweeps of expired rows

    def __init__(self, db: Database, retention: timedelta = timedelta(days=1)) -> None:
        self.db = db
        self.retention = retention
        self._puts = 0

    def get(self, scope: str, key: str) -> StoredResponse | None:
        rows = self.db.execute(
            "SELECT fingerprint, status, content_type, body, created_at, headers "
            "FROM api_idempotency "
            "WHERE scope = ? AND idem_key = ?",
            (scope, key),
        )
        if not rows:
            return None
        fingerprint, status, content_type, body, created_at, headers = rows[0]
        if datetime.fromisoformat(created_at) < datetime.now(UTC) - self.retention:
            return None
        kept = tuple((str(n), str(v)) for n, v in json.loads(headers or "[]"))
        return StoredResponse(fingerprint, int(status), content_type, body.encode("utf-8"), kept)

    def put(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        status: int,
        content_type: str,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Keep the first response; a concurrent second writer leaves it alone (an expired
        one is replaced). One statement, one commit."""
        cutoff = (datetime.now(UTC) - self.retention).isoformat()
        self._puts += 1
        if self._puts % self.PURGE_EVERY == 1:
            self.purge(cutoff)
        self.db.execute(
            "INSERT INTO api_idempotency "
            "(scope, idem_key, fingerprint, status, content_type, body, created_at, headers) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, idem_key) DO UPDATE SET "
            "fingerprint = excluded.fingerprint, status = excluded.status, "
            "content_type = excluded.content_type, body = excluded.body, "
            "created_at = excluded.created_at, headers = excluded.headers "
            "WHERE api_idempotency.created_at < ?",
            (
                scope,
                key,
                fingerprint,
                status,
                content_type,
                body.decode("utf-8"),
                _now(),
                json.dumps([list(h) for h in headers]),
                cutoff,
            ),
            durable=False,
        )

    def purge(self, cutoff: str | None = None) -> None:
        """Forget responses older than the retention period."""
        cutoff = cutoff or (datetime.now(UTC) - self.retention).isoformat()
        self.db.execute("DELETE FROM api_idempotency WHERE created_at < ?", (cutoff,))
