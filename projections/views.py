"""Materialised views: eventsourcing tracking recorders that also own read-model tables.

A view writes its rows **and** its tracking record (``_insert_tracking``) in one
transaction, so a crash never skips nor double-counts an event. A batch of events is
one transaction whose tracking record is the batch's last notification id: a projector
killed in the middle of a batch leaves the tables exactly as they were before it.

Each projection has its own tracking table (``<name>_tracking``, as eventsourcing's
PostgreSQL factory names it) so all of them can share one database and be rebuilt
one at a time. On SQLite the stock recorder's table is always called ``tracking``;
the SQLite view renames it.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections.db import APPLICATION_NAME, Cursor, Dialect, one, parse_iso
from projections.fold import (
    Folded,
    State,
    dump,
    fold,
    is_current,
    is_grievance_event,
    load,
    read_state,
)

Batch = Sequence[tuple[Any, Tracking]]


class Memo:
    """A small, thread-safe, first-in-first-out memory shared by the views of a process.

    The views of one projector take the same batch one after the other: the first one
    folds each event, the others find what the grievance showed before and after it
    here. Keys are the events' chain hashes (``domain.integrity``): a hash names the
    event *and* every event before it, so two logs can never share an entry.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                del self._items[next(iter(self._items))]


# Per event: the grievance's read state before and after it. Per last event: the snapshot.
STEPS = Memo(8192)
SNAPSHOTS = Memo(4096)


@dataclass(slots=True)
class Current:
    """One grievance while a view's batch runs."""

    folded: Folded | None  # this view's aggregate: before the batch, or folded so far ...
    pending: list[Any]  # ... but for these events, whose rows came from ``STEPS``
    state: State | None  # what its rows show now (None: not received yet)
    last: str | None = None  # the chain hash of the last event applied


class PositionMovedError(IntegrityError):
    """Another projector advanced this view since the batch was read: re-read and retry."""


@lru_cache(maxsize=1)
def default_tz() -> ZoneInfo:
    from domain.policies import load_policies

    return load_policies().calendar.tz


@lru_cache(maxsize=1 << 16)
def local_day(moment: str, tz: ZoneInfo) -> date:
    parsed = parse_iso(moment)
    assert parsed is not None
    return parsed.astimezone(tz).date()


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class ReadModelView(TrackingRecorder):
    """What every read model has: its tables, its per-grievance state, and batches."""

    projection_name: ClassVar[str] = ""  # also the name of its one table
    columns: ClassVar[str] = ""  # that table's columns, as in CREATE TABLE
    indexes: ClassVar[dict[str, str]] = {}  # index name suffix: the columns it orders by
    tz: ZoneInfo

    # Provided by the backend's tracking recorder (which comes later in the MRO, so
    # they are declared here, not defined).
    datastore: Any
    tracking_table_name: str
    if TYPE_CHECKING:

        def _insert_tracking(self, c: Any, tracking: Tracking) -> None: ...

        def _max_tracking_id(self, application_name: str, c: Any) -> int | None: ...

        @property
        def dialect(self) -> Dialect: ...

        def _lock(self, c: Cursor) -> None: ...

    # ------------------------------------------------------------ per model

    def ddl(self) -> list[str]:
        """CREATE statements for this model's table and indexes (``{name}`` placeholders)."""
        name = self.projection_name
        return [
            f"CREATE TABLE IF NOT EXISTS {{{name}}} ({self.columns})",
            *(
                f"CREATE INDEX IF NOT EXISTS {name}_{suffix} ON {{{name}}} ({on})"
                for suffix, on in self.indexes.items()
            ),
        ]

    def project(self, c: Cursor, event: Any, before: State | None, after: State) -> None:
        """Write this model's rows for one grievance event."""
        raise NotImplementedError

    # --------------------------------------------------------------- shared

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.projection_name,)

    @property
    def state_table(self) -> str:
        return f"{self.projection_name}_state"

    def all_tables(self) -> tuple[str, ...]:
        return (*self.tables, self.state_table)

    def sql(self, text: str) -> str:
        cache: dict[str, str] = self.__dict__.setdefault("_sql_cache", {})
        found = cache.get(text)
        if found is None:
            names = {t: t for t in self.all_tables()}
            names["state"] = self.state_table
            names["tracking"] = self.tracking_table_name
            found = cache[text] = self.dialect.sql(text, **names)
        return found

    def execute(self, c: Cursor, text: str, params: dict[str, Any] | None = None) -> None:
        c.execute(self.sql(text), params or {})

    def create_statements(self) -> list[str]:
        return [
            self.sql(
                "CREATE TABLE IF NOT EXISTS {state} ("
                "grievance_id TEXT PRIMARY KEY, state TEXT NOT NULL)"
            ),
            *(self.sql(s) for s in self.ddl()),
        ]

    def create_table(self) -> None:
        """Create the tables; a state written by an older closeloop empties the view, which
        then rebuilds from the start of the log (its tracking position is gone too)."""
        super().create_table()  # type: ignore[misc]
        with self.datastore.transaction(commit=False) as c:
            self.execute(c, "SELECT state FROM {state} LIMIT 1")
            row = one(c)
        if row is not None and not is_current(row["state"]):
            self.clear()

    def load_state(self, c: Cursor, grievance_id: str) -> Folded | None:
        self.execute(c, "SELECT state FROM {state} WHERE grievance_id = :id", {"id": grievance_id})
        row = one(c)
        return load(row["state"]) if row else None

    def save_state(self, c: Cursor, grievance_id: str, current: Current) -> None:
        assert current.last is not None
        snapshot = SNAPSHOTS.get(current.last)
        if snapshot is None:
            folded = self.folded(c, grievance_id, current)
            assert folded is not None
            snapshot = dump(folded)
            SNAPSHOTS.put(current.last, snapshot)
        self.execute(
            c,
            "INSERT INTO {state} (grievance_id, state) VALUES (:id, :state) "
            "ON CONFLICT (grievance_id) DO UPDATE SET state = excluded.state",
            {"id": grievance_id, "state": snapshot},
        )

    def folded(self, c: Cursor, grievance_id: str, current: Current) -> Folded | None:
        """This view's aggregate of the grievance, with every event applied so far."""
        if current.pending:
            folded = current.folded
            if folded is None:
                # Before this batch, as stored (rows of this batch are saved at its end).
                folded = self.load_state(c, grievance_id)
            for event in current.pending:
                folded = fold(folded, event)
            current.folded, current.pending = folded, []
        return current.folded

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            return self._max_tracking_id(APPLICATION_NAME, c) or 0

    def process_batch(self, batch: Batch, expected_position: int | None = None) -> None:
        """Apply events and record the last one's tracking, all in one transaction.

        With ``expected_position``, refuse (``PositionMovedError``) when another
        projector moved this view since the batch was read; without it, the tracking
        insert still refuses to go backwards (eventsourcing's single-row tracking).
        """
        if not batch:
            return
        with self.datastore.transaction(commit=True) as c:
            self._lock(c)
            position = self._max_tracking_id(APPLICATION_NAME, c) or 0
            if expected_position is not None and position != expected_position:
                raise PositionMovedError(
                    f"{self.projection_name} moved from {expected_position} to {position}"
                )
            states: dict[str, Current] = {}
            for event, _tracking in batch:
                self.apply(c, event, states)
            for grievance_id, current in states.items():
                if current.last is not None:
                    self.save_state(c, grievance_id, current)
            self._insert_tracking(c, batch[-1][1])

    def apply(self, c: Cursor, event: Any, states: dict[str, Current]) -> None:
        """Fold one event into its grievance's aggregate (kept in ``states`` until the
        batch ends, then saved in the same transaction) and write this model's rows from
        what the aggregate showed before and shows after it."""
        if not is_grievance_event(event):
            return  # CaseNumber.Claimed and anything else: nothing to show
        grievance_id = str(event.originator_id)
        current = states.get(grievance_id)
        step = STEPS.get(event.chain_hash)
        if step is not None:
            before, after = step
            if current is None:
                current = states[grievance_id] = Current(None, [], before)
            current.pending.append(event)
        else:
            if current is None:
                loaded = self.load_state(c, grievance_id)
                state = read_state(loaded) if loaded else None
                current = states[grievance_id] = Current(loaded, [], state)
            before = current.state
            folded = fold(self.folded(c, grievance_id, current), event)
            current.folded = folded
            after = read_state(folded)
            STEPS.put(event.chain_hash, (before, after))
        current.state, current.last = after, event.chain_hash
        self.project(c, event, before, after)

    def clear(self) -> None:
        """Empty this model's tables and forget its position (for a rebuild), atomically."""
        with self.datastore.transaction(commit=True) as c:
            self._lock(c)
            for table in self.all_tables():
                c.execute(self.dialect.sql("DELETE FROM {t}", t=table))
            self.execute(
                c, "DELETE FROM {tracking} WHERE application_name = :app", {"app": APPLICATION_NAME}
            )

    def local_day(self, moment: str) -> str:
        return local_day(moment, self.tz).isoformat()

    def local_week(self, moment: str) -> str:
        return week_start(local_day(moment, self.tz)).isoformat()


