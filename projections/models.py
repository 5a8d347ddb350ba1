"""The five read models: what each keeps, and how one grievance event changes its rows.

Rows hold filter/sort columns plus ``item``, the JSON document the queries return.
"Overdue" is not stored: queries compare stored deadlines with the ``now`` they are
given, so an unchanged row becomes overdue without any event.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.model import AssignmentRole, Status
from projections.db import Cursor
from projections.fold import (
    OPEN_STATES,
    State,
    current_departments,
    event_kind,
    lead_department,
    new_assignments,
    open_deadlines,
)
from projections.views import ReadModelView, dumps


def upsert(
    view: ReadModelView, c: Cursor, table: str, keys: tuple[str, ...], row: dict[str, Any]
) -> None:
    columns = list(row)
    updates = ", ".join(f"{col} = excluded.{col}" for col in columns if col not in keys)
    view.execute(
        c,
        f"INSERT INTO {{{table}}} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + col for col in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
        row,
    )


# ------------------------------------------------------------------ grievance_summary


def summary_item(state: State, deadlines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": state["id"],
        "number": state["number"],
        "status": state["status"],
        "channel": state["channel"],
        "category": state["category"],
        "urgency": state["urgency"],
        "location": state["location"],
        "lead_department": lead_department(state),
        "assisting_departments": current_departments(state, AssignmentRole.ASSISTING),
        "summoned_departments": current_departments(state, AssignmentRole.SUMMONED),
        "received_at": state["received_at"],
        "deadlines": deadlines,
        "next_deadline": deadlines[0] if deadlines else None,
        "escalation_level": state["escalation_level"],
        "reopen_count": state["reopen_count"],
        "last_feedback": state["last_feedback"],
        "feedback_deadline": state["feedback_deadline"],
        "resolved_at": state["resolved_at"],
        "closed_at": state["closed_at"],
        "outcome": state["outcome"],
        "merged_into": state["merged_into"],
        "merged_into_number": state["merged_into_number"],
        "duplicates": len(state["duplicates"]),
        "citizen_name": state["citizen_name"],
        "citizen_phone": state["citizen_phone"],
        "version": state["version"],
        "updated_at": state["updated_at"],
    }


class GrievanceSummaryView(ReadModelView):
    """grievance_summary: one row per grievance, what operators' lists and filters read."""

    projection_name: ClassVar[str] = "grievance_summary"
    tables: ClassVar[tuple[str, ...]] = ("grievance_summary",)

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {grievance_summary} ("
            "grievance_id TEXT PRIMARY KEY, number TEXT NOT NULL, status TEXT NOT NULL, "
            "category TEXT, district TEXT, street TEXT, community TEXT, address TEXT, "
            "lead_department TEXT, departments TEXT NOT NULL, received_at TEXT NOT NULL, "
            "next_deadline TEXT, escalation_level INTEGER NOT NULL, "
            "reopen_count INTEGER NOT NULL, updated_at TEXT NOT NULL, item TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS grievance_summary_received "
            "ON {grievance_summary} (received_at, grievance_id)",
            "CREATE INDEX IF NOT EXISTS grievance_summary_status "
            "ON {grievance_summary} (status, received_at)",
            "CREATE INDEX IF NOT EXISTS grievance_summary_deadline "
            "ON {grievance_summary} (next_deadline)",
        ]

    def project(self, c: Cursor, event: Any, before: State | None, after: State) -> None:
        deadlines = open_deadlines(after)
        item = summary_item(after, deadlines)
        departments = sorted(
            {
                *item["assisting_departments"],
                *item["summoned_departments"],
                *([item["lead_department"]] if item["lead_department"] else []),
            }
        )
        location = after["location"]
        upsert(
            self,
            c,
            "grievance_summary",
            ("grievance_id",),
            {
                "grievance_id": after["id"],
                "number": after["number"],
                "status": after["status"],
                "category": after["category"],
                "district": location.get("district"),
                "street": location.get("street"),
                "community": location.get("community"),
                "address": location.get("address") or "",
                "lead_department": item["lead_department"],
                "departments": "|" + "|".join(departments) + "|",
                "received_at": after["received_at"],
                "next_deadline": deadlines[0]["due"] if deadlines else None,
                "escalation_level": after["escalation_level"],
                "reopen_count": after["reopen_count"],
                "updated_at": after["updated_at"],
                "item": dumps(item),
            },
        )


# ------------------------------------------------------------------- assignment_queue

SORT_LAST = "9999-12-31T23:59:59.999999Z"


