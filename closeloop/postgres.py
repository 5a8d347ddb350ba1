"""PostgreSQL from settings: connection arguments and advisory-lock leases, once.

Every direct psycopg connection closeloop opens besides eventsourcing's own pools is
built here from ``Settings``: the API's small tables (``api.stores.PostgresDatabase``),
the relays' partition leases and the projectors' standby lock. The leases are handed to
``workflows.relay.LeasedRelay`` and ``projections.runner.run_forever``, which know only
their small protocols (``refresh``/``close`` and ``hold``/``close``).

A lease is a session-level ``pg_try_advisory_lock`` on a dedicated autocommit
connection: when the process dies its connection closes and PostgreSQL frees the lock
(TCP keepalives bound how long a vanished host keeps it). Keys are 64-bit hashes of
database, schema and what is leased, so two deployments in one database never meet.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from closeloop.settings import Settings

if TYPE_CHECKING:
    from workflows.relay import PartitionLeases

log = structlog.get_logger(__name__)


def connect_kwargs(settings: Settings, application_name: str) -> dict[str, Any]:
    """psycopg connection arguments from ``CLOSELOOP_DATABASE_URL`` (autocommit)."""
    p = settings.postgres_params()
    kwargs: dict[str, Any] = {
        "dbname": p["dbname"],
        "host": p["host"],
        "port": int(p["port"]),
        "user": p["user"],
        "autocommit": True,
        "connect_timeout": 5,
        # A lost host is noticed by keepalives, so its locks are freed in bounded time.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "application_name": application_name,
    }
    if p["password"]:
        kwargs["password"] = p["password"]
    return kwargs


def lease_scope(settings: Settings) -> tuple[str, str]:
    """What every lease key starts with: the database and the schema."""
    p = settings.postgres_params()
    return p["dbname"], p["schema"] or "public"


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit advisory-lock key (``hash()`` differs between processes)."""
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def group_key(*parts: str) -> int:
    """A stable non-negative 32-bit key (the first half of a two-key advisory lock)."""
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


class LeaseConnection:
    """The dedicated connection whose session holds the locks; when it is lost, so are they.

    ``acquire`` answers the open connection and whether it is new (nothing held yet),
    connecting when needed; ``on_connect`` runs on each new connection.
    """

    def __init__(
        self, kwargs: dict[str, Any], on_connect: Callable[[Any], None] | None = None
    ) -> None:
        self.kwargs = kwargs
        self.on_connect = on_connect
        self._conn: Any = None

    def acquire(self) -> tuple[Any, bool]:
        if self._conn is not None and not self._conn.closed:
            return self._conn, False
        import psycopg

        conn = psycopg.connect(**self.kwargs)
        try:
            if self.on_connect is not None:
                self.on_connect(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn, True

    def try_lock(self, conn: Any, key: int) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None


class AdvisoryLock:
    """One advisory lock (a projector's leadership): ``hold()`` claims or keeps it."""

    def __init__(self, settings: Settings, key: int, application_name: str) -> None:
        self.key = key
        self._lease = LeaseConnection(connect_kwargs(settings, application_name))
        self._held = False

    def hold(self) -> bool:
        """True while this process holds the lock (claiming it if free)."""
        try:
            conn, new = self._lease.acquire()
            if new:
                self._held = False
            if self._held:
                conn.execute("SELECT 1")
            else:
                self._held = self._lease.try_lock(conn, self.key)
        except Exception:
            self.close()  # the connection is gone, and the lock with it
        return self._held

    def close(self) -> None:
        self._held = False
        self._lease.close()


def projector_lease(settings: Settings, names: Sequence[str]) -> AdvisoryLock | None:
    """One leader per set of projections on PostgreSQL; none needed on SQLite."""
    if not settings.uses_postgres:
        return None
    key = lock_key(*lease_scope(settings), "projector", *sorted(names))
    return AdvisoryLock(settings, key, "closeloop-projector-lease")


class AdvisoryLeases:
    """Relay partitions claimed with advisory locks on one dedicated connection.

    A partition's key is a 64-bit hash of database, schema and partition name (the same
    ``relay-<i>of<N>`` as its tracking key). Each process also holds a two-key membership
    lock ``(hash of database/schema/N, random)`` so the live relays can be counted in
    ``pg_locks`` and each keeps its fair share. One caller at a time (the relay loop,
    through a worker thread).
    """

    def __init__(self, settings: Settings, count: int, *, fair_share: bool = True) -> None:
        from workflows.relay import Partition

        scope = lease_scope(settings)
        self.count = count
        self.fair_share = fair_share
        self._keys = [lock_key(*scope, Partition(i, count).name) for i in range(count)]
        self._members = group_key(*scope, f"relay-members-{count}")
        self._me = random.getrandbits(31)
        self._lease = LeaseConnection(
            connect_kwargs(settings, "closeloop-lease"), on_connect=self._join
        )
        self._held: set[int] = set()

    def _join(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (self._members, self._me))

    def _live_relays(self, conn: Any) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objsubid = 2 AND classid::bigint = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (self._members,),
        ).fetchone()
        return max(1, int(row[0]))

    def refresh(self) -> frozenset[int]:
        """Keep what is held (up to a fair share), claim what nobody holds."""
        try:
            conn, new = self._lease.acquire()
            if new:
                self._held = set()
            share = self.count
            if self.fair_share:
                share = math.ceil(self.count / self._live_relays(conn))
            for i in sorted(self._held, reverse=True):
                if len(self._held) <= share:
                    break
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._keys[i],))
                self._held.discard(i)
            for i in range(self.count):
                if len(self._held) >= share:
                    break
                if i not in self._held and self._lease.try_lock(conn, self._keys[i]):
                    self._held.add(i)
        except Exception as err:
            # The connection is gone: so are the locks. Relay nothing until reclaimed.
            log.warning("relay.lease_connection_lost", error=f"{type(err).__name__}: {err}")
            self.close()
        return frozenset(self._held)

    def close(self) -> None:
        self._held = set()
        self._lease.close()


def partition_leases(settings: Settings, count: int) -> PartitionLeases:
    """Advisory-lock leases on PostgreSQL; every partition on a single-machine store."""
    from workflows.relay import AllPartitions

    if settings.uses_postgres:
        return AdvisoryLeases(settings, count)
    return AllPartitions(count)