class SQLiteReadModelView(ReadModelView, SQLiteTrackingRecorder):
    def __init__(
        self,
        datastore: SQLiteDatastore,
        *,
        tracking_table_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Set before the base class builds its statements from it.
        self.tracking_table_name = tracking_table_name or f"{self.projection_name}_tracking"
        self.tz = default_tz()
        super().__init__(datastore, **kwargs)
        t = self.tracking_table_name
        self.insert_tracking_statement = self.insert_tracking_statement.replace(
            "INTO tracking", f'INTO "{t}"'
        ).replace("WHERE tracking.", f'WHERE "{t}".')
        self.select_max_tracking_id_statement = self.select_max_tracking_id_statement.replace(
            "FROM tracking", f'FROM "{t}"'
        )

    @property
    def dialect(self) -> Dialect:
        return Dialect(postgres=False)

    def construct_create_table_statements(self) -> list[str]:
        statements = [
            s.replace(
                "CREATE TABLE IF NOT EXISTS tracking (",
                f'CREATE TABLE IF NOT EXISTS "{self.tracking_table_name}" (',
            )
            for s in super().construct_create_table_statements()
        ]
        return statements + self.create_statements()

    def _lock(self, c: Cursor) -> None:
        # A write first, so this transaction holds SQLite's write lock before it reads
        # the position (a deferred transaction could otherwise read a stale snapshot).
        self.execute(
            c,
            "UPDATE {tracking} SET notification_id = notification_id WHERE application_name = :app",
            {"app": self.table_migration_identifier},
        )


class PostgresReadModelView(ReadModelView, PostgresTrackingRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        tracking_table_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        from psycopg.sql import SQL, Composed

        super().__init__(
            datastore,
            tracking_table_name=tracking_table_name or f"{self.projection_name}_tracking",
            **kwargs,
        )
        self.tz = default_tz()
        self.sql_create_statements.extend(Composed([SQL(s)]) for s in self.create_statements())

    @property
    def dialect(self) -> Dialect:
        return Dialect(postgres=True, schema=self.datastore.schema)

    def _lock(self, c: Cursor) -> None:
        key = zlib.crc32(f"{self.datastore.schema}.{self.projection_name}".encode())
        c.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": key})
