"""One grievance as the read models see it: the domain's own aggregate, and its rows' data.

Nothing here decides what an event does to a grievance. ``fold`` hands each event to
the aggregate with the event's own ``mutate``, as eventsourcing's ``Repository`` does
when it loads an aggregate, so the write side's event bodies are the only state machine.
This module only

- keeps the aggregate between batches (``dump`` / ``load``): a JSON snapshot of its
  attributes, without the citizen's full name, phone number, text or comments and
  without the idempotency records (no read model needs them);
- maps the aggregate to plain, JSON-able data (``read_state``) from which every view
  derives its rows: what the aggregate says (status, departments, open deadlines ...),
  with its instants as fixed-width UTC text (``projections.db.iso``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanInitAggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain.grievance import Grievance
from domain.model import AssignmentRole, AssignmentState, Status, mask_name, mask_phone
from projections.db import iso as _iso_text

# The same few instants are mapped at every event of a grievance: format each once.
iso = lru_cache(maxsize=1 << 16)(_iso_text)

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
        return Folded(grievance, at)
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
        "id": str(g.id),
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


# --------------------------------------------------------- snapshot between batches

# Change it when the aggregate's attributes change: views then rebuild from the log.
FORMAT = 1
_TAG = "~"
# Kept by the aggregate for the write side only: idempotency and the pending-events buffer.
_NOT_KEPT = frozenset({"applied_commands", "_pending_events"})


class StaleStateError(RuntimeError):
    """The stored state was written by an older closeloop: rebuild the projection."""


def dump(folded: Folded) -> str:
    """The folded grievance as JSON, without the citizen's personal data."""
    g = folded.grievance
    attributes = {k: v for k, v in vars(g).items() if k not in _NOT_KEPT}
    attributes["citizen_name"] = mask_name(g.citizen_name)
    attributes["citizen_phone"] = mask_phone(g.citizen_phone)
    attributes["text"] = ""
    attributes["feedback"] = [replace(f, comment="") for f in g.feedback]
    return json.dumps(
        {
            "format": FORMAT,
            "aggregate": _encode(attributes),
            "updated_at": folded.updated_at,
            "merged_into_number": folded.merged_into_number,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def is_current(text: str) -> bool:
    """Whether a stored state is in this format (older ones need a rebuild)."""
    return text.startswith(f'{{"format":{FORMAT},')


def load(text: str) -> Folded:
    if not is_current(text):
        raise StaleStateError(
            "a read model's state was written by an older closeloop: "
            "rebuild it (closeloop projections rebuild)"
        )
    data = json.loads(text, object_hook=_decode)
    grievance = object.__new__(Grievance)
    grievance.__dict__.update(data["aggregate"])
    grievance.__dict__.update(applied_commands={}, _pending_events=[])
    return Folded(grievance, data["updated_at"], data["merged_into_number"])


_PLAIN = frozenset({str, int, float, bool, type(None)})
# Per class met in an aggregate: its topic and, for a dataclass, its field names.
_CLASSES: dict[type, tuple[str, tuple[str, ...] | None]] = {}


def _class_info(kind: type) -> tuple[str, tuple[str, ...] | None]:
    info = _CLASSES.get(kind)
    if info is None:
        names = tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None
        info = _CLASSES[kind] = (get_topic(kind), names)
    return info


def _encode(value: Any) -> Any:
    """JSON for the aggregate's attribute values, tagged where JSON alone would lose the
    type (enums are ``str`` subclasses, dataclasses, instants, ids)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is datetime:
        return {_TAG: "datetime", "v": value.isoformat()}
    if kind is dict:
        if _TAG in value:
            raise ValueError(f"a key {_TAG!r} cannot be stored in a read model's state")
        return {str(k): _encode(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_encode(v) for v in value]
    if kind is UUID:
        return {_TAG: "uuid", "v": value.hex}
    if isinstance(value, Enum):
        return {_TAG: "enum", "t": _class_info(kind)[0], "v": value.value}
    if is_dataclass(value) and not isinstance(value, type):
        topic, names = _class_info(kind)
        assert names is not None
        encoded = {name: _encode(getattr(value, name)) for name in names}
        return {_TAG: "dataclass", "t": topic, "v": encoded}
    raise TypeError(f"cannot keep a {kind.__name__} in a read model's state")


def _decode(data: dict[str, Any]) -> Any:
    tag = data.get(_TAG)
    if tag is None:
        return data
    if tag == "datetime":
        return datetime.fromisoformat(data["v"])
    if tag == "enum":
        return resolve_topic(data["t"])(data["v"])
    if tag == "dataclass":
        return resolve_topic(data["t"])(**data["v"])
    if tag == "uuid":
        return UUID(data["v"])
    raise ValueError(f"unknown tag {tag!r} in a read model's state")
