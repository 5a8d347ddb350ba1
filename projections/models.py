"""The five read models: what each keeps, and the rows of a batch's grievances.

Each view maps what a grievance showed before a batch and shows after it (``read_state``
of the domain's aggregate) to its final rows, written with ``executemany``; the KPI
counts also look at each event (``observe``) and are summed in memory per batch.
Rows hold filter/sort columns plus ``item``, the JSON document the queries return.
"Overdue" is not stored: queries compare stored deadlines with the ``now`` they are
given, so an unchanged row becomes overdue without any event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from domain.assignments import Assignment
from domain.grievance import Grievance
from domain.model import OPEN_ASSIGNMENT_STATES, AssignmentRole, AssignmentState, Status
from projections.db import Cursor
from projections.fold import Folded, State, event_at
from projections.kpis import COUNTS
from projections.views import CountsView, Prior, ReadModelView, count_columns, dumps

OPEN_ASSIGNMENT_STATE_VALUES = tuple(sorted(s.value for s in OPEN_ASSIGNMENT_STATES))


# ------------------------------------------------------------------ grievance_summary


SUMMARY_FIELDS = (
    "id",
    "number",
    "status",
    "channel",
    "category",
    "urgency",
    "location",
    "lead_department",
    "assisting_departments",
    "summoned_departments",
    "received_at",
    "deadlines",
    "escalation_level",
    "reopen_count",
    "last_feedback",
    "feedback_deadline",
    "resolved_at",
    "closed_at",
    "outcome",
    "merged_into",
    "merged_into_number",
    "duplicates",
    "citizen_name",
    "citizen_phone",
    "version",
    "updated_at",
)


def summary_item(state: State) -> dict[str, Any]:
    item = {key: state[key] for key in SUMMARY_FIELDS}
    item["next_deadline"] = state["deadlines"][0] if state["deadlines"] else None
    return item


def summary_row(state: State) -> dict[str, Any]:
    lead = state["lead_department"]
    departments = sorted(
        {*state["assisting_departments"], *state["summoned_departments"], *([lead] if lead else [])}
    )
    location = state["location"]
    deadlines = state["deadlines"]
    return {
        "grievance_id": state["id"],
        "number": state["number"],
        "status": state["status"],
        "category": state["category"],
        "district": location.get("district"),
        "street": location.get("street"),
        "community": location.get("community"),
        "address": location.get("address") or "",
        "lead_department": lead,
        "departments": "|" + "|".join(departments) + "|",
        "received_at": state["received_at"],
        "next_deadline": deadlines[0]["due"] if deadlines else None,
        "escalation_level": state["escalation_level"],
        "reopen_count": state["reopen_count"],
        "updated_at": state["updated_at"],
        "item": dumps(summary_item(state)),
    }


class GrievanceSummaryView(ReadModelView):
    """grievance_summary: one row per grievance, what operators' lists and filters read."""

    projection_name = "grievance_summary"
    cost = 8
    columns = (
        "grievance_id TEXT PRIMARY KEY, number TEXT NOT NULL, status TEXT NOT NULL, "
        "category TEXT, district TEXT, street TEXT, community TEXT, address TEXT, "
        "lead_department TEXT, departments TEXT NOT NULL, received_at TEXT NOT NULL, "
        "next_deadline TEXT, escalation_level INTEGER NOT NULL, "
        "reopen_count INTEGER NOT NULL, updated_at TEXT NOT NULL, item TEXT NOT NULL"
    )
    indexes: ClassVar = {
        "received": "received_at, grievance_id",
        "status": "status, received_at",
        "deadline": "next_deadline",
    }

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        rows = [summary_row(after) for _before, after in changes]
        self.upsert(c, "grievance_summary", ("grievance_id",), rows)


# ------------------------------------------------------------------- assignment_queue

SORT_LAST = "9999-12-31T23:59:59.999999Z"


ASSIGNMENT_FIELDS = (
    "department",
    "role",
    "round",
    "state",
    "dispatched_at",
    "signed_for_at",
    "returned_at",
    "finished_at",
    "sign_for_deadline",
    "resolve_deadline",
    "report_in_deadline",
    "redispatch_deadline",
    "escalation_level",
    "urges",
    "extension_requested",
)


def assignment_item(state: State, a: dict[str, Any]) -> dict[str, Any]:
    own = [
        d
        for d in state["deadlines"]
        if d["assignment_id"] == a["id"] and d["department"] == a["department"]
    ]
    return {
        "assignment_id": a["id"],
        "grievance_id": state["id"],
        "number": state["number"],
        **{key: a[key] for key in ASSIGNMENT_FIELDS},
        "due": own[0]["due"] if own else None,
        "due_kind": own[0]["kind"] if own else None,
        "deadlines": own,
        "grievance_status": state["status"],
        "category": state["category"],
        "urgency": state["urgency"],
        "location": state["location"],
    }


