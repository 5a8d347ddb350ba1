"""Materialised views: eventsourcing tracking recorders that also own read-model tables.

A view writes its rows **and** its tracking record (``_insert_tracking``) in one
transaction, so a crash never skips nor double-counts an event. A batch of events is
one transaction whose tracking record is the batch's last notification id: a projector
killed in the middle of a batch leaves the tables exactly as they were before it.

Each projection has its own tracking table (``<name>_tracking``, as eventsourcing's
PostgreSQL factory names it) so all of them can share one database and be rebuilt
one at a time. On SQLite the stock recorder's table is always called ``tracking``;
the SQLite view renames it.

No view stores a copy of the grievances: the views standing at the same position share
one folded aggregate per grievance in memory (``GrievanceStates``), folded again from
the event store whenever memory does not hold it at the version a batch starts from.
"""

from __future__ import annotations

import gc
import json
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from projections.db import APPLICATION_NAME, Cursor, Dialect, in_marks, in_params, parse_iso
from projections.fold import Folded, State, fold, is_grievance_event, read_state

Batch = Sequence[tuple[Any, Tracking]]

# Selecting rows ``IN (...)`` this many grievances a statement.
LOAD_CHUNK = 500
# Grievances kept folded in memory between batches (about 6-8 KiB each): the open ones
# a follower keeps touching, and during a rebuild those whose events are still to come.
STATE_CAPACITY = 20_000

# The events of one grievance up to a version, in order (the event store's, decoded).
EventLoader = Callable[[Any, int], Sequence[Any]]


class Prior:
    """What an event's counts need of its grievance just before it (``observe``)."""

    __slots__ = ("bumps", "lead", "states", "status")

    def __init__(self, grievance: Grievance | None, event: Any) -> None:
        # What the event adds to the 三率's counts, reckoned by the first view that asks
        # (``projections.models.kpi_bumps``) for the others observing the same event.
        self.bumps: list[tuple[str, datetime, str]] | None = None
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


class MissingStateError(LookupError):
    """A batch starts in the middle of a grievance whose earlier events this view was not
    given and cannot read (a view fed events without an event store)."""


