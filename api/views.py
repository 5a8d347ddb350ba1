"""Turning aggregates, events and read-model rows into response schemas, masking as needed."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from fastapi.encoders import jsonable_encoder

from api.i18n import Lang, status_label
from api.schemas import (
    AssignmentPublic,
    AuditEvent,
    CommandAccepted,
    DeadlinePublic,
    GrievancePublic,
    LocationPublic,
)
from domain.application import CommandResult
from domain.grievance import STATUS_ACTIONS, Assignment, Grievance
from domain.model import AssignmentRole, AssignmentState, Status, mask_name, mask_phone

_WORK = {AssignmentRole.LEAD, AssignmentRole.ASSISTING}
# What a department may do to its assignment, by the assignment's state and role
# (the same rules as the aggregate's guards; the grievance's status filters further).
ASSIGNMENT_ACTIONS: tuple[tuple[str, frozenset[AssignmentState], set[AssignmentRole]], ...] = (
    ("sign_for", frozenset({AssignmentState.DISPATCHED}), _WORK),
    ("return", frozenset({AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR}), _WORK),
    ("report_progress", frozenset({AssignmentState.SIGNED_FOR}), _WORK),
    (
        "request_extension",
        frozenset({AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR}),
        _WORK,
    ),
    ("complete_part", frozenset({AssignmentState.SIGNED_FOR}), {AssignmentRole.ASSISTING}),
    ("resolve", frozenset({AssignmentState.SIGNED_FOR}), {AssignmentRole.LEAD}),
    ("report_in", frozenset({AssignmentState.DISPATCHED}), {AssignmentRole.SUMMONED}),
)


def assignment_actions(assignment: Assignment, status: Status) -> list[str]:
    """The commands its department may send for this assignment now."""
    return sorted(
        action
        for action, states, roles in ASSIGNMENT_ACTIONS
        if assignment.state in states
        and assignment.role in roles
        and action in STATUS_ACTIONS[status]
    )


PERSONAL_FIELDS = {"citizen_name": mask_name, "citizen_phone": mask_phone}
_EVENT_META = ("principal", "role", "at", "command_id", "reason", "chain_hash")


def accepted(result: CommandResult) -> CommandAccepted:
    extra = result.extra
    return CommandAccepted(
        id=result.grievance_id,
        number=result.number,
        status=result.status,
        version=result.version,
        replayed=result.replayed,
        assignments=extra.get("assignments"),
        assignment_id=extra.get("assignment_id"),
        into=extra.get("into"),
        into_number=extra.get("into_number"),
    )


def grievance_public(g: Grievance, *, unmasked: bool, lang: Lang) -> GrievancePublic:
    lead = g.lead_assignment()
    return GrievancePublic(
        id=g.id,
        number=g.number,
        version=g.version,
        status=g.status.value,
        status_label=status_label(g.status.value, lang),
        channel=g.channel,
        citizen_name=g.citizen_name if unmasked else mask_name(g.citizen_name) or "",
        citizen_phone=g.citizen_phone if unmasked else mask_phone(g.citizen_phone) or "",
        text=g.text,
        location=LocationPublic(**g.location),
        occurred_at=g.occurred_at,
        received_at=g.received_at,
        category=g.category,
        urgency=g.urgency,
        sla_class=g.sla_class,
        lead_department=lead.department if lead else None,
        escalation_level=g.escalation_level,
        reopen_count=g.reopen_count,
        assignments=[
            AssignmentPublic(
                id=a.id,
                department=a.department,
                role=a.role.value,
                round=a.round,
                state=a.state.value,
                dispatched_at=a.dispatched_at,
                sign_for_deadline=a.sign_for_deadline,
                resolve_deadline=a.resolve_deadline,
                report_in_deadline=a.report_in_deadline,
                redispatch_deadline=a.redispatch_deadline,
                signed_for_at=a.signed_for_at,
                finished_at=a.finished_at,
                return_reason=a.return_reason,
                extension_requested=a.extension_requested,
                extensions_granted=a.extensions_granted,
                escalation_level=a.escalation_level,
                account=a.account,
                allowed_actions=assignment_actions(a, g.status),
            )
            for a in g.assignments.values()
        ],
        open_deadlines=[
            DeadlinePublic(
                kind=d.kind.value,
                due=d.due,
                assignment_id=d.assignment_id,
                department=d.department,
            )
            for d in g.open_deadlines()
        ],
        feedback_deadline=g.feedback_deadline,
        resolved_at=g.resolved_at,
        resolution=g.resolution,
        outcome=g.outcome.value if g.outcome else None,
        closed_at=g.closed_at,
        merged_into=g.merged_into,
        duplicates=list(g.duplicates),
        allowed_actions=g.allowed_actions(),
    )


def mask_row(row: dict[str, Any]) -> dict[str, Any]:
    """Mask personal fields wherever a read-model row or event carries them."""
    out = dict(row)
    for key, masker in PERSONAL_FIELDS.items():
        if isinstance(out.get(key), str):
            out[key] = masker(out[key])
    return out


def audit_event(event: Any, *, unmasked: bool) -> AuditEvent:
    state = {k: v for k, v in vars(event).items() if not k.startswith("_")}
    version = state.pop("originator_version")
    state.pop("originator_id", None)
    timestamp = state.pop("timestamp")
    meta = {key: state.pop(key, None) for key in _EVENT_META}
    data = state if unmasked else mask_row(state)
    return AuditEvent(
        version=version,
        type=type(event).__qualname__.rsplit(".", 1)[-1],
        timestamp=timestamp,
        data=jsonable_encoder(data),
        **meta,
    )


def as_row(item: Any) -> dict[str, Any]:
    """A read-model item (mapping, dataclass or pydantic model) as a plain dict."""
    if isinstance(item, Mapping):
        return dict(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        result: dict[str, Any] = dump()
        return result
    return dict(vars(item))