def assignment_item(state: State, a: dict[str, Any]) -> dict[str, Any]:
    own = [
        d
        for d in open_deadlines(state)
        if d["assignment_id"] == a["id"] and d["department"] == a["department"]
    ]
    return {
        "assignment_id": a["id"],
        "grievance_id": state["id"],
        "number": state["number"],
        "department": a["department"],
        "role": a["role"],
        "round": a["round"],
        "state": a["state"],
        "dispatched_at": a["dispatched_at"],
        "signed_for_at": a["signed_for_at"],
        "sign_for_deadline": a["sign_for_deadline"],
        "resolve_deadline": a["resolve_deadline"],
        "report_in_deadline": a["report_in_deadline"],
        "due": own[0]["due"] if own else None,
        "due_kind": own[0]["kind"] if own else None,
        "deadlines": own,
        "escalation_level": a["escalation_level"],
        "urges": a["urges"],
        "extension_requested": a["extension_requested"],
        "grievance_status": state["status"],
        "category": state["category"],
        "urgency": state["urgency"],
        "location": state["location"],
    }


class AssignmentQueueView(ReadModelView):
    """assignment_queue: every assignment with its state and its department's next deadline."""

    projection_name: ClassVar[str] = "assignment_queue"
    tables: ClassVar[tuple[str, ...]] = ("assignment_queue",)

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {assignment_queue} ("
            "assignment_id TEXT PRIMARY KEY, grievance_id TEXT NOT NULL, "
            "department TEXT NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL, "
            "due TEXT, sort_due TEXT NOT NULL, escalation_level INTEGER NOT NULL, "
            "item TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS assignment_queue_department "
            "ON {assignment_queue} (department, state, sort_due, assignment_id)",
        ]

    def project(self, c: Cursor, event: Any, before: State | None, after: State) -> None:
        for a in after["assignments"].values():
            old = (before or {}).get("assignments", {}).get(a["id"])
            if old == a and before is not None and before["status"] == after["status"]:
                continue
            item = assignment_item(after, a)
            upsert(
                self,
                c,
                "assignment_queue",
                ("assignment_id",),
                {
                    "assignment_id": a["id"],
                    "grievance_id": after["id"],
                    "department": a["department"],
                    "role": a["role"],
                    "state": a["state"],
                    "due": item["due"],
                    "sort_due": item["due"] or SORT_LAST,
                    "escalation_level": a["escalation_level"],
                    "item": dumps(item),
                },
            )


# -------------------------------------------------------------------- department_kpis

KPI_COUNTS = (
    "dispatched",
    "signed_for",
    "signed_for_in_time",
    "returned",
    "resolved",
    "resolved_in_time",
    "overdue",
    "escalated",
    "feedback_received",
    "resolved_by_citizen",
    "satisfied",
    "basically_satisfied",
    "unsatisfied",
)


def _late(done_at: str | None, deadline: str | None) -> bool:
    return bool(done_at and deadline and done_at > deadline)


class DepartmentKpisView(ReadModelView):
    """department_kpis: per department per local day, the counts the 三率 are made of.

    dispatched, signed_for and signed_for_in_time count on the day the assignment was
    dispatched (so a period's response rate is about the work dispatched in it); all
    other counts on the day their event happened.
    """

    projection_name: ClassVar[str] = "department_kpis"
    tables: ClassVar[tuple[str, ...]] = ("department_kpis",)

    def ddl(self) -> list[str]:
        counts = ", ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in KPI_COUNTS)
        return [
            "CREATE TABLE IF NOT EXISTS {department_kpis} ("
            f"department TEXT NOT NULL, day TEXT NOT NULL, {counts}, "
            "PRIMARY KEY (department, day))",
            "CREATE INDEX IF NOT EXISTS department_kpis_day ON {department_kpis} (day)",
        ]

    def bump(self, c: Cursor, department: str | None, moment: str | None, count: str) -> None:
        if not department or not moment:
            return
        assert count in KPI_COUNTS
        self.execute(
            c,
            f"INSERT INTO {{department_kpis}} AS k (department, day, {count}) "
            "VALUES (:department, :day, 1) "
            f"ON CONFLICT (department, day) DO UPDATE SET {count} = k.{count} + 1",
            {"department": department, "day": self.local_day(moment)},
        )

    def project(self, c: Cursor, event: Any, before: State | None, after: State) -> None:
        kind = event_kind(event)
        at = after["updated_at"]
        assignments = after["assignments"]
        for data in new_assignments(event):
            if data["role"] in (AssignmentRole.LEAD.value, AssignmentRole.ASSISTING.value):
                self.bump(c, data["department"], at, "dispatched")
        if kind == "SignedFor":
            a = assignments[event.assignment_id]
            self.bump(c, a["department"], a["dispatched_at"], "signed_for")
            if _late(at, a["sign_for_deadline"]):
                self.bump(c, a["department"], at, "overdue")
            else:
                self.bump(c, a["department"], a["dispatched_at"], "signed_for_in_time")
        elif kind == "Returned":
            self.bump(c, assignments[event.assignment_id]["department"], at, "returned")
        elif kind == "Resolved":
            a = assignments[event.assignment_id]
            self.bump(c, a["department"], at, "resolved")
            late = _late(at, a["resolve_deadline"])
            self.bump(c, a["department"], at, "overdue" if late else "resolved_in_time")
        elif kind == "PartCompleted":
            a = assignments[event.assignment_id]
            if _late(at, a["resolve_deadline"]):
                self.bump(c, a["department"], at, "overdue")
        elif kind == "ReportedIn":
            a = assignments[event.assignment_id]
            if _late(at, a["report_in_deadline"]):
                self.bump(c, a["department"], at, "overdue")
        elif kind == "Escalated":
            department = event.department or (lead_department(before) if before else None)
            self.bump(c, department, at, "escalated")
        elif kind == "FeedbackRecorded" and event.contacted and before is not None:
            department = before["resolved_by"]
            self.bump(c, department, at, "feedback_received")
            if event.resolved:
                self.bump(c, department, at, "resolved_by_citizen")
            if event.satisfaction in ("satisfied", "basically_satisfied", "unsatisfied"):
                self.bump(c, department, at, event.satisfaction)


