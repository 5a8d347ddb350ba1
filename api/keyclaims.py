"""Idempotency-Key claims across API processes: the first request with a key claims it,
the others wait until its answer is stored, then replay it byte for byte.

Within one process ``api.middleware.KeyLocks`` already runs requests with one key one at a
time; a claim row (in the same database as the stored answers) does the same between
processes, e.g. two API replicas behind nginx. A claim is released when its request ends
(answered or refused); one older than ``stale_after`` (its process died mid-request) may be
taken over. One statement claims (``INSERT … ON CONFLICT … RETURNING``, SQLite ≥ 3.35 and
PostgreSQL), one releases. The table is made with the API's others (``api.stores``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from api.stores import Database


class KeyClaims:
    def __init__(self, db: Database, *, stale_after: timedelta = timedelta(seconds=60)) -> None:
        self.db = db
        self.stale_after = stale_after

    def claim(self, scope: str, key: str) -> str | None:
        """The claim's owner id if this caller now holds the key, else None (another does)."""
        owner = uuid.uuid4().hex
        now = datetime.now(UTC)
        rows = self.db.execute(
            "INSERT INTO api_idempotency_claims (scope, idem_key, owner, claimed_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (scope, idem_key) DO UPDATE SET "
            "owner = excluded.owner, claimed_at = excluded.claimed_at "
            "WHERE api_idempotency_claims.claimed_at < ? RETURNING owner",
            (scope, key, owner, now.isoformat(), (now - self.stale_after).isoformat()),
            durable=False,
        )
        return owner if rows and rows[0][0] == owner else None

    def release(self, scope: str, key: str, owner: str) -> None:
        self.db.execute(
            "DELETE FROM api_idempotency_claims WHERE scope = ? AND idem_key = ? AND owner = ?",
            (scope, key, owner),
            durable=False,
        )
