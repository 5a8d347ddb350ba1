"""Assignments: each department's part in a round, and the commands about them.

派单 creates a lead (主办) and assisting (协办) assignments; 吹哨 adds summoned ones.
The functions taking ``g: Grievance`` first are the aggregate's commands (bound as its
methods in ``domain.grievance``): each checks its rule, then triggers one event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.errors import ValidationError
from domain.model import (
    OPEN_ASSIGNMENT_STATES,
    Action,
    Actor,
    ArbitrationDecision,
    AssignmentRole,
    AssignmentState,
    Stamp,
    Status,
    required_reason,
    utc,
)

if TYPE_CHECKING:  # pragma: no cover
    from domain.grievance import Grievance

A = Action
_GONE = (AssignmentState.SUPERSEDED, AssignmentState.CANCELLED)


@dataclass
class Assignment:
    """One department's part in one round of a grievance (state only, not an event)."""

    id: str
    department: str
    role: AssignmentRole
    round: int
    state: AssignmentState
    dispatched_at: datetime
    sign_for_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    report_in_deadline: datetime | None = None
    redispatch_deadline: datetime | None = None
    summons_id: str | None = None
    signed_for_at: datetime | None = None
    finished_at: datetime | None = None  # completed / resolved / reported in
    returned_at: datetime | None = None
    return_reason: str | None = None
    extension_requested: datetime | None = None
    extensions_granted: int = 0
    progress_notes: int = 0
    urges: int = 0
    escalation_level: int = 0
    account: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_ASSIGNMENT_STATES

    def finish(self, state: AssignmentState, at: datetime, account: str | None = None) -> None:
        """Its department's part is done: completed (协办), resolved (办结) or reported in."""
        self.state = state
        self.finished_at = at
        if account is not None:
            self.account = account

    @classmethod
    def from_event(cls, data: dict[str, Any], at: datetime) -> Assignment:
        return cls(
            id=data["assignment_id"],
            department=data["department"],
            role=AssignmentRole(data["role"]),
            round=int(data["round"]),
            state=AssignmentState.DISPATCHED,
            dispatched_at=at,
            sign_for_deadline=data.get("sign_for_deadline"),
            resolve_deadline=data.get("resolve_deadline"),
            report_in_deadline=data.get("report_in_deadline"),
            summons_id=data.get("summons_id"),
        )


@dataclass(frozen=True)
class NewAssignment:
    """What a command needs to create an assignment; deadlines come from the SLA policy."""

    department: str
    role: AssignmentRole
    sign_for_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    report_in_deadline: datetime | None = None


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return utc(moment) if moment else None


def assignment_payloads(
    g: Grievance, new: list[NewAssignment], summons_id: str | None = None
) -> list[dict[str, Any]]:
    """The event data of new assignments: ids ``<grievance id>.<n>`` in order."""
    return [
        {
            "assignment_id": f"{g.id}.{len(g.assignments) + 1 + offset}",
            "department": item.department,
            "role": item.role.value,
            "round": g.round,
            "sign_for_deadline": _utc_or_none(item.sign_for_deadline),
            "resolve_deadline": _utc_or_none(item.resolve_deadline),
            "report_in_deadline": _utc_or_none(item.report_in_deadline),
            "summons_id": summons_id,
        }
        for offset, item in enumerate(new)
    ]


# ----------------------------------------------------------------- queries


def current_assignments(g: Grievance, *roles: AssignmentRole) -> list[Assignment]:
    return [
        a for a in g.assignments.values() if a.round == g.round and (not roles or a.role in roles)
    ]


def lead_assignment(g: Grievance) -> Assignment | None:
    """The lead assignment of the current round that is still in play."""
    leads = [a for a in current_assignments(g, AssignmentRole.LEAD) if a.state not in _GONE]
    return leads[-1] if leads else None


def assisting_departments(g: Grievance) -> list[str]:
    return [
        a.department
        for a in current_assignments(g, AssignmentRole.ASSISTING)
        if a.state not in _GONE
    ]


def pending_parts(g: Grievance) -> list[Assignment]:
    """Assisting assignments of this round that are not yet completed."""
    return [a for a in current_assignments(g, AssignmentRole.ASSISTING) if a.is_open]


# ---------------------------------------------------------------- dispatch


def ensure_can_dispatch(g: Grievance, actor: Actor) -> None:
    """派单's rule: the status table, naming a missing classification as what blocks it."""
    g.ensure_allowed(A.DISPATCH, actor, "not-classified" if g.category is None else None)


