"""One grievance as the read models see it: the domain's own aggregate, and its rows' data.

Nothing here decides what an event does to a grievance. ``fold`` hands each event to
the aggregate with the event's own ``mutate``, as eventsourcing's ``Repository`` does
when it loads an aggregate, so the write side's event bodies are the only state machine.
This module only maps the aggregate to plain, JSON-able data (``read_state``) from which
every view derives its rows: what the aggregate says (status, departments, open
deadlines ...), with its instants as fixed-width UTC text (``projections.db.iso``) and
the citizen's name and phone number masked. Between batches the aggregates are kept in
memory, once for all views (``projections.views.GrievanceStates``), and folded again
from the event store when memory does not have them; no copy is stored with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.domain import CanInitAggregate

from domain.grievance import Grievance
from domain.model import AssignmentRole, AssignmentState, Status, mask_name, mask_phone
from projections.db import iso

State = dict[str, Any]

LOCATION_KEYS = ("district", "street", "community", "grid", "address")


def event_kind(event: Any) -> str:
    """``Received``, ``Dispatched``...: the event class's own name."""
    return type(event).__qualname__.rpartition(".")[2]


def event_at(event: Any) -> datetime:
    """The business instant of an event (its recording instant when it has none)."""
    at: datetime = getattr(event, "at", None) or event.timestamp
    return at


def is_grievance_event(event: Any) -> bool:
    return isinstance(event, Grievance.Event)


@dataclass
class Folded:
    """A grievance's aggregate, plus the two things its rows show that it does not keep:
    the business instant of its last event and, once merged, its primary's case number."""

    grievance: Grievance
    key: str  # the grievance's id as text (what the rows are keyed by), formatted once
    updated_at: str
    merged_into_number: str | None = None


def fold(folded: Folded | None, event: Any) -> Folded:
    """``folded`` advanced by one event (in place: its aggregate is mutated).

    ``mutate`` refuses an event of another grievance or out of sequence."""
    at = iso(event_at(event))
    assert at is not None
    if folded is None:
        if not isinstance(event, CanInitAggregate):
            raise ValueError(
                f"{event_kind(event)} of {event.originator_id} arrived before its Received event"
            )
        grievance = event.mutate(None)
        assert isinstance(grievance, Grievance)
        return Folded(grievance, str(grievance.id), at)
    folded.grievance = event.mutate(folded.grievance)
    folded.updated_at = at
    if isinstance(event, Grievance.Merged):
        folded.merged_into_number = event.into_number
    return folded


# ------------------------------------------------------------------ rows' data


def read_state(folded: Folded) -> State:
    """The grievance as every read model shows it, taken from the aggregate."""
    g = folded.grievance
    last = g.feedback[-1] if g.feedback else None
    lead = g.lead_department
    return {
        "id": folded.key,
        "number": g.number,
        "channel": g.channel,
        "citizen_name": mask_name(g.citizen_name),
        "citizen_phone": mask_phone(g.citizen_phone),
        "location": {key: g.location.get(key) for key in LOCATION_KEYS},
        "received_at": iso(g.received_at),
        "status": g.status.value,
        "category": g.category,
        "urgency": g.urgency,
        "reopen_count": g.reopen_count,
        "escalation_level": g.escalation_level,
        "assignments": {a.id: _assignment(a) for a in g.assignments.values()},
        "lead_department": lead,
        "assisting_departments": g.assisting_departments,
        "summoned_departments": [
            a.department
            for a in g.current_assignments(AssignmentRole.SUMMONED)
            if a.state not in (AssignmentState.SUPERSEDED, AssignmentState.CANCELLED)
        ],
        "deadlines": [
            {
                "kind": d.kind.value,
                "due": iso(d.due),
                "assignment_id": d.assignment_id,
                "department": d.department,
                "escalation_level": g.assignments[d.assignment_id].escalation_level
                if d.assignment_id
                else g.escalation_level,
            }
            for d in g.open_deadlines()
        ],
        "feedback_deadline": iso(g.feedback_deadline),
        # Callback attempts that did not reach the citizen since this round's 办结.
        "feedback_attempts": sum(1 for f in g.feedback if f.round == g.round and not f.contacted),
        "last_feedback": None
        if last is None
        else {
            "at": iso(last.at),
            "contacted": last.contacted,
            "resolved": last.resolved,
            "satisfaction": last.satisfaction.value if last.satisfaction else None,
        },
        "resolved_at": iso(g.resolved_at),
        # While resolved, the lead department still in play is the one that resolved it.
        "resolved_by": lead if g.status is Status.RESOLVED else None,
        "closed_at": iso(g.closed_at),
        "outcome": g.outcome.value if g.outcome else None,
        "merged_into": g.merged_into,
        "merged_into_number": folded.merged_into_number,
        "duplicates": len(g.duplicates),
        "version": g.version,
        "updated_at": folded.updated_at,
    }


def _assignment(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "department": a.department,
        "role": a.role.value,
        "round": a.round,
        "state": a.state.value,
        "dispatched_at": iso(a.dispatched_at),
        "sign_for_deadline": iso(a.sign_for_deadline),
        "resolve_deadline": iso(a.resolve_deadline),
        "report_in_deadline": iso(a.report_in_deadline),
        "redispatch_deadline": iso(a.redispatch_deadline),
        "signed_for_at": iso(a.signed_for_at),
        "returned_at": iso(a.returned_at),
        "finished_at": iso(a.finished_at),
        "escalation_level": a.escalation_level,
        "urges": a.urges,
        "extension_requested": iso(a.extension_requested),
    }