def assignment_row(state: State, a: dict[str, Any]) -> dict[str, Any]:
    item = assignment_item(state, a)
    return {
        "assignment_id": a["id"],
        "grievance_id": state["id"],
        "department": a["department"],
        "role": a["role"],
        "state": a["state"],
        "due": item["due"],
        "sort_due": item["due"] or SORT_LAST,
        "escalation_level": a["escalation_level"],
        "item": dumps(item),
    }


class AssignmentQueueView(ReadModelView):
    """assignment_queue: every assignment with its state and its department's next deadline."""

    projection_name = "assignment_queue"
    cost = 7
    columns = (
        "assignment_id TEXT PRIMARY KEY, grievance_id TEXT NOT NULL, "
        "department TEXT NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL, "
        "due TEXT, sort_due TEXT NOT NULL, escalation_level INTEGER NOT NULL, "
        "item TEXT NOT NULL"
    )
    indexes: ClassVar = {"department": "department, state, sort_due, assignment_id"}

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        rows: list[dict[str, Any]] = []
        for before, after in changes:
            old = before["assignments"] if before else {}
            same_grievance = before is not None and before["status"] == after["status"]
            rows.extend(
                assignment_row(after, a)
                for a in after["assignments"].values()
                if not (same_grievance and old.get(a["id"]) == a)
            )
        self.upsert(c, "assignment_queue", ("assignment_id",), rows)


# -------------------------------------------------------------------- department_kpis


def _late(done_at: datetime | None, deadline: datetime | None) -> bool:
    return bool(done_at and deadline and done_at > deadline)


Bump = tuple[str, datetime, str]  # (department, the instant whose local day counts, count)


def kpi_bumps(event: Any, prior: Prior, folded: Folded) -> list[Bump]:
    """What one event adds to the 三率's counts (``department_kpis`` and
    ``ranking_counts`` count the same way): reckoned once per event and kept on its
    ``prior``, which the views observing the same event share."""
    if prior.bumps is not None:
        return prior.bumps
    found: list[Bump] = []

    def bump(department: str | None, moment: datetime | None, count: str) -> None:
        if department and moment:
            found.append((department, moment, count))

    g = folded.grievance
    old = prior.states
    for a in g.assignments.values():
        was = old.get(a.id)
        if was is None:
            if a.role is not AssignmentRole.SUMMONED:
                bump(a.department, a.dispatched_at, "dispatched")
        elif was is not a.state:
            _count_finished(a, bump)
    if isinstance(event, Grievance.Escalated):
        bump(event.department or prior.lead, event_at(event), "escalated")
    elif (
        isinstance(event, Grievance.FeedbackRecorded)
        and event.contacted
        and prior.status is not None
    ):
        # Feedback counts for the lead department that resolved it.
        department = prior.lead if prior.status is Status.RESOLVED else None
        at = event_at(event)
        bump(department, at, "feedback_received")
        if event.resolved:
            bump(department, at, "resolved_by_citizen")
        if event.satisfaction:  # satisfied, basically_satisfied, unsatisfied
            bump(department, at, getattr(event.satisfaction, "value", event.satisfaction))
    prior.bumps = found
    return found


def _count_finished(
    a: Assignment, bump: Callable[[str | None, datetime | None, str], None]
) -> None:
    """Counts for an assignment that has just moved to ``a.state``."""
    department, state = a.department, a.state
    if state is AssignmentState.SIGNED_FOR:
        bump(department, a.dispatched_at, "signed_for")
        if _late(a.signed_for_at, a.sign_for_deadline):
            bump(department, a.signed_for_at, "overdue")
        else:
            bump(department, a.dispatched_at, "signed_for_in_time")
    elif state is AssignmentState.RETURNED:
        bump(department, a.returned_at, "returned")
    elif state is AssignmentState.RESOLVED:
        late = _late(a.finished_at, a.resolve_deadline)
        bump(department, a.finished_at, "resolved")
        bump(department, a.finished_at, "overdue" if late else "resolved_in_time")
    elif state in (AssignmentState.COMPLETED, AssignmentState.REPORTED_IN):
        due = a.resolve_deadline if state is AssignmentState.COMPLETED else a.report_in_deadline
        if _late(a.finished_at, due):
            bump(department, a.finished_at, "overdue")