class GrievanceStates:
    """The one copy of every grievance the views share: its aggregate as folded so far.

    Nothing of it is stored with the read models. The grievances of a batch are looked up
    here at the version just before the batch's first event of each; a grievance missing
    (evicted, or a projector that just started) or at another version (a batch that
    failed after folding, views catching up from an older position) is folded again from
    its own events in the event store (``load_events``), so the state a batch starts
    from is always the log's, whatever happened to the memory.
    """

    def __init__(self, load_events: EventLoader | None = None, capacity: int = STATE_CAPACITY):
        self._load_events = load_events
        # Without an event store to fall back on, nothing may be forgotten.
        self._capacity = capacity if load_events is not None else None
        self._folded: OrderedDict[str, Folded] = OrderedDict()
        self.reloaded = 0  # grievances folded again from the event store (a measure)

    def before(self, firsts: Mapping[str, Any]) -> dict[str, Folded]:
        """Per grievance, its state just before ``firsts[id]`` (its first event in the
        batch); grievances whose first event is their ``Received`` are not in the answer."""
        found: dict[str, Folded] = {}
        for gid, event in firsts.items():
            version = event.originator_version - 1
            if version < 1:
                continue
            folded = self._folded.get(gid)
            if folded is None or folded.grievance.version != version:
                folded = self._reload(event.originator_id, version)
            found[gid] = folded
        return found

    def _reload(self, grievance_id: Any, version: int) -> Folded:
        if self._load_events is None:
            raise MissingStateError(
                f"grievance {grievance_id}: the batch starts at version {version + 1} "
                "but this view has not seen the earlier events"
            )
        folded: Folded | None = None
        for event in self._load_events(grievance_id, version):
            folded = fold(folded, event)
        if folded is None or folded.grievance.version != version:
            raise MissingStateError(
                f"grievance {grievance_id}: the event store has no version {version}"
            )
        self.reloaded += 1
        return folded

    def keep(self, folded: Mapping[str, Folded]) -> None:
        """Remember the grievances of a batch that committed, as they stand after it."""
        states = self._folded
        for gid, state in folded.items():
            states[gid] = state
            states.move_to_end(gid)
        if self._capacity is not None:
            while len(states) > self._capacity:
                states.popitem(last=False)

    def forget(self) -> None:
        self._folded.clear()


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
    # CPU per event of the log in a rebuild, relative (µs per event measured by
    # bench/bench_projection_rebuild.py, folding and decoding aside): how a parallel
    # rebuild splits the views between processes.
    cost: ClassVar[float] = 1.0
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

        def _lock_all(self, c: Cursor, views: Sequence[ReadModelView]) -> None: ...

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
    def old_state_table(self) -> str:
        """Where closeloop before 2026-12 kept this view's own copy of every grievance."""
        return f"{self.projection_name}_state"

    @property
    def states(self) -> GrievanceStates:
        """The grievances this view folds when it is fed batches on its own
        (``process_batch``); a ``Projector`` shares one ``GrievanceStates`` among its views."""
        found = self.__dict__.get("_states")
        if found is None:
            found = self.__dict__["_states"] = GrievanceStates()
        return found

    def sql(self, text: str) -> str:
        cache: dict[str, str] = self.__dict__.setdefault("_sql_cache", {})
        found = cache.get(text)
        if found is None:
            names = {t: t for t in self.tables}
            names["tracking"] = self.tracking_table_name
            found = cache[text] = self.dialect.sql(text, **names)
        return found

    def execute(self, c: Cursor, text: str, params: dict[str, Any] | None = None) -> None:
        c.execute(self.sql(text), params or {})

    def create_statements(self) -> list[str]:
        return [self.sql(s) for s in self.ddl()]

    def create_table(self) -> None:
        """Create the tables, and drop the per-view copy of every grievance an older
        closeloop kept (the rows and the position stay valid: nothing to rebuild)."""
        super().create_table()  # type: ignore[misc]
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.dialect.sql("DROP TABLE IF EXISTS {t}", t=self.old_state_table))

    def select_for(self, c: Cursor, text: str, grievance_ids: Sequence[str]) -> Iterator[Any]:
        """The rows of ``text`` for these grievances (``{ids}`` in it: the ``IN`` list),
        ``LOAD_CHUNK`` grievances a statement."""
        for start in range(0, len(grievance_ids), LOAD_CHUNK):
            chunk = grievance_ids[start : start + LOAD_CHUNK]
            c.execute(self.sql(text.replace("{ids}", in_marks("g", chunk))), in_params("g", chunk))
            yield from c.fetchall()

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
            process_together(
                [self], [e for e, _ in batch], batch[-1][1], expected, states=self.states
            )

    def clear(self) -> None:
        """Empty this model's tables and forget its position (for a rebuild), atomically."""
        self.states.forget()
        with self.datastore.transaction(commit=True) as c:
            self._lock(c)
            for table in self.tables:
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


