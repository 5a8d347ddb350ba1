"""The audit reader: what supervisors ask of the event store itself.

State as of an instant, every deadline and who missed it, and the hash chain's
verification. These functions take the application first and are bound as its
methods (``GrievanceApp.state_as_of`` …); the judging itself is the pure code of
``domain.audit`` and ``domain.integrity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

from domain import audit
from domain.errors import GrievanceNotFoundError, ValidationError
from domain.grievance import Grievance
from domain.integrity import GENESIS, BrokenLink, verify_chain, verify_chain_step

if TYPE_CHECKING:  # pragma: no cover
    from domain.application import GrievanceApp

GRIEVANCE_TOPIC = "domain.grievance:Grievance."


def state_as_of(app: GrievanceApp, grievance_id: UUID, as_of: datetime) -> Grievance | None:
    """The grievance as it was at ``as_of`` (None if it did not exist yet)."""
    if as_of.tzinfo is None:
        raise ValidationError("naive-datetime", field="as_of")
    return audit.replay(app.history(grievance_id), as_of=as_of)


def stored_history(app: GrievanceApp, grievance_id: UUID) -> list[StoredEvent]:
    """Every stored event of one grievance, in order, as stored (not decoded): for a reader
    that keeps what it made of each stored event and decodes only the ones it has not seen."""
    stored = list(app.recorder.select_events(grievance_id))
    if not stored or not stored[0].topic.startswith(GRIEVANCE_TOPIC):
        raise GrievanceNotFoundError(grievance_id=str(grievance_id))
    return stored


def first_stored_events(app: GrievanceApp, grievance_ids: list[UUID]) -> list[StoredEvent]:
    """The first stored event (version 1) of each of these grievances, in one statement
    on SQLite and PostgreSQL (a page of a queue is one read, not one per row); on another
    recorder, one ``select_events`` each."""
    recorder: Any = app.recorder
    if not grievance_ids:
        return []
    modules = {cls.__module__ for cls in type(recorder).__mro__}
    version = Grievance.INITIAL_VERSION
    if "eventsourcing.sqlite" in modules:
        marks = ", ".join("?" for _ in grievance_ids)
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT * FROM {recorder.events_table_name} "
                f"WHERE originator_version = ? AND originator_id IN ({marks})",
                [version, *(gid.hex for gid in grievance_ids)],
            )
            rows = c.fetchall()
        return [
            StoredEvent(
                recorder.convert_originator_id(r["originator_id"]),
                r["originator_version"],
                r["topic"],
                r["state"],
            )
            for r in rows
        ]
    if "eventsourcing.postgres" in modules:
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                f"SELECT * FROM {table} WHERE originator_version = %s AND originator_id = ANY(%s)",
                [version, grievance_ids],
            )
            rows = curs.fetchall()
        return [
            StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
            for r in rows
        ]
    return [e for gid in grievance_ids for e in recorder.select_events(gid, lte=version)]


def deadline_history(
    app: GrievanceApp, grievance_id: UUID, now: datetime | None = None
) -> list[audit.DeadlineRecord]:
    """Every deadline of one grievance: due, met or not, by how long, what followed."""
    return audit.deadline_history(app.history(grievance_id), now or app.now())


def department_lateness(
    app: GrievanceApp,
    department: str,
    date_from: datetime,
    date_to: datetime,
    now: datetime | None = None,
    *,
    recorded: Iterable[audit.DeadlineRecord] = (),
    after: int = 0,
) -> list[audit.DeadlineRecord]:
    """Deadlines of one department due within [date_from, date_to) that it missed.

    ``recorded``: the department's deadlines due in the period as a read model judged
    them up to notification ``after`` (open ones are judged against ``now`` here). The
    grievances with events past ``after`` are judged from their own events instead; with
    ``after`` 0 that is every grievance, the full replay the read model must equal."""
    app.policies.directory.department(department)
    now = now or app.now()
    fresh = {
        UUID(str(e.originator_id))
        for e in iter_all_events(app, start=after + 1)
        if isinstance(e, Grievance.Event)
    }
    missed = [
        r if r.outcome != "open" else audit.judged_open(r, now)
        for r in recorded
        if r.grievance_id not in fresh
    ]
    for grievance_id in sorted(fresh, key=str):
        missed += [
            record
            for record in audit.missed_deadlines(app.history(grievance_id), now, department)
            if date_from <= record.due < date_to
        ]
    return sorted((r for r in missed if r.missed), key=lambda r: (r.due, r.number))


def grievance_notifications(app: GrievanceApp, page: int, start: int = 1) -> Iterator[Any]:
    """Stored grievance events in log order from notification ``start`` (case-number
    claims left out), undecoded."""
    while True:
        notifications = app.recorder.select_notifications(start, page)
        if not notifications:
            return
        for notification in notifications:
            start = notification.id + 1
            if notification.topic.startswith(GRIEVANCE_TOPIC):
                yield notification


def iter_all_events(
    app: GrievanceApp, page: int = 500, start: int = 1
) -> Iterator[DomainEventProtocol[UUID]]:
    """Every grievance event in log order from notification ``start`` (case-number
    claims left out)."""
    for notification in grievance_notifications(app, page, start):
        yield app.mapper.to_domain_event(notification)


def _undecodable(grievance_id: UUID, stored: Any, error: Exception) -> BrokenLink:
    # A stored event that no longer decodes is tampering too.
    return BrokenLink(
        grievance_id,
        stored.originator_version,
        stored.topic.rpartition(".")[2],
        "decodable event",
        repr(error),
        "undecodable",
    )


def verify_grievance(app: GrievanceApp, grievance_id: UUID) -> BrokenLink | None:
    """Recompute one grievance's hash chain from its stored events."""
    events = []
    for stored in app.recorder.select_events(grievance_id):
        try:
            events.append(app.mapper.to_domain_event(stored))
        except Exception as error:
            return _undecodable(grievance_id, stored, error)
    if not events:
        raise GrievanceNotFoundError(grievance_id=str(grievance_id))
    return verify_chain(grievance_id, events)


def verify_all(app: GrievanceApp, page: int = 500) -> tuple[int, list[BrokenLink]]:
    """Walk the whole log; answer (grievances checked, first broken link of each)."""
    previous: dict[UUID, tuple[str, int]] = {}
    broken: dict[UUID, BrokenLink] = {}
    for notification in grievance_notifications(app, page):
        gid = UUID(str(notification.originator_id))
        if gid in broken:
            continue
        try:
            event = app.mapper.to_domain_event(notification)
        except Exception as error:
            broken[gid] = _undecodable(gid, notification, error)
            continue
        prev_hash, prev_version = previous.get(gid, (GENESIS, 0))
        link = verify_chain_step(gid, event, prev_hash, prev_version + 1)
        if link is not None:
            broken[gid] = link
        else:
            previous[gid] = (event.chain_hash, event.originator_version)  # type: ignore[attr-defined]
    checked = len(previous.keys() | broken.keys())
    return checked, sorted(broken.values(), key=lambda b: (str(b.grievance_id), b.version))