def dispatch(
    g: Grievance,
    stamp: Stamp,
    lead: NewAssignment,
    assisting: list[NewAssignment],
    routed_by: str,
    reason: str | None,
) -> None:
    """派单: one lead department (主办) and any assisting ones (协办)."""
    ensure_can_dispatch(g, stamp.actor)
    departments = [lead.department] + [a.department for a in assisting]
    twice = sorted({code for code in departments if departments.count(code) > 1})
    if twice:
        raise ValidationError("department-twice", field="assisting", departments=twice)
    if lead.role is not AssignmentRole.LEAD or any(
        a.role is not AssignmentRole.ASSISTING for a in assisting
    ):
        raise ValidationError("dispatch-roles", field="role")
    g.trigger_event(
        g.Dispatched,
        assignments=assignment_payloads(g, [lead, *assisting]),
        routed_by=routed_by,
        **g._meta(stamp, reason),
    )


def arbitrate(
    g: Grievance,
    stamp: Stamp,
    assignment_id: str,
    decision: ArbitrationDecision,
    replacement: NewAssignment,
    reason: str | None,
) -> None:
    """派单争议仲裁: re-dispatch a returned assignment, or confirm its department keeps it."""
    g.ensure_allowed(A.ARBITRATE, stamp.actor)
    returned = g.assignment(assignment_id)
    if returned.state is not AssignmentState.RETURNED:
        raise g.assignment_refusal(A.ARBITRATE, returned, "not-returned")
    same = replacement.department == returned.department
    if decision is ArbitrationDecision.CONFIRM and not same:
        raise ValidationError(
            "confirm-keeps-department",
            field="department",
            department=replacement.department,
            returned_department=returned.department,
        )
    if decision is ArbitrationDecision.REDISPATCH:
        if same:
            raise ValidationError(
                "redispatch-same-department", field="department", department=returned.department
            )
        taken = {
            a.department
            for a in current_assignments(g, AssignmentRole.LEAD, AssignmentRole.ASSISTING)
            if a.is_open or a.state is AssignmentState.COMPLETED
        }
        if replacement.department in taken - {returned.department}:
            raise ValidationError(
                "department-already-assigned",
                field="department",
                department=replacement.department,
            )
    new = NewAssignment(
        department=replacement.department,
        role=returned.role,
        sign_for_deadline=replacement.sign_for_deadline,
        resolve_deadline=replacement.resolve_deadline,
    )
    g.trigger_event(
        g.Arbitrated,
        assignment_id=assignment_id,
        decision=decision.value,
        assignment=assignment_payloads(g, [new])[0],
        **g._meta(stamp, reason),
    )


# ------------------------------------------------------------- departments


def _report(
    g: Grievance,
    action: Action,
    event_class: type[Grievance.AssignmentEvent],
    stamp: Stamp,
    assignment_id: str,
    **data: Any,
) -> None:
    """A department's report on its own assignment that its rule alone decides."""
    g._own_assignment(action, stamp.actor, assignment_id)
    g.trigger_event(event_class, assignment_id=assignment_id, **data, **g._meta(stamp))


def sign_for(g: Grievance, stamp: Stamp, assignment_id: str) -> None:
    """签收: the department accepts its assignment."""
    _report(g, A.SIGN_FOR, g.SignedFor, stamp, assignment_id)


def return_assignment(
    g: Grievance, stamp: Stamp, assignment_id: str, reason: str, redispatch_deadline: datetime
) -> None:
    """退单: the department sends its assignment back to the dispatch centre."""
    g._own_assignment(A.RETURN, stamp.actor, assignment_id)
    g.trigger_event(
        g.Returned,
        assignment_id=assignment_id,
        redispatch_deadline=utc(redispatch_deadline),
        **g._meta(stamp, required_reason(reason)),
    )


def report_progress(g: Grievance, stamp: Stamp, assignment_id: str, note: str) -> None:
    """阶段反馈: an interim update."""
    _report(g, A.REPORT_PROGRESS, g.ProgressReported, stamp, assignment_id, note=note)


def _later_deadline(assignment: Assignment, wanted: datetime) -> datetime:
    """An extension must move the resolve deadline later."""
    current = assignment.resolve_deadline
    if current is not None and wanted <= current:
        raise ValidationError(
            "deadline-not-later",
            field="new_deadline",
            value=wanted.isoformat(),
            deadline=current.isoformat(),
        )
    return wanted


