"""The grievance's own life: 梳理 and 不予受理 at intake, 回访 and 归档 at the end,
合并 and 撤件 in between.

The functions taking ``g: Grievance`` first are bound as the aggregate's methods in
``domain.grievance``: each checks its rule, then triggers its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from domain.assignments import NewAssignment, assignment_payloads
from domain.errors import ValidationError
from domain.model import (
    Action,
    AssignmentRole,
    Outcome,
    Reason,
    ReasonCode,
    Satisfaction,
    Stamp,
    required_reason,
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
    g: Grievance, stamp: Stamp, category: str, urgency: str, sla_class: str, reason: str | None
) -> None:
    """梳理: set the category leaf and urgency (again, until dispatched)."""
    g.ensure_allowed(A.CLASSIFY, stamp.actor)
    g.trigger_event(
        g.Classified,
        category=category,
        urgency=urgency,
        sla_class=sla_class,
        **g._meta(stamp, reason),
    )


def reject(g: Grievance, stamp: Stamp, reason: str) -> None:
    """不予受理: out of scope at intake."""
    g.ensure_allowed(A.REJECT, stamp.actor)
    g.trigger_event(g.Rejected, **g._meta(stamp, required_reason(reason)))


def record_feedback(
    g: Grievance,
    stamp: Stamp,
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
    g.ensure_allowed(A.RECORD_FEEDBACK, stamp.actor)
    if contacted and (resolved is None or satisfaction is None):
        raise ValidationError(
            "feedback-incomplete", field="satisfaction" if resolved is not None else "resolved"
        )
    if not contacted and (resolved is not None or satisfaction is not None):
        raise ValidationError("feedback-without-contact", field="contacted")
    reopens = contacted and not (resolved and satisfaction is not Satisfaction.UNSATISFIED)
    if reopens and (not reopen or reopen[0].role is not AssignmentRole.LEAD):
        raise ValidationError("reopen-needs-lead", field="reopen")
    meta = g._meta(stamp)
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
        params = {"reopen_count": count, "level": REOPEN_ESCALATION_LEVEL}
        g.trigger_event(
            g.Escalated,
            level=REOPEN_ESCALATION_LEVEL,
            kind=None,
            assignment_id=None,
            department=g.lead_department,
            deadline=None,
            **g._meta(stamp, Reason(code=ReasonCode.REOPENED_REPEATEDLY, params=params)),
        )


def close(g: Grievance, stamp: Stamp, outcome: Outcome, reason: Reason) -> None:
    """归档: end the loop (e.g. no answer within the 回访 window)."""
    g.ensure_allowed(A.CLOSE, stamp.actor)
    if outcome in (Outcome.SATISFIED, Outcome.BASICALLY_SATISFIED):
        raise ValidationError("satisfied-needs-feedback", field="outcome", outcome=outcome)
    g.trigger_event(g.Closed, outcome=outcome.value, **g._meta(stamp, reason))


def merge(g: Grievance, stamp: Stamp, into: Grievance, reason: str | None) -> None:
    """合并: this grievance is a duplicate of ``into``."""
    g.ensure_allowed(A.MERGE, stamp.actor)
    if into.id == g.id:
        raise ValidationError("merge-into-itself", field="into")
    g.trigger_event(g.Merged, into=str(into.id), into_number=into.number, **g._meta(stamp, reason))


def link_duplicate(g: Grievance, stamp: Stamp, duplicate: Grievance) -> None:
    """The primary side of a merge: it keeps a list of its duplicates."""
    g.check_role(A.LINK_DUPLICATE, stamp.actor)
    if g.is_final:
        raise g.refusal(A.LINK_DUPLICATE, "primary-final", number=g.number)
    g.trigger_event(
        g.DuplicateLinked,
        duplicate_id=str(duplicate.id),
        duplicate_number=duplicate.number,
        **g._meta(stamp),
    )


def withdraw(g: Grievance, stamp: Stamp, reason: str) -> None:
    """撤件: the citizen withdraws the grievance."""
    g.ensure_allowed(A.WITHDRAW, stamp.actor)
    g.trigger_event(g.Withdrawn, **g._meta(stamp, reason))
