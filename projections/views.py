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
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from domain.grievance import Grievance
from domain.model import AssignmentState, Status
from projections.db import APPLICATION_NAME, Cursor, Dialect, in_marks, in_params, one, parse_iso
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

# Loading states ``IN (...)`` this many grievances a statement.
LOAD_CHUNK = 500


class Prior:
    """What an event's counts need of its grievance just before it (``observe``)."""

    __slots__ = ("lead", "states", "status")

    def __init__(self, grievance: Grievance | None, event: Any) -> None:
        if grievance is None:
            self.states: dict[str, AssignmentState] = {}
            self.lead: str | None = None
            self.status: Status | None = None
            return
        self.states = {aid: a.state for aid, a in grievance.assignments.items()}
        self.status = grievance.status
        # The lead is looked up only for the events whose counts name it.
        self.lead = (
            grievance.lead_department
            if isinstance(event, (Grievance.Escalated, Grievance.FeedbackRecorded))
            else None
        )


@dataclass(slots=True)
class Touched:
    """One grievance a batch touches."""

    before: State | None  # what its rows showed before the batch (None: new in it)
    folded: Folded | None  # its aggregate, folded so far


class PositionMovedError(IntegrityError):
    """Another projector advanced this view since the batch was read: re-read and retry."""


@lru_cache(maxsize=1)
def default_tz() -> ZoneInfo:
    from domain.policies import load_policies

    return load_policies().calendar.tz


@lru_cache(maxsize=1 << 16)
def local_day_of(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).date().isoformat()


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

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        """Write this model's rows for the grievances a batch touched: what each showed
        before the batch (None when new) and shows after it."""
        raise NotImplementedError

    # Models whose rows count events (not only show the grievance after the batch) set
    # this and implement ``observe``, called once per event with its grievance before it.
    observes: ClassVar[bool] = False

    def begin(self) -> None:
        """Forget the counts of an earlier batch (one that may have failed)."""

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        """Count one event (``prior``: its grievance just before it); ``write`` stores the
        counts of the batch."""

    # Models of another aggregate's events (the knowledge base) set this to False: they
    # take no grievance states, only ``apply`` with the batch's events that are not a
    # grievance's.
    folds: ClassVar[bool] = True

    def apply(self, c: Cursor, events: Sequence[Any]) -> None:
        """Write the rows of a batch's other events (models with ``folds = False``)."""

    def executemany(self, c: Cursor, text: str, params: Sequence[dict[str, Any]]) -> None:
        if params:
            c.executemany(self.sql(text), params)

    def upsert(
        self, c: Cursor, table: str, keys: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """Insert or replace ``rows`` (all with the same columns) in one ``executemany``."""
        if not rows:
            return
        columns = list(rows[0])
        updates = ", ".join(f"{col} = excluded.{col}" for col in columns if col not in keys)
        self.executemany(
            c,
            f"INSERT INTO {{{table}}} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + col for col in columns)}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
            rows,
        )

    # --------------------------------------------------------------- shared

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.projection_name,)

    @property
    def state_table(self) -> str:
        return f"{self.projection_name}_state"

    def all_tables(self) -> tuple[str, ...]:
        return (*self.tables, self.state_table) if self.folds else self.tables

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
        state = (
            "CREATE TABLE IF NOT EXISTS {state} ("
            "grievance_id TEXT PRIMARY KEY, state TEXT NOT NULL)"
        )
        return [self.sql(s) for s in ([state] if self.folds else []) + self.ddl()]

    def create_table(self) -> None:
        """Create the tables; a state written by an older closeloop empties the view, which
        then rebuilds from the start of the log (its tracking position is gone too)."""
        super().create_table()  # type: ignore[misc]
        if not self.folds:
            return
        with self.datastore.transaction(commit=False) as c:
            self.execute(c, "SELECT state FROM {state} LIMIT 1")
            row = one(c)
        if row is not None and not is_current(row["state"]):
            self.clear()

    def load_states(self, c: Cursor, grievance_ids: Sequence[str]) -> dict[str, Folded]:
        """The stored aggregates of these grievances (those this view has seen)."""
        return {
            row["grievance_id"]: load(row["state"])
            for row in self.select_for(
                c,
                "SELECT grievance_id, state FROM {state} WHERE grievance_id IN ({ids})",
                grievance_ids,
            )
        }

    def select_for(self, c: Cursor, text: str, grievance_ids: Sequence[str]) -> Iterator[Any]:
        """The rows of ``text`` for these grievances (``{ids}`` in it: the ``IN`` list),
        ``LOAD_CHUNK`` grievances a statement."""
        for start in range(0, len(grievance_ids), LOAD_CHUNK):
            chunk = grievance_ids[start : start + LOAD_CHUNK]
            c.execute(self.sql(text.replace("{ids}", in_marks("g", chunk))), in_params("g", chunk))
            yield from c.fetchall()

    def save_states(self, c: Cursor, snapshots: list[dict[str, Any]]) -> None:
        self.executemany(
            c,
            "INSERT INTO {state} (grievance_id, state) VALUES (:id, :state) "
            "ON CONFLICT (grievance_id) DO UPDATE SET state = excluded.state",
            snapshots,
        )

    def position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            return self._max_tracking_id(APPLICATION_NAME, c) or 0

    def process_batch(self, batch: Batch, expected_position: int | None = None) -> None:
        """Apply events and record the last one's tracking, all in one transaction.

        With ``expected_position``, refuse (``PositionMovedError``) when another
        projector moved this view since the batch was read; without it, the tracking
        insert still refuses to go backwards (eventsourcing's single-row tracking).
        """
        if batch:
            expected = None if expected_position is None else [expected_position]
            process_together([self], [e for e, _ in batch], batch[-1][1], expected)

    def clear(self) -> None:
        """Empty this model's tables and forget its position (for a rebuild), atomically."""
        with self.datastore.transaction(commit=True) as c:
            self._lock(c)
            for table in self.all_tables():
                c.execute(self.dialect.sql("DELETE FROM {t}", t=table))
            self.execute(
                c, "DELETE FROM {tracking} WHERE application_name = :app", {"app": APPLICATION_NAME}
            )

    def local_day_of(self, moment: datetime) -> str:
        return local_day_of(moment, self.tz)

    def local_day(self, moment: str) -> str:
        return local_day(moment, self.tz).isoformat()

    def local_week(self, moment: str) -> str:
        return week_start(local_day(moment, self.tz)).isoformat()


