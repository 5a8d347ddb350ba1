"""A grievance as plain, JSON-able data, folded from its events.

Every projection keeps this state per grievance (in its own table, so each one can be
rebuilt alone) and derives its rows from the state before and after each event. The
rules mirror ``domain.grievance.Grievance``; only what read models need is kept, and
never a citizen's full name or phone number (``mask_name`` / ``mask_phone``).
"""

from __future__ import annotations

from typing import Any

from domain.grievance import DISPATCH_CENTRE
from domain.model import (
    FINAL_STATUSES,
    OPEN_ASSIGNMENT_STATES,
    AssignmentRole,
    AssignmentState,
    DeadlineKind,
    Status,
    mask_name,
    mask_phone,
)
from projections.db import iso

State = dict[str, Any]

OPEN_STATES = frozenset(s.value for s in OPEN_ASSIGNMENT_STATES)
FINAL = frozenset(s.value for s in FINAL_STATUSES)
GONE = frozenset({AssignmentState.SUPERSEDED.value, AssignmentState.CANCELLED.value})


def event_kind(event: Any) -> str:
    """``Received``, ``Dispatched``...: the event class's own name."""
    return type(event).__qualname__.rpartition(".")[2]


def is_grievance_event(event: Any) -> bool:
    return type(event).__qualname__.startswith("Grievance.")


def _assignment(data: dict[str, Any], at: str | None) -> dict[str, Any]:
    return {
        "id": data["assignment_id"],
        "department": data["department"],
        "role": data["role"],
        "round": int(data["round"]),
        "state": AssignmentState.DISPATCHED.value,
        "dispatched_at": at,
        "sign_for_deadline": iso(data.get("sign_for_deadline")),
        "resolve_deadline": iso(data.get("resolve_deadline")),
        "report_in_deadline": iso(data.get("report_in_deadline")),
        "redispatch_deadline": None,
        "signed_for_at": None,
        "finished_at": None,
        "escalation_level": 0,
        "urges": 0,
        "extension_requested": None,
    }


def _copy(state: State) -> State:
    """A copy deep enough for ``fold``: it replaces top-level values and edits assignments
    (never the location, feedback or other nested values in place)."""
    copied = dict(state)
    copied["assignments"] = {key: dict(a) for key, a in state["assignments"].items()}
    copied["duplicates"] = list(state["duplicates"])
    return copied


def new_assignments(event: Any) -> list[dict[str, Any]]:
    """The assignments an event creates (Dispatched, Arbitrated, Reopened, Summoned)."""
    kind = event_kind(event)
    if kind in ("Dispatched", "Reopened", "Summoned"):
        return list(event.assignments)
    if kind == "Arbitrated":
        return [event.assignment]
    return []


