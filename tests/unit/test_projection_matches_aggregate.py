"""Property: whatever commands run, every read model shows each grievance as its aggregate is.

Random command sequences (the steps of ``test_grievance_properties``) run on three
grievances at once through ``GrievanceApp`` on the in-memory store; the log is then
projected into all five views (in-memory SQLite, random batch sizes, so the views'
per-grievance state is saved and loaded between batches). Every row is compared with
what the aggregate, loaded by the application, says: the expectations below read the
aggregate's own attributes and methods (``open_deadlines``, ``overdue``,
``lead_department`` ...), never the projections' code.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import GrievanceApp
from domain.audit import deadline_history, judged_open
from domain.errors import DomainError
from domain.grievance import Assignment, Grievance
from domain.model import (
    AssignmentRole,
    AssignmentState,
    Deadline,
    Status,
    mask_name,
    mask_phone,
)
from projections import views
from projections.db import APPLICATION_NAME, Datastore, Dialect, iso
from projections.deadlines import row_record
from projections.queries import ReadModels
from projections.registry import PROJECTIONS
from projections.runner import build_view
from tests.conftest import FakeClock, make_grievance
from tests.unit.test_grievance_properties import (
    PREFIXES,
    TERMINAL,
    run_step,
    start_from,
    step,
)

GRIEVANCES = 3
LOCATION_KEYS = ("district", "street", "community", "grid", "address")
GONE = (AssignmentState.SUPERSEDED, AssignmentState.CANCELLED)


# ----------------------------------------------------------------- the projection


@contextmanager
def projected(
    app: GrievanceApp, batch_size: int, together: bool
) -> Iterator[tuple[Datastore, ReadModels]]:
    """The whole log projected into all five views, ``batch_size`` events a transaction.

    ``together``: the views take each batch in one transaction, sharing one folded copy
    of each grievance (as the projector does when they stand at the same position), else
    one view after the other, each folding the batch again into its own copies."""
    datastore = SQLiteDatastore(f"file:match-{uuid4().hex}?mode=memory&cache=shared")
    dialect = Dialect(postgres=False)
    tz = app.policies.calendar.tz
    try:
        models = [build_view(spec, datastore, dialect) for spec in PROJECTIONS.values()]
        for view in models:
            view.tz = tz
        notifications = app.recorder.select_notifications(1, 100_000)
        decoded = [
            (app.mapper.to_domain_event(n), Tracking(APPLICATION_NAME, n.id)) for n in notifications
        ]
        states = views.GrievanceStates(lambda gid, version: list(app.events.get(gid, lte=version)))
        for start in range(0, len(decoded), batch_size):
            batch = decoded[start : start + batch_size]
            if together:
                views.process_together(models, [e for e, _ in batch], batch[-1][1], states=states)
            else:
                for view in models:
                    view.process_batch(batch)
        yield datastore, ReadModels(datastore, dialect, tz=tz)
    finally:
        datastore.close()


def table(datastore: Datastore, name: str) -> list[dict[str, Any]]:
    with datastore.transaction(commit=False) as c:
        c.execute(Dialect(postgres=False).sql("SELECT * FROM {t}", t=name))
        return [dict(row) for row in c.fetchall()]


# ------------------------------------------------- what the aggregate says, as rows


def deadline_item(g: Grievance, d: Deadline) -> dict[str, Any]:
    owner = g.assignments[d.assignment_id] if d.assignment_id else None
    return {
        "kind": d.kind.value,
        "due": iso(d.due),
        "assignment_id": d.assignment_id,
        "department": d.department,
        "escalation_level": owner.escalation_level if owner else g.escalation_level,
    }


def in_play(g: Grievance, role: AssignmentRole) -> list[str]:
    return [a.department for a in g.current_assignments(role) if a.state not in GONE]


def location(g: Grievance) -> dict[str, Any]:
    return {key: g.location.get(key) for key in LOCATION_KEYS}


def resolver(g: Grievance, round_: int) -> str | None:
    """The lead department whose 办结 the citizen was called back about, in that round."""
    done = [
        a.department
        for a in g.assignments.values()
        if a.round == round_
        and a.role is AssignmentRole.LEAD
        and a.state is AssignmentState.RESOLVED
    ]
    return done[-1] if done else None


def expected_summary(app: GrievanceApp, g: Grievance, now: datetime) -> dict[str, Any]:
    deadlines = [deadline_item(g, d) for d in g.open_deadlines()]
    last = g.feedback[-1] if g.feedback else None
    last_event = app.history(g.id)[-1]
    return {
        "id": str(g.id),
        "number": g.number,
        "status": g.status.value,
        "channel": g.channel,
        "category": g.category,
        "urgency": g.urgency,
        "location": location(g),
        "lead_department": g.lead_department,
        "assisting_departments": g.assisting_departments,
        "summoned_departments": in_play(g, AssignmentRole.SUMMONED),
        "received_at": iso(g.received_at),
        "deadlines": deadlines,
        "next_deadline": deadlines[0] if deadlines else None,
        "escalation_level": g.escalation_level,
        "reopen_count": g.reopen_count,
        "last_feedback": None
        if last is None
        else {
            "at": iso(last.at),
            "contacted": last.contacted,
            "resolved": last.resolved,
            "satisfaction": last.satisfaction.value if last.satisfaction else None,
        },
        "feedback_deadline": iso(g.feedback_deadline),
        "resolved_at": iso(g.resolved_at),
        "closed_at": iso(g.closed_at),
        "outcome": g.outcome.value if g.outcome else None,
        "merged_into": g.merged_into,
        "merged_into_number": app.get_grievance(UUID(g.merged_into)).number
        if g.merged_into
        else None,
        "duplicates": len(g.duplicates),
        "citizen_name": mask_name(g.citizen_name),
        "citizen_phone": mask_phone(g.citizen_phone),
        "version": g.version,
        "updated_at": iso(last_event.at),  # type: ignore[attr-defined]
        "overdue": bool(g.overdue(now)),
        "overdue_deadlines": [deadline_item(g, d) for d in g.overdue(now)],
    }


def expected_assignment(g: Grievance, a: Assignment) -> dict[str, Any]:
    own = [
        deadline_item(g, d)
        for d in g.open_deadlines()
        if d.assignment_id == a.id and d.department == a.department
    ]
    return {
        "assignment_id": a.id,
        "grievance_id": str(g.id),
        "number": g.number,
        "department": a.department,
        "role": a.role.value,
        "round": a.round,
        "state": a.state.value,
        "dispatched_at": iso(a.dispatched_at),
        "signed_for_at": iso(a.signed_for_at),
        "returned_at": iso(a.returned_at),
        "finished_at": iso(a.finished_at),
        "sign_for_deadline": iso(a.sign_for_deadline),
        "resolve_deadline": iso(a.resolve_deadline),
        "report_in_deadline": iso(a.report_in_deadline),
        "redispatch_deadline": iso(a.redispatch_deadline),
        "due": own[0]["due"] if own else None,
        "due_kind": own[0]["kind"] if own else None,
        "deadlines": own,
        "escalation_level": a.escalation_level,
        "urges": a.urges,
        "extension_requested": iso(a.extension_requested),
        "grievance_status": g.status.value,
        "category": g.category,
        "urgency": g.urgency,
        "location": location(g),
    }


def expected_callback(g: Grievance) -> dict[str, Any] | None:
    if g.status is not Status.RESOLVED or g.feedback_deadline is None:
        return None
    last = g.feedback[-1] if g.feedback else None
    return {
        "grievance_id": str(g.id),
        "number": g.number,
        "department": resolver(g, g.round),
        "category": g.category,
        "location": location(g),
        "resolved_at": iso(g.resolved_at),
        "window_ends_at": iso(g.feedback_deadline),
        "attempts": sum(1 for f in g.feedback if f.round == g.round and not f.contacted),
        "last_attempt_at": iso(last.at) if last and not last.contacted else None,
        "reopen_count": g.reopen_count,
        "escalation_level": g.escalation_level,
        "citizen_name": mask_name(g.citizen_name),
        "citizen_phone": mask_phone(g.citizen_phone),
    }


def expected_kpis(
    app: GrievanceApp, grievances: list[Grievance]
) -> dict[tuple[str, str], Counter[str]]:
    """The 三率 counts per (department, local day), read off the aggregates' assignments,
    feedback and escalations."""
    tz = app.policies.calendar.tz
    counts: dict[tuple[str, str], Counter[str]] = {}

    def bump(department: str | None, moment: datetime | None, name: str) -> None:
        if department and moment:
            key = (department, moment.astimezone(tz).date().isoformat())
            counts.setdefault(key, Counter())[name] += 1

    def late(done: datetime | None, due: datetime | None) -> bool:
        return bool(done and due and done > due)

    for g in grievances:
        for a in g.assignments.values():
            dept = a.department
            if a.role is not AssignmentRole.SUMMONED:
                bump(dept, a.dispatched_at, "dispatched")
            if a.signed_for_at:
                bump(dept, a.dispatched_at, "signed_for")
                if late(a.signed_for_at, a.sign_for_deadline):
                    bump(dept, a.signed_for_at, "overdue")
                else:
                    bump(dept, a.dispatched_at, "signed_for_in_time")
            if a.returned_at:
                bump(dept, a.returned_at, "returned")
            if a.state is AssignmentState.RESOLVED:
                bump(dept, a.finished_at, "resolved")
                late_resolve = late(a.finished_at, a.resolve_deadline)
                bump(dept, a.finished_at, "overdue" if late_resolve else "resolved_in_time")
            if a.state is AssignmentState.COMPLETED and late(a.finished_at, a.resolve_deadline):
                bump(dept, a.finished_at, "overdue")
            if a.state is AssignmentState.REPORTED_IN and late(a.finished_at, a.report_in_deadline):
                bump(dept, a.finished_at, "overdue")
        for f in g.feedback:
            if f.contacted:
                dept_ = resolver(g, f.round)
                bump(dept_, f.at, "feedback_received")
                if f.resolved:
                    bump(dept_, f.at, "resolved_by_citizen")
                if f.satisfaction:
                    bump(dept_, f.at, f.satisfaction.value)
        for e in app.history(g.id):
            if type(e).__qualname__.endswith(".Escalated"):
                before = app.get_grievance(g.id, version=e.originator_version - 1)
                bump(e.department or before.lead_department, e.at, "escalated")  # type: ignore[attr-defined]
    return counts


def expected_hotspots(app: GrievanceApp, grievances: list[Grievance]) -> Counter[tuple[str, ...]]:
    tz = app.policies.calendar.tz
    found: Counter[tuple[str, ...]] = Counter()
    for g in grievances:
        if g.category is None:
            continue
        day = g.received_at.astimezone(tz).date()
        week = (day - timedelta(days=day.weekday())).isoformat()
        place = tuple(g.location.get(key) or "" for key in ("district", "street", "community"))
        found[(g.category, *place, week)] += 1
    return found


# --------------------------------------------------------------------- the property


def check_rows(
    app: GrievanceApp, ids: list[UUID], batch_size: int, together: bool, now: datetime
) -> None:
    grievances = [app.get_grievance(gid) for gid in ids]
    with projected(app, batch_size, together) as (datastore, read):
        for g in grievances:
            expected = expected_summary(app, g, now)
            assert read.get_summary(g.id, now=now) == expected
            deadlines = expected["deadlines"]
            departments = {*expected["assisting_departments"], *expected["summoned_departments"]}
            if expected["lead_department"]:
                departments.add(expected["lead_department"])
            location_ = expected["location"]
            (row,) = [
                r for r in table(datastore, "grievance_summary") if r["grievance_id"] == str(g.id)
            ]
            assert {k: v for k, v in row.items() if k != "item"} == {
                "grievance_id": str(g.id),
                "number": g.number,
                "status": g.status.value,
                "category": g.category,
                "district": location_["district"],
                "street": location_["street"],
                "community": location_["community"],
                "address": location_["address"] or "",
                "lead_department": g.lead_department,
                "departments": "|" + "|".join(sorted(departments)) + "|",
                "received_at": iso(g.received_at),
                "next_deadline": deadlines[0]["due"] if deadlines else None,
                "escalation_level": g.escalation_level,
                "reopen_count": g.reopen_count,
                "updated_at": expected["updated_at"],
            }

        assignments = {r["assignment_id"]: r for r in table(datastore, "assignment_queue")}
        wanted = {a.id: (g, a) for g in grievances for a in g.assignments.values()}
        assert set(assignments) == set(wanted)
        for aid, (g, a) in wanted.items():
            item = expected_assignment(g, a)
            row = assignments[aid]
            assert json.loads(row.pop("item")) == item
            assert row == {
                "assignment_id": aid,
                "grievance_id": str(g.id),
                "department": a.department,
                "role": a.role.value,
                "state": a.state.value,
                "due": item["due"],
                "sort_due": item["due"] or "9999-12-31T23:59:59.999999Z",
                "escalation_level": a.escalation_level,
            }

        callbacks = {r["grievance_id"]: r for r in table(datastore, "callback_queue")}
        wanted_callbacks = {str(g.id): c for g in grievances if (c := expected_callback(g))}
        assert set(callbacks) == set(wanted_callbacks)
        for gid, callback in wanted_callbacks.items():
            row = callbacks[gid]
            assert json.loads(row["item"]) == callback
            assert (row["window_ends_at"], row["department"]) == (
                callback["window_ends_at"],
                callback["department"],
            )

        spots = {
            (r["category"], r["district"], r["street"], r["community"], r["week"]): r["grievances"]
            for r in table(datastore, "hotspots")
        }
        assert spots == dict(expected_hotspots(app, grievances))

        kpis = {
            (r.pop("department"), r.pop("day")): Counter({k: v for k, v in r.items() if v})
            for r in table(datastore, "department_kpis")
        }
        assert {k: v for k, v in kpis.items() if v} == expected_kpis(app, grievances)

        # deadline_records: the audit replay's own judgement of each deadline, row by row.
        recorded = [
            judged_open(row_record(r), now) if r["outcome"] == "open" else row_record(r)
            for r in table(datastore, "deadline_records")
        ]
        replayed = [r for gid in ids for r in deadline_history(list(app.history(gid)), now)]
        assert sorted(recorded, key=repr) == sorted(replayed, key=repr)


# The aggregate's action for each step of ``run_step``: steps are drawn mostly among
# those the grievance's status allows, so sequences get deep into the loop.
ACTION_OF = {
    "classify": "classify",
    "dispatch": "dispatch",
    "dispatch_explicit": "dispatch",
    "reject": "reject",
    "sign_for": "sign_for",
    "return": "return",
    "arbitrate_confirm": "arbitrate",
    "arbitrate_redispatch": "arbitrate",
    "progress": "report_progress",
    "request_extension": "request_extension",
    "grant": "decide_extension",
    "deny": "decide_extension",
    "complete_part": "complete_part",
    "resolve": "resolve",
    "summon": "summon",
    "report_in": "report_in",
    "urge": "urge",
    "escalate": "escalate",
    "feedback": "record_feedback",
    "close": "close",
    "withdraw": "withdraw",
    "merge": "merge",
}


def draw_step(data: st.DataObject, g: Grievance) -> tuple[str, int, int, bool]:
    name, i, j, own = data.draw(step)
    allowed = {str(action) for action in g.allowed_actions()}
    legal = [
        n
        for n, action in sorted(ACTION_OF.items())
        if action in allowed
        for _ in range(1 if n in TERMINAL else 4)
    ]
    if legal and data.draw(st.integers(0, 9)) > 0:
        name = data.draw(st.sampled_from([*legal, "advance_clock"]))
    return name, i, j, own


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    prefixes=st.lists(st.sampled_from(PREFIXES), min_size=GRIEVANCES, max_size=GRIEVANCES),
    steps=st.integers(5, 90),
    batch_size=st.integers(1, 40),
    together=st.booleans(),
)
def test_every_view_shows_each_grievance_as_its_aggregate(
    data: st.DataObject, prefixes: list[str], steps: int, batch_size: int, together: bool
) -> None:
    clock = FakeClock()
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    try:
        ids = [make_grievance(app) for _ in range(GRIEVANCES)]
        for gid, prefix in zip(ids, prefixes, strict=True):
            start_from(app, gid, prefix)  # type: ignore[arg-type]
        for _ in range(steps):
            which = data.draw(st.integers(0, GRIEVANCES - 1))
            cmd = draw_step(data, app.get_grievance(ids[which]))
            # A refused command records nothing, which the read models must show too.
            with suppress(DomainError):
                run_step(app, clock, ids[which], ids[(which + 1) % GRIEVANCES], cmd)  # type: ignore[arg-type]
        check_rows(app, ids, batch_size, together, clock.now)
    finally:
        app.close()
