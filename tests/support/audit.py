"""The issue-6 story for the audit API tests, and direct edits of stored events (tampering).

``walk_story(app, clock)`` drives one grievance through dispatch, a return, re-dispatch,
a late sign-for (urged, then escalated), an extension, resolution, unsatisfied feedback,
reopening, resolution, satisfied feedback and closing, on a FakeClock. At five moments
it keeps the real recording instant and the aggregate as it was then.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from domain.application import GrievanceApp
from domain.grievance import Grievance
from domain.model import SYSTEM
from tests.conftest import OPERATOR, PG_DB, PG_HOST, PG_PORT, PG_USER, SUPERVISOR, FakeClock
from tests.support.domain import Case, new_case, work_through

STORY_START = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # Monday 09:30 in Beijing


@dataclass
class Story:
    case: Case
    first: str  # the assignment returned by the street office
    lead: str  # the re-dispatched lead (hd.housing), signed for late
    sign_for_due: datetime
    resolve_due: datetime
    moments: list[tuple[datetime, Grievance]] = field(default_factory=list)

    @property
    def id(self) -> UUID:
        return self.case.id


def walk_story(app: GrievanceApp, clock: FakeClock) -> Story:
    clock.now = STORY_START
    moments: list[tuple[datetime, Grievance]] = []

    def mark() -> None:
        moments.append((datetime.now(UTC), app.get_grievance(case.id)))

    case = new_case(app, "PM01")
    app.dispatch_grievance(case.id, OPERATOR)
    mark()
    first = case.aid()
    clock.advance(minutes=30)
    app.return_assignment(first, case.dept(first), reason="非本街道管辖")
    mark()
    clock.advance(minutes=20)
    app.arbitrate_return(
        case.id, OPERATOR, assignment_id=first, decision="redispatch", department="hd.housing"
    )
    lead = case.aid()
    due = case.g.assignment(lead).sign_for_deadline
    assert due is not None
    clock.now = due - timedelta(minutes=20)
    app.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead, reason="临近签收时限")
    clock.now = due + timedelta(minutes=1)
    app.escalate(case.id, SYSTEM, level=1, kind="sign_for", assignment_id=lead, reason="逾期未签收")
    mark()
    clock.now = due + timedelta(minutes=45)
    app.sign_for(lead, case.dept(lead))
    resolve_due = case.g.assignment(lead).resolve_deadline
    assert resolve_due is not None
    app.request_extension(
        lead, case.dept(lead), new_deadline=resolve_due + timedelta(days=2), reason="需业主表决"
    )
    app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=True, reason="同意")
    clock.advance(days=2)
    app.resolve(lead, case.dept(lead), account="已督促物业整改")
    mark()
    clock.advance(hours=3)
    app.record_feedback(
        case.id,
        OPERATOR,
        contacted=True,
        resolved=False,
        satisfaction="unsatisfied",
        comment="楼道仍有电动车充电",
    )
    clock.advance(hours=1)
    work_through(case)
    clock.advance(hours=2)
    app.record_feedback(case.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    mark()
    return Story(case, first, lead, due, resolve_due, moments)


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["type"]) for e in events]


def tamper_sqlite(path: str, grievance_id: UUID, version: int, old: str, new: str) -> None:
    """Replace text inside one stored event's state, behind the application's back."""
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT state FROM stored_events WHERE originator_id=? AND originator_version=?",
            (grievance_id.hex, version),
        ).fetchone()
        assert row is not None
        text = bytes(row[0]).decode()
        assert old in text
        conn.execute(
            "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=?",
            (text.replace(old, new).encode(), grievance_id.hex, version),
        )


def tamper_postgres(schema: str, grievance_id: UUID, version: int, old: str, new: str) -> None:
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=PG_USER, autocommit=True
    ) as conn:
        row = conn.execute(
            f'SELECT state FROM "{schema}".grievances_events '
            "WHERE originator_id=%s AND originator_version=%s",
            (grievance_id, version),
        ).fetchone()
        assert row is not None
        text = bytes(row[0]).decode()
        assert old in text
        conn.execute(
            f'UPDATE "{schema}".grievances_events SET state=%s '
            "WHERE originator_id=%s AND originator_version=%s",
            (text.replace(old, new).encode(), grievance_id, version),
        )