class Deferred:
    """A read transaction's cursor that keeps the views' writes for the write transaction.

    A batch is computed (folded, observed, mapped to rows) outside the write lock, so
    views rebuilt by several processes at once hold SQLite's one write lock only while
    their statements run; a view may still read its own rows (``deadline_records`` reads
    its open deadlines) through it."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.writes: list[tuple[str, Sequence[dict[str, Any]]]] = []

    def execute(self, text: str, params: Any = None) -> Any:
        if not text.lstrip().upper().startswith("SELECT"):
            raise ValueError("a view writes through executemany while its batch is computed")
        return self.cursor.execute(text, params or {})

    def executemany(self, text: str, params: Sequence[dict[str, Any]]) -> None:
        self.writes.append((text, params))

    def fetchall(self) -> Any:
        return self.cursor.fetchall()

    def fetchone(self) -> Any:
        return self.cursor.fetchone()


def positions_of(views: Sequence[ReadModelView], c: Cursor, *, lock: bool) -> list[int]:
    """The views' positions (with ``lock``, after taking each view's lock); without it in
    one statement for all of them (a PostgreSQL round trip, not one per view)."""
    if lock:
        views[0]._lock_all(c, views)
    c.execute(
        " UNION ALL ".join(
            view.sql(
                f"SELECT {i} AS i, (SELECT MAX(notification_id) FROM {{tracking}} "
                "WHERE application_name = :app) AS position"
            )
            for i, view in enumerate(views)
        )
        + " ORDER BY i",
        {"app": APPLICATION_NAME},
    )
    return [int(row["position"] or 0) for row in c.fetchall()]


def check_positions(
    views: Sequence[ReadModelView], expected: Sequence[int], found: Sequence[int]
) -> None:
    if list(found) != list(expected):
        moved = [
            f"{v.projection_name} moved from {e} to {p}"
            for v, e, p in zip(views, expected, found, strict=True)
            if e != p
        ]
        raise PositionMovedError("; ".join(moved))
    if len(set(found)) > 1:
        raise ValueError("views processed together must stand at the same position")


def process_together(
    views: Sequence[ReadModelView],
    events: Sequence[Any],
    last: Tracking,
    expected_positions: Sequence[int] | None = None,
    *,
    states: GrievanceStates,
) -> None:
    """Apply ``events`` to views that stand at the same position, in one transaction:
    their rows and their tracking records (``last``, the last notification read, which
    may be an event no view shows).

    Each grievance is taken once from ``states`` (the one copy all views share), folded
    once (the domain's own ``mutate``) and mapped once; each view then computes the
    batch's final rows. That happens in a read transaction; the write transaction then
    takes the views' locks, refuses the batch when a view moved meanwhile
    (``PositionMovedError``) and runs the rows' ``executemany`` with the tracking
    records. A projector killed in the middle leaves every view as it was before the
    batch, and ``states`` keeps the batch's grievances only once it committed.
    """
    datastore = views[0].datastore
    folding = [v for v in views if v.folds]
    others = [v for v in views if not v.folds]
    shown = [(str(e.originator_id), e) for e in events if is_grievance_event(e)]
    writes: list[tuple[str, Sequence[dict[str, Any]]]] = []
    after: dict[str, Folded] = {}
    seen: list[int] | None = None
    if folding and shown:
        with datastore.transaction(commit=False) as r:
            seen = positions_of(views, r, lock=False)
            if expected_positions is not None:
                check_positions(views, expected_positions, seen)
            deferred = Deferred(r)
            with collector_paused():
                after = compute(folding, shown, states, deferred)
            writes = deferred.writes
    with datastore.transaction(commit=True) as c:
        positions = positions_of(views, c, lock=True)
        expected = seen if seen is not None else expected_positions
        check_positions(views, positions if expected is None else expected, positions)
        if others:
            other_events = [e for e in events if not is_grievance_event(e)]
            for view in others:
                view.apply(c, other_events)
        for text, params in writes:
            c.executemany(text, params)
        for view in views:
            view._insert_tracking(c, last)
    states.keep(after)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused: a batch allocates hundreds of thousands of
    short-lived (acyclic) objects, and each of the collections they would trigger walks
    every grievance kept in ``GrievanceStates`` (15-25 % of a rebuild's CPU when
    measured); what a batch leaves is collected after it."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def compute(
    views: Sequence[ReadModelView],
    shown: Sequence[tuple[str, Any]],
    states: GrievanceStates,
    c: Deferred,
) -> dict[str, Folded]:
    """Fold a batch's grievance events (``shown``: with their grievance's id) and have
    each view write its rows into ``c``; answers the grievances as they stand after it."""
    firsts: dict[str, Any] = {}
    for gid, event in shown:
        if gid not in firsts:
            firsts[gid] = event
    stored = states.before(firsts)
    touched = {
        gid: Touched(read_state(stored[gid]), stored[gid]) if gid in stored else Touched(None, None)
        for gid in firsts
    }
    observers = [v for v in views if v.observes]
    for view in observers:
        view.begin()
    for gid, event in shown:
        current = touched[gid]
        if observers:
            prior = Prior(current.folded.grievance if current.folded else None, event)
            current.folded = fold(current.folded, event)
            for view in observers:
                view.observe(event, prior, current.folded)
        else:
            current.folded = fold(current.folded, event)
    changes: list[tuple[State | None, State]] = []
    after: dict[str, Folded] = {}
    for gid, current in touched.items():
        assert current.folded is not None
        changes.append((current.before, read_state(current.folded)))
        after[gid] = current.folded
    for view in views:
        view.write(c, changes)
    return after


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

    def _lock_all(self, c: Cursor, views: Sequence[ReadModelView]) -> None:
        # SQLite's write lock is the whole database's: one write takes it for every view.
        self._lock(c)

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

    @property
    def lock_key(self) -> int:
        return zlib.crc32(f"{self.datastore.schema}.{self.projection_name}".encode())

    def _lock(self, c: Cursor) -> None:
        c.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": self.lock_key})

    def _lock_all(self, c: Cursor, views: Sequence[ReadModelView]) -> None:
        # One statement, the keys in one order for every projector (no lock-order deadlock).
        keys = sorted({view.lock_key for view in views if isinstance(view, PostgresReadModelView)})
        c.execute("SELECT " + ", ".join(f"pg_advisory_xact_lock({int(k)})" for k in keys))