class DepartmentKpisView(CountsView):
    """department_kpis: per department per local day, the counts the 三率 are made of.

    dispatched, signed_for and signed_for_in_time count on the day the assignment was
    dispatched (so a period's response rate is about the work dispatched in it); all
    other counts on the day their event happened.
    """

    projection_name = "department_kpis"
    cost = 16
    keys: ClassVar[tuple[str, ...]] = ("department", "day")
    count_names = COUNTS
    columns = count_columns(keys, COUNTS)
    indexes: ClassVar = {"day": "day"}

    def bump(self, department: str | None, moment: datetime | None, count: str) -> None:
        if department and moment:
            self.add((department, self.local_day_of(moment)), count)

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        for department, moment, count in kpi_bumps(event, prior, folded):
            self.bump(department, moment, count)


# ------------------------------------------------------------------------- hotspots


HOTSPOT_KEY = ("category", "district", "street", "community", "week")


class HotspotsView(ReadModelView):
    """hotspots: classified grievances by category × place × local week of receipt.

    Merged duplicates still count: repeated complaints are what this model is for.
    """

    projection_name = "hotspots"
    columns = (
        "category TEXT NOT NULL, district TEXT NOT NULL, street TEXT NOT NULL, "
        "community TEXT NOT NULL, week TEXT NOT NULL, grievances INTEGER NOT NULL, "
        "PRIMARY KEY (category, district, street, community, week)"
    )
    indexes: ClassVar = {"week": "week"}

    def _key(self, state: State, category: str) -> tuple[str, ...]:
        location = state["location"]
        return (
            category,
            location.get("district") or "",
            location.get("street") or "",
            location.get("community") or "",
            self.local_week(state["received_at"]),
        )

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        deltas: dict[tuple[str, ...], int] = {}
        for before, after in changes:
            old = before["category"] if before else None
            new = after["category"]
            if old == new:
                continue
            if before is not None and old is not None:
                key = self._key(before, old)
                deltas[key] = deltas.get(key, 0) - 1
            if new is not None:
                key = self._key(after, new)
                deltas[key] = deltas.get(key, 0) + 1
        rows: list[dict[str, Any]] = [
            {**dict(zip(HOTSPOT_KEY, key, strict=True)), "grievances": n}
            for key, n in deltas.items()
            if n
        ]
        self.executemany(
            c,
            "INSERT INTO {hotspots} AS h "
            "(category, district, street, community, week, grievances) "
            "VALUES (:category, :district, :street, :community, :week, :grievances) "
            "ON CONFLICT (category, district, street, community, week) "
            "DO UPDATE SET grievances = h.grievances + excluded.grievances",
            rows,
        )
        self.executemany(
            c,
            "DELETE FROM {hotspots} WHERE category = :category AND district = :district "
            "AND street = :street AND community = :community AND week = :week "
            "AND grievances <= 0",
            [row for row in rows if row["grievances"] < 0],
        )


# -------------------------------------------------------------------- callback_queue


def callback_item(state: State) -> dict[str, Any]:
    last = state["last_feedback"]
    return {
        "grievance_id": state["id"],
        "number": state["number"],
        "department": state["resolved_by"],
        "category": state["category"],
        "location": state["location"],
        "resolved_at": state["resolved_at"],
        "window_ends_at": state["feedback_deadline"],
        "attempts": state["feedback_attempts"],
        "last_attempt_at": last["at"] if last and not last["contacted"] else None,
        "reopen_count": state["reopen_count"],
        "escalation_level": state["escalation_level"],
        "citizen_name": state["citizen_name"],
        "citizen_phone": state["citizen_phone"],
    }


class CallbackQueueView(ReadModelView):
    """callback_queue: resolved grievances waiting for the citizen's callback (回访)."""

    projection_name = "callback_queue"
    columns = (
        "grievance_id TEXT PRIMARY KEY, window_ends_at TEXT NOT NULL, "
        "department TEXT, item TEXT NOT NULL"
    )
    indexes: ClassVar = {"due": "window_ends_at, grievance_id"}

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        waiting, gone = [], []
        for before, after in changes:
            if after["status"] == Status.RESOLVED.value and after["feedback_deadline"]:
                waiting.append(
                    {
                        "grievance_id": after["id"],
                        "window_ends_at": after["feedback_deadline"],
                        "department": after["resolved_by"],
                        "item": dumps(callback_item(after)),
                    }
                )
            elif before is not None:
                gone.append({"id": after["id"]})
        self.upsert(c, "callback_queue", ("grievance_id",), waiting)
        self.executemany(c, "DELETE FROM {callback_queue} WHERE grievance_id = :id", gone)
