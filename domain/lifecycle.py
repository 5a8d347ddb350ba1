"""The grievance's own life: 梳理 and 不予受理 at intake, 回访 and 归档 at the end,
合并 and 撤件 in between.

The functions taking ``g: Grievance`` first are bound as the aggregate's methods in
``domain.grievance``: each checks its rule, then triggers its events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.assignments import NewAssignment, assignment_payloads
from domain.errors import ValidationError
from domain.model import (
    Action,
    Actor,
    AssignmentRole,
    Outcome,
    ReasonCode,
    Satisfaction,
)

if TYPE_CHECKING:  # pragma: no cover
    from domain.grievance import Grievance

A = Action
REOPEN_ESCALATION_LEVEL = 3  # 兜底办: a grievance reopened too often goes to the leaders


@dataclass
class FeedbackRecord:
    at: datetime
    round: int
    contacted: bool
    resolved: bool | None
    satisfaction: Satisfaction | None
    comment: str


def classify(
    g: Grievance,
    actor: Actor,
    at: datetime,
    command_id: str,
    category: str,
    urgency: str,
    sla_class: str,
    reason: str | None = None,
) -> None:
    """梳理: set the category leaf and urgency (again, until dispatched)."""
    g.ensure_allowed(A.CLASSIFY, actor)
    g.trigger_event(
        g.Classified,
        category=category,
        urgency=urgency,
        sla_class=sla_class,
        **g._meta(actor, at, command_id, reason),
    )


def reject(g: Grievance, actor: Actor, at: datetime, command_id: str, reason: str) -> None:
    """不予受理: out of scope at intake."""
    g.ensure_allowed(A.REJECT, actor)
    if not reason:
        raise ValidationError("required", field="reason")
    g.trigger_event(g.Rejected, **g._meta(actor, at, command_id, reason))


def record_feedback(
    g: Grievance,
    actor: Actor,
    at: datetime,
    command_id: str,
    contacted: bool,
    resolved: bool | None,
    satisfaction: Satisfaction | None,
    comment: str,
    reopen: list[NewAssignment],
    reopen_escalation_threshold: int,
) -> None:
    """回访: record the citizen's answer; close, or reopen (重办) on dissatisfaction.

    ``reopen`` carries the fresh assignments (same departments, new deadlines) used
    if the answer reopens the grievance.
    """
    g.ensure_allowed(A.RECORD_FEEDBACK, actor)
    if contacted and (resolved is None or satisfaction is None):
        raise ValidationError(
            "feedback-incomplete", field="satisfaction" if resolved is not None else "resolved"
        )
    if not contacted and (resolved is not None or satisfaction is not None):
        raise ValidationError("feedback-without-contact", field="contacted")
    reopens = contacted and not (resolved and satisfaction is not Satisfaction.UNSATISFIED)
    if reopens and (not reopen or reopen[0].role is not AssignmentRole.LEAD):
        raise ValidationError("reopen-needs-lead", field="reopen")
    meta = g._meta(actor, at, command_id, None)
    g.trigger_event(
        g.FeedbackRecorded,
        contacted=contacted,
        resolved=resolved,
        satisfaction=satisfaction.value if satisfaction else None,
        comment=comment,
        **meta,
    )
    if not contacted:
        return
    assert satisfaction is not None
    if not reopens:
        g.trigger_event(g.Closed, outcome=satisfaction.value, **meta)
        return
    count = g.reopen_count + 1
    payloads = assignment_payloads(g, reopen)
    for payload in payloads:
        payload["round"] = count
    g.trigger_event(g.Reopened, reopen_count=count, assignments=payloads, **meta)
    if count >= reopen_escalation_threshold:
        g.trigger_event(
            g.Escalated,
            level=REOPEN_ESCALATION_LEVEL,
            kind=None,
            assignment_id=None,
            department=g.lead_department,
            deadline=None,
            **g._meta(
                actor,
                at,
                command_id,
                None,
                ReasonCode.REOPENED_REPEATEDLY,
                {"reopen_count": count, "level": REOPEN_ESCALATION_LEVEL},
            ),
        )


def close(
    g: Grievance,
    actor: Actor,
    at: datetime,
    command_id: str,
    outcome: Outcome,
    reason: str | None,
    reason_code: str | None = None,
    reason_params: Mapping[str, Any] | None = None,
) -> None:
    """归档: end the loop (e.g. no answer within the 回访 window)."""
    g.ensure_allowed(A.CLOSE, actor)
    if outcome in (Outcome.SATISFIED, Outcome.BASICALLY_SATISFIED):
        raise ValidationError("satisfied-needs-feedback", field="outcome", outcome=outcome)
    g.trigger_event(
        g.Closed,
        outcome=outcome.value,
        **g._meta(actor, at, command_id, reason, reason_code, reason_params),
    )


def merge(
    g: Grievance,
    actor: Actor,
    at: datetime,
    command_id: str,
    into_id: UUID,
    into_number: str,
    reason: str | None = None,
) -> None:
    """合并: this grievance is a duplicate of another one."""
    g.ensure_allowed(A.MERGE, actor)
    if into_id == g.id:
        raise ValidationError("merge-into-itself", field="into")
    g.trigger_event(
        g.Merged,
        into=str(into_id),
        into_number=into_number,
        **g._meta(actor, at, command_id, reason),
    )


def link_duplicate(
    g: Grievance,
    actor: Actor,
    at: datetime,
    command_id: str,
    duplicate_id: UUID,
    duplicate_number: str,
) -> None:
    """The primary side of a merge: it keeps a list of its duplicates."""
    g.check_role(A.LINK_DUPLICATE, actor)
    if g.is_final:
        raise g.refusal(A.LINK_DUPLICATE, "primary-final", number=g.number)
    g.trigger_event(
        g.DuplicateLinked,
        duplicate_id=str(duplicate_id),
        duplicate_number=duplicate_number,
        **g._meta(actor, at, command_id, None),
    )


def withdraw(g: Grievance, actor: Actor, at: datetime, command_id: str, reason: str) -> None:
    """撤件: the citizen withdraws the grievance."""
    g.ensure_allowed(A.WITHDRAW, actor)
    g.trigger_event(g.Withdrawn, **g._meta(actor, at, command_id, reason))