# ------------------------------------------------------------------------- hotspots


class HotspotsView(ReadModelView):
    """hotspots: classified grievances by category × place × local week of receipt.

    Merged duplicates still count: repeated complaints are what this model is for.
    """

    projection_name: ClassVar[str] = "hotspots"
    tables: ClassVar[tuple[str, ...]] = ("hotspots",)

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {hotspots} ("
            "category TEXT NOT NULL, district TEXT NOT NULL, street TEXT NOT NULL, "
            "community TEXT NOT NULL, week TEXT NOT NULL, grievances INTEGER NOT NULL, "
            "PRIMARY KEY (category, district, street, community, week))",
            "CREATE INDEX IF NOT EXISTS hotspots_week ON {hotspots} (week)",
        ]

    def _key(self, state: State, category: str) -> dict[str, Any]:
        location = state["location"]
        return {
            "category": category,
            "district": location.get("district") or "",
            "street": location.get("street") or "",
            "community": location.get("community") or "",
            "week": self.local_week(state["received_at"]),
        }

    def project(self, c: Cursor, event: Any, before: State | None, after: State) -> None:
        old = before["category"] if before else None
        new = after["category"]
        if old == new:
            return
        where = (
            "category = :category AND district = :district AND street = :street "
            "AND community = :community AND week = :week"
        )
        if old is not None:
            key = self._key(after, old)
            self.execute(
                c, f"UPDATE {{hotspots}} SET grievances = grievances - 1 WHERE {where}", key
            )
            self.execute(c, f"DELETE FROM {{hotspots}} WHERE {where} AND grievances <= 0", key)
        if new is not None:
            self.execute(
                c,
                "INSERT INTO {hotspots} AS h "
                "(category, district, street, community, week, grievances) "
                "VALUES (:category, :district, :street, :community, :week, 1) "
                "ON CONFLICT (category, district, street, community, week) "
                "DO UPDATE SET grievances = h.grievances + 1",
                self._key(after, new),
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

    projection_name: ClassVar[str] = "callback_queue"
    tables: ClassVar[tuple[str, ...]] = ("callback_queue",)

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {callback_queue} ("
            "grievance_id TEXT PRIMARY KEY, window_ends_at TEXT NOT NULL, "
            "department TEXT, item TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS callback_queue_due "
            "ON {callback_queue} (window_ends_at, grievance_id)",
        ]

    def project(self, c: Cursor, event: Any, before: State | None, after: State) -> None:
        if after["status"] == Status.RESOLVED.value and after["feedback_deadline"]:
            upsert(
                self,
                c,
                "callback_queue",
                ("grievance_id",),
                {
                    "grievance_id": after["id"],
                    "window_ends_at": after["feedback_deadline"],
                    "department": after["resolved_by"],
                    "item": dumps(callback_item(after)),
                },
            )
        elif before is not None and before["status"] == Status.RESOLVED.value:
            self.execute(
                c, "DELETE FROM {callback_queue} WHERE grievance_id = :id", {"id": after["id"]}
            )


OPEN_ASSIGNMENT_STATE_VALUES = tuple(sorted(OPEN_STATES))
