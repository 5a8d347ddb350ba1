"""Deadlines: which are open, which are overdue, and chasing them (催办, 督办).

The functions taking ``g: Grievance`` first are bound as the aggregate's methods in
``domain.grievance``. The ladder's instants (when to urge, when to escalate) come from
the SLA policy (``domain.policies.sla``); this module answers what is open now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.errors import ValidationError
from domain.model import (
    ESCALATION_LEVELS,
    Action,
    AssignmentRole,
    AssignmentState,
    Deadline,
    DeadlineKind,
    Reason,
    Stamp,
    Status,
    required_reason,
    utc,
)

if TYPE_CHECKING:  # pragma: no cover
    from domain.grievance import Grievance
    from domain.policies.sla import SlaPolicy

DISPATCH_CENTRE = "dispatch-centre"


@dataclass
class EscalationRecord:
    at: datetime
    level: int
    kind: str | None
    assignment_id: str | None
    department: str | None
    reason: str | None
    reason_code: str | None = None
    reason_params: dict[str, Any] | None = None


def open_deadlines(g: Grievance) -> list[Deadline]:
    """Every deadline someone still has to meet, whoever owns it."""
    deadlines: list[Deadline] = []
    if g.is_final:
        return deadlines
    for a in g.assignments.values():
        summoned = a.role is AssignmentRole.SUMMONED
        if a.state is AssignmentState.DISPATCHED:
            if summoned and a.report_in_deadline is not None:
                deadlines.append(
                    Deadline(DeadlineKind.REPORT_IN, a.report_in_deadline, a.id, a.department)
                )
            if not summoned and a.sign_for_deadline is not None:
                deadlines.append(
                    Deadline(DeadlineKind.SIGN_FOR, a.sign_for_deadline, a.id, a.department)
                )
        working = a.state in (AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR)
        if working and not summoned and a.resolve_deadline is not None:
            deadlines.append(Deadline(DeadlineKind.RESOLVE, a.resolve_deadline, a.id, a.department))
        if a.state is AssignmentState.RETURNED and a.redispatch_deadline is not None:
            deadlines.append(
                Deadline(DeadlineKind.REDISPATCH, a.redispatch_deadline, a.id, DISPATCH_CENTRE)
            )
    if g.status is Status.RESOLVED and g.feedback_deadline is not None:
        deadlines.append(
            Deadline(DeadlineKind.FEEDBACK, g.feedback_deadline, None, DISPATCH_CENTRE)
        )
    return sorted(deadlines, key=lambda d: (d.due, d.kind.value, d.assignment_id or ""))


def due_under(sla: SlaPolicy, kind: DeadlineKind, start: datetime, g: Grievance) -> datetime:
    """When a deadline of ``kind`` that started at ``start`` falls due under ``sla``: what
    the command handlers record (sign-for and resolve from the dispatch, with the
    grievance's SLA class and urgency; report-in from the summons; re-dispatch from the
    return; feedback from the 办结)."""
    if kind in (DeadlineKind.SIGN_FOR, DeadlineKind.RESOLVE):
        if g.sla_class is None or g.urgency is None:
            raise ValidationError("required", field="sla_class")
        windows = sla.assignment_deadlines(g.sla_class, g.urgency, start)
        return windows.sign_for if kind is DeadlineKind.SIGN_FOR else windows.resolve
    if kind is DeadlineKind.REPORT_IN:
        return sla.report_in_deadline(start)
    if kind is DeadlineKind.REDISPATCH:
        return sla.redispatch_deadline(start)
    return sla.feedback_deadline(start)


def find_open_deadline(
    g: Grievance, kind: DeadlineKind, assignment_id: str | None, due: datetime | None = None
) -> Deadline | None:
    """The open deadline of this kind and assignment (and this due instant, if given)."""
    for deadline in open_deadlines(g):
        if (
            deadline.kind is kind
            and deadline.assignment_id == assignment_id
            and (due is None or deadline.due == utc(due))
        ):
            return deadline
    return None


def overdue(g: Grievance, at: datetime) -> list[Deadline]:
    return [d for d in open_deadlines(g) if d.due < utc(at)]


def _open_deadline(
    g: Grievance, action: Action, kind: DeadlineKind, assignment_id: str | None
) -> Deadline:
    deadline = find_open_deadline(g, kind, assignment_id)
    if deadline is None:
        raise g.refusal(action, "no-open-deadline", kind=kind, assignment_id=assignment_id)
    return deadline


def urge(
    g: Grievance, stamp: Stamp, kind: DeadlineKind, assignment_id: str | None, reason: Reason
) -> None:
    """催办: remind whoever owns an open deadline."""
    g.ensure_allowed(Action.URGE, stamp.actor)
    deadline = _open_deadline(g, Action.URGE, kind, assignment_id)
    g.trigger_event(
        g.Urged,
        kind=kind.value,
        assignment_id=assignment_id,
        department=deadline.department,
        deadline=deadline.due,
        **g._meta(stamp, reason),
    )


def escalate(
    g: Grievance,
    stamp: Stamp,
    level: int,
    reason: Reason,
    kind: DeadlineKind | None,
    assignment_id: str | None,
) -> None:
    """督办 / 提级: level 1 street leader, 2 district supervision, 3 兜底办.

    A person gives a reason's text; the workflows give its code and params.
    """
    g.ensure_allowed(Action.ESCALATE, stamp.actor)
    if level not in ESCALATION_LEVELS:
        raise ValidationError(
            "invalid-escalation-level", field="level", value=level, levels=ESCALATION_LEVELS
        )
    if not reason.code:
        required_reason(reason.text)
    department: str | None = None
    due: datetime | None = None
    if kind is not None:
        deadline = _open_deadline(g, Action.ESCALATE, kind, assignment_id)
        department, due = deadline.department, deadline.due
    elif assignment_id is not None:
        department = g.assignment(assignment_id).department
    g.trigger_event(
        g.Escalated,
        level=level,
        kind=kind.value if kind else None,
        assignment_id=assignment_id,
        department=department,
        deadline=due,
        **g._meta(stamp, reason),
    )