def request_extension(
    g: Grievance,
    stamp: Stamp,
    assignment_id: str,
    new_deadline: datetime,
    latest_allowed: datetime,
    reason: str,
) -> None:
    """延期申请: ask for a later resolve deadline."""
    assignment = g._own_assignment(A.REQUEST_EXTENSION, stamp.actor, assignment_id)
    required_reason(reason)
    if assignment.extension_requested is not None:
        raise g.assignment_refusal(
            A.REQUEST_EXTENSION,
            assignment,
            "extension-pending",
            requested=assignment.extension_requested.isoformat(),
        )
    wanted = _later_deadline(assignment, utc(new_deadline))
    latest = utc(latest_allowed)
    if wanted > latest:
        raise ValidationError(
            "deadline-too-late",
            field="new_deadline",
            value=wanted.isoformat(),
            latest=latest.isoformat(),
        )
    g.trigger_event(
        g.ExtensionRequested,
        assignment_id=assignment_id,
        requested_deadline=wanted,
        **g._meta(stamp, reason),
    )


def decide_extension(
    g: Grievance,
    stamp: Stamp,
    assignment_id: str,
    granted: bool,
    reason: str | None,
    new_deadline: datetime | None,
) -> None:
    """Grant (the deadline moves) or deny (it does not, and says why) a waiting request."""
    g.ensure_allowed(A.DECIDE_EXTENSION, stamp.actor)
    assignment = g.assignment(assignment_id)
    if assignment.extension_requested is None or not assignment.is_open:
        raise g.assignment_refusal(A.DECIDE_EXTENSION, assignment, "no-extension-pending")
    if not granted:
        meta = g._meta(stamp, required_reason(reason))
        g.trigger_event(g.ExtensionDenied, assignment_id=assignment_id, **meta)
        return
    meta = g._meta(stamp, reason)
    deadline = _later_deadline(
        assignment, utc(new_deadline) if new_deadline else assignment.extension_requested
    )
    g.trigger_event(g.ExtensionGranted, assignment_id=assignment_id, new_deadline=deadline, **meta)


def complete_part(g: Grievance, stamp: Stamp, assignment_id: str, account: str) -> None:
    """协办完成: an assisting department reports its part done."""
    _report(g, A.COMPLETE_PART, g.PartCompleted, stamp, assignment_id, account=account)


def resolve(
    g: Grievance, stamp: Stamp, assignment_id: str, account: str, feedback_deadline: datetime
) -> None:
    """办结: the lead department's resolution, once every assisting part is done.

    Refused with ``waiting-for-assisting`` and the pending departments' codes while
    a 协办 part is open.
    """
    not_signed_for = "not-signed-for" if g.status is Status.DISPATCHED else None
    g.ensure_allowed(A.RESOLVE, stamp.actor, not_signed_for)
    lead = g._own_assignment(A.RESOLVE, stamp.actor, assignment_id)
    pending = pending_parts(g)
    if pending:
        raise g.assignment_refusal(
            A.RESOLVE, lead, "waiting-for-assisting", departments=[a.department for a in pending]
        )
    g.trigger_event(
        g.Resolved,
        assignment_id=assignment_id,
        account=account,
        feedback_deadline=utc(feedback_deadline),
        **g._meta(stamp),
    )


# ------------------------------------------------------------ 吹哨 / 报到


def summon(
    g: Grievance, stamp: Stamp, summons: list[NewAssignment], reason: str, summoned_by: str | None
) -> None:
    """吹哨: call departments to act together, each with a report-in deadline.

    ``summoned_by``: the department that blew the whistle (None: a supervisor did)."""
    g.ensure_allowed(A.SUMMON, stamp.actor)
    if not summons:
        raise ValidationError("required", field="departments")
    codes = [s.department for s in summons]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise ValidationError("department-twice", field="departments", departments=twice)
    if any(s.role is not AssignmentRole.SUMMONED or s.report_in_deadline is None for s in summons):
        raise ValidationError("report-in-deadline-required", field="departments")
    waiting = {
        a.department
        for a in current_assignments(g, AssignmentRole.SUMMONED)
        if a.state is AssignmentState.DISPATCHED
    }
    again = sorted(set(codes) & waiting)
    if again:
        raise ValidationError("already-summoned", field="departments", departments=again)
    summons_id = f"{g.id}.s{len(g.assignments) + 1}"
    g.trigger_event(
        g.Summoned,
        summons_id=summons_id,
        assignments=assignment_payloads(g, summons, summons_id),
        summoned_by=summoned_by,
        **g._meta(stamp, reason),
    )


def report_in(g: Grievance, stamp: Stamp, assignment_id: str) -> None:
    """报到: a summoned department reports in."""
    _report(g, A.REPORT_IN, g.ReportedIn, stamp, assignment_id)