def fold(before: State | None, event: Any) -> State:
    """The state after ``event``; ``before`` is left untouched."""
    kind = event_kind(event)
    at = iso(getattr(event, "at", None)) or iso(event.timestamp)
    if kind == "Received":
        location = dict(event.location)
        state: State = {
            "id": str(event.originator_id),
            "number": event.number,
            "channel": event.channel,
            "citizen_name": mask_name(event.citizen_name),
            "citizen_phone": mask_phone(event.citizen_phone),
            "location": {
                key: location.get(key)
                for key in ("district", "street", "community", "grid", "address")
            },
            "received_at": at,
            "status": Status.RECEIVED.value,
            "category": None,
            "urgency": None,
            "round": 0,
            "reopen_count": 0,
            "escalation_level": 0,
            "assignments": {},
            "feedback_deadline": None,
            "feedback_attempts": 0,
            "last_feedback": None,
            "resolved_at": None,
            "resolved_by": None,
            "closed_at": None,
            "outcome": None,
            "merged_into": None,
            "merged_into_number": None,
            "duplicates": [],
            "version": event.originator_version,
            "updated_at": at,
        }
        return state
    if before is None:
        raise ValueError(f"{kind} of {event.originator_id} arrived before its Received event")
    state = _copy(before)
    state["version"] = event.originator_version
    state["updated_at"] = at
    assignments: dict[str, dict[str, Any]] = state["assignments"]

    def target() -> dict[str, Any]:
        return assignments[event.assignment_id]

    if kind == "Classified":
        state["category"] = event.category
        state["urgency"] = event.urgency
        state["status"] = Status.CLASSIFIED.value
    elif kind == "Rejected":
        state["status"] = Status.REJECTED.value
        state["closed_at"] = at
    elif kind == "Dispatched":
        for data in event.assignments:
            assignments[data["assignment_id"]] = _assignment(data, at)
        state["status"] = Status.DISPATCHED.value
    elif kind == "SignedFor":
        a = target()
        a["state"] = AssignmentState.SIGNED_FOR.value
        a["signed_for_at"] = at
        if a["role"] == AssignmentRole.LEAD.value and state["status"] == Status.DISPATCHED.value:
            state["status"] = Status.IN_PROGRESS.value
    elif kind == "Returned":
        a = target()
        a["state"] = AssignmentState.RETURNED.value
        a["redispatch_deadline"] = iso(event.redispatch_deadline)
        a["finished_at"] = at
        if a["role"] == AssignmentRole.LEAD.value:
            state["status"] = Status.RETURNED.value
    elif kind == "Arbitrated":
        target()["state"] = AssignmentState.SUPERSEDED.value
        new = event.assignment
        assignments[new["assignment_id"]] = _assignment(new, at)
        if new["role"] == AssignmentRole.LEAD.value:
            state["status"] = Status.DISPATCHED.value
    elif kind == "ExtensionRequested":
        target()["extension_requested"] = iso(event.requested_deadline)
    elif kind == "ExtensionGranted":
        a = target()
        a["resolve_deadline"] = iso(event.new_deadline)
        a["extension_requested"] = None
    elif kind == "ExtensionDenied":
        target()["extension_requested"] = None
    elif kind == "PartCompleted":
        a = target()
        a["state"] = AssignmentState.COMPLETED.value
        a["finished_at"] = at
    elif kind == "Resolved":
        a = target()
        a["state"] = AssignmentState.RESOLVED.value
        a["finished_at"] = at
        for other in assignments.values():
            if (
                other["round"] == state["round"]
                and other["role"] == AssignmentRole.SUMMONED.value
                and other["state"] in OPEN_STATES
            ):
                other["state"] = AssignmentState.SUPERSEDED.value
        state["status"] = Status.RESOLVED.value
        state["resolved_at"] = at
        state["resolved_by"] = a["department"]
        state["feedback_deadline"] = iso(event.feedback_deadline)
        state["feedback_attempts"] = 0
    elif kind == "Summoned":
        for data in event.assignments:
            assignments[data["assignment_id"]] = _assignment(data, at)
    elif kind == "ReportedIn":
        a = target()
        a["state"] = AssignmentState.REPORTED_IN.value
        a["finished_at"] = at
    elif kind == "Urged":
        if event.assignment_id is not None and event.assignment_id in assignments:
            target()["urges"] += 1
    elif kind == "Escalated":
        state["escalation_level"] = max(state["escalation_level"], int(event.level))
        if event.assignment_id is not None and event.assignment_id in assignments:
            a = target()
            a["escalation_level"] = max(a["escalation_level"], int(event.level))
    elif kind == "FeedbackRecorded":
        state["last_feedback"] = {
            "at": at,
            "contacted": bool(event.contacted),
            "resolved": event.resolved,
            "satisfaction": event.satisfaction,
        }
        if not event.contacted:
            state["feedback_attempts"] += 1
    elif kind == "Reopened":
        state["reopen_count"] = int(event.reopen_count)
        state["round"] = int(event.reopen_count)
        for data in event.assignments:
            assignments[data["assignment_id"]] = _assignment(data, at)
        state["status"] = Status.DISPATCHED.value
        state["feedback_deadline"] = None
        state["resolved_at"] = None
    elif kind == "Closed":
        state["status"] = Status.CLOSED.value
        state["outcome"] = event.outcome
        state["closed_at"] = at
        state["feedback_deadline"] = None
    elif kind in ("Merged", "Withdrawn"):
        for a in assignments.values():
            if a["state"] in OPEN_STATES:
                a["state"] = AssignmentState.CANCELLED.value
                a["extension_requested"] = None
        if kind == "Merged":
            state["status"] = Status.MERGED.value
            state["merged_into"] = event.into
            state["merged_into_number"] = event.into_number
        else:
            state["status"] = Status.WITHDRAWN.value
        state["closed_at"] = at
    elif kind == "DuplicateLinked":
        state["duplicates"].append(event.duplicate_id)
    # ProgressReported and any event added later change nothing a read model shows.
    return state


def open_deadlines(state: State) -> list[dict[str, Any]]:
    """Every deadline someone still has to meet (the rules of ``Grievance.open_deadlines``)."""
    found: list[dict[str, Any]] = []
    if state["status"] in FINAL:
        return found

    def add(kind: DeadlineKind, due: str, a: dict[str, Any] | None, owner: str | None) -> None:
        found.append(
            {
                "kind": kind.value,
                "due": due,
                "assignment_id": a["id"] if a else None,
                "department": owner,
                "escalation_level": a["escalation_level"] if a else state["escalation_level"],
            }
        )

    for a in state["assignments"].values():
        summoned = a["role"] == AssignmentRole.SUMMONED.value
        if a["state"] == AssignmentState.DISPATCHED.value:
            if summoned:
                if a["report_in_deadline"]:
                    add(DeadlineKind.REPORT_IN, a["report_in_deadline"], a, a["department"])
                continue
            if a["sign_for_deadline"]:
                add(DeadlineKind.SIGN_FOR, a["sign_for_deadline"], a, a["department"])
        if (
            a["state"] in (AssignmentState.DISPATCHED.value, AssignmentState.SIGNED_FOR.value)
            and a["resolve_deadline"]
            and not summoned
        ):
            add(DeadlineKind.RESOLVE, a["resolve_deadline"], a, a["department"])
        if a["state"] == AssignmentState.RETURNED.value and a["redispatch_deadline"]:
            add(DeadlineKind.REDISPATCH, a["redispatch_deadline"], a, DISPATCH_CENTRE)
    if state["status"] == Status.RESOLVED.value and state["feedback_deadline"]:
        add(DeadlineKind.FEEDBACK, state["feedback_deadline"], None, DISPATCH_CENTRE)
    return sorted(found, key=lambda d: (d["due"], d["kind"], d["assignment_id"] or ""))


def current_departments(state: State, role: AssignmentRole) -> list[str]:
    """Departments in this role in the current round, still in play (not superseded)."""
    return [
        a["department"]
        for a in state["assignments"].values()
        if a["round"] == state["round"] and a["role"] == role.value and a["state"] not in GONE
    ]


def lead_department(state: State) -> str | None:
    leads = current_departments(state, AssignmentRole.LEAD)
    return leads[-1] if leads else None