def count_columns(keys: Sequence[str], names: Sequence[str]) -> str:
    """The columns of a table of counts: text keys (its primary key) and integer counts."""
    return ", ".join(
        [
            *(f"{key} TEXT NOT NULL" for key in keys),
            *(f"{name} INTEGER NOT NULL DEFAULT 0" for name in names),
            f"PRIMARY KEY ({', '.join(keys)})",
        ]
    )


class CountsView(ReadModelView):
    """A model of counts per key (``keys``: its key columns, ``count_names``: its counts):
    ``observe`` calls ``add`` per event; a batch's counts are summed in memory and added to
    the stored rows in one ``executemany``."""

    keys: ClassVar[tuple[str, ...]] = ()
    count_names: ClassVar[tuple[str, ...]] = ()
    observes = True
    counts: dict[tuple[str, ...], dict[str, int]]

    def begin(self) -> None:
        self.counts = {}

    def add(self, key: tuple[str, ...], count: str) -> None:
        assert count in self.count_names
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = dict.fromkeys(self.count_names, 0)
        counts[count] += 1

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        found = [dict(zip(self.keys, key, strict=True)) | n for key, n in self.counts.items()]
        self.counts = {}
        columns = (*self.keys, *self.count_names)
        self.executemany(
            c,
            f"INSERT INTO {{{self.projection_name}}} AS k ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + col for col in columns)}) "
            f"ON CONFLICT ({', '.join(self.keys)}) DO UPDATE SET "
            + ", ".join(f"{n} = k.{n} + excluded.{n}" for n in self.count_names),
            found,
        )


def process_together(
    views: Sequence[ReadModelView],
    events: Sequence[Any],
    last: Tracking,
    expected_positions: Sequence[int] | None = None,
) -> None:
    """Apply ``events`` to views that stand at the same position, in one transaction:
    their rows, their per-grievance states and their tracking records (``last``, the
    last notification read, which may be an event no view shows).

    Each grievance is loaded once, folded once (the domain's own ``mutate``) and mapped
    once; each view then writes the batch's final rows with ``executemany``. A projector
    killed in the middle leaves every view as it was before the batch.
    """
    first = views[0]
    with first.datastore.transaction(commit=True) as c:
        positions = []
        for view in views:
            view._lock(c)
            positions.append(view._max_tracking_id(APPLICATION_NAME, c) or 0)
        if expected_positions is not None and positions != list(expected_positions):
            moved = [
                f"{v.projection_name} moved from {e} to {p}"
                for v, e, p in zip(views, expected_positions, positions, strict=True)
                if e != p
            ]
            raise PositionMovedError("; ".join(moved))
        if len(set(positions)) > 1:
            raise ValueError("views processed together must stand at the same position")
        others = [v for v in views if not v.folds]
        if others:
            other_events = [e for e in events if not is_grievance_event(e)]
            for view in others:
                view.apply(c, other_events)
                view._insert_tracking(c, last)
            views = [v for v in views if v.folds]
            if not views:
                return
            first = views[0]
        shown = [e for e in events if is_grievance_event(e)]
        ids = list(dict.fromkeys(str(e.originator_id) for e in shown))
        stored = first.load_states(c, ids) if ids else {}
        touched = {
            gid: Touched(read_state(stored[gid]) if gid in stored else None, stored.get(gid))
            for gid in ids
        }
        observers = [v for v in views if v.observes]
        for view in observers:
            view.begin()
        for event in shown:
            current = touched[str(event.originator_id)]
            prior = (
                Prior(current.folded.grievance if current.folded else None, event)
                if observers
                else None
            )
            current.folded = fold(current.folded, event)
            for view in observers:
                assert prior is not None
                view.observe(event, prior, current.folded)
        changes: list[tuple[State | None, State]] = []
        snapshots: list[dict[str, Any]] = []
        for gid, current in touched.items():
            assert current.folded is not None
            changes.append((current.before, read_state(current.folded)))
            snapshots.append({"id": gid, "state": dump(current.folded)})
        for view in views:
            view.write(c, changes)
            view.save_states(c, snapshots)
            view._insert_tracking(c, last)


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
