"""The Grievance aggregate: one citizen request moving through collect → resolve → feedback.

Public methods are the commands: each checks its rule first (so a refused command
records nothing), then triggers one ``@event`` method whose body only changes state.
Every event carries who did it (``principal``, ``role``), the business instant
``at``, the ``command_id`` that caused it (for idempotency) and, where given, a
``reason``. Event data uses plain types only (str, int, bool, datetime, lists and
dicts of them) so every backend's transcoder round-trips it exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    AssignmentStateError,
    IllegalTransitionError,
    NotAssignedError,
    PermissionDeniedError,
    UnknownAssignmentError,
    ValidationError,
)
from domain.integrity import GENESIS, chain_digest, event_data
from domain.model import (
    ESCALATION_LEVELS,
    FINAL_STATUSES,
    OPEN_ASSIGNMENT_STATES,
    Action,
    Actor,
    ArbitrationDecision,
    AssignmentRole,
    AssignmentState,
    Deadline,
    DeadlineKind,
    Outcome,
    Satisfaction,
    Status,
)
from domain.rules import ACTION_ROLES as ACTION_ROLES  # re-exported for older imports
from domain.rules import (
    ASSIGNMENT_RULES,
    actions_in,
    assignment_actions,
    may,
    roles_for,
)
from domain.rules import STATUS_ACTIONS as STATUS_ACTIONS  # re-exported for older imports

A = Action

DISPATCH_CENTRE = "dispatch-centre"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValidationError("naive-datetime", field="timestamp")
    return moment.astimezone(UTC)


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


@dataclass
class FeedbackRecord:
    at: datetime
    round: int
    contacted: bool
    resolved: bool | None
    satisfaction: Satisfaction | None
    comment: str


@dataclass
class EscalationRecord:
    at: datetime
    level: int
    kind: str | None
    assignment_id: str | None
    department: str | None
    reason: str | None


@dataclass
class Applied:
    """The result a command id produced: repeating the command returns it again."""

    version: int
    status: Status
    extra: dict[str, Any] = field(default_factory=dict)


class Grievance(Aggregate):
    """诉求: one citizen grievance, from 受理 to 归档."""

    class Event(Aggregate.Event):
        """Every grievance event carries ``chain_hash`` (see ``domain.integrity``)."""

        chain_hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.chain_hash = self.chain_hash

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _create(cls, event_class: Any, *, id: UUID | None = None, **kwargs: Any) -> Any:
        kwargs["timestamp"] = kwargs.get("timestamp") or event_class.create_timestamp()
        kwargs["chain_hash"] = chain_digest(
            GENESIS,
            event_class.__name__,
            cls.INITIAL_VERSION,
            kwargs["timestamp"],
            event_data(kwargs),
        )
        return super()._create(event_class, id=id, **kwargs)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs["timestamp"] = kwargs.get("timestamp") or event_class.create_timestamp()
        kwargs["chain_hash"] = chain_digest(
            self.chain_hash,
            event_class.__name__,
            self.version + 1,
            kwargs["timestamp"],
            event_data(kwargs),
        )
        super().trigger_event(event_class, **kwargs)

    @event("Received")
    def __init__(
        self,
        id: UUID,
        number: str,
        channel: str,
        citizen_name: str,
        citizen_phone: str,
        text: str,
        location: dict[str, Any],
        occurred_at: datetime | None,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None = None,
    ) -> None:
        self.number = number
        self.channel = channel
        self.citizen_name = citizen_name
        self.citizen_phone = citizen_phone
        self.text = text
        self.location = dict(location)
        self.occurred_at = occurred_at
        self.received_at = at
        self.received_by = principal
        self.status = Status.RECEIVED
        self.category: str | None = None
        self.urgency: str | None = None
        self.sla_class: str | None = None
        self.assignments: dict[str, Assignment] = {}
        self.round = 0
        self.reopen_count = 0
        self.escalation_level = 0
        self.escalations: list[EscalationRecord] = []
        self.feedback: list[FeedbackRecord] = []
        self.feedback_deadline: datetime | None = None
        self.resolved_at: datetime | None = None
        self.resolution: str | None = None
        self.outcome: Outcome | None = None
        self.closed_at: datetime | None = None
        self.merged_into: str | None = None
        self.duplicates: list[str] = []
        self.final_reason: str | None = None
        self.applied_commands: dict[str, Applied] = {}
        self.chain_hash = GENESIS  # replaced by the event's own hash right after __init__
        self._stamp(command_id)

    # ----------------------------------------------------------------- helpers

    def _stamp(self, command_id: str, **extra: Any) -> None:
        # Called last in every event body: after a multi-event command, the id maps
        # to the final version and status, which is what a repeat must answer.
        self.applied_commands[command_id] = Applied(self.version + 1, self.status, extra)

    @staticmethod
    def _meta(actor: Actor, at: datetime, command_id: str, reason: str | None) -> dict[str, Any]:
        return {
            "principal": actor.principal,
            "role": actor.role.value,
            "at": _utc(at),
            "command_id": command_id,
            "reason": reason,
        }

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def allowed_actions(self) -> list[str]:
        return sorted(a.value for a in actions_in(self.status))

    def refusal(
        self, action: Action, reason: str | None = None, **params: Any
    ) -> IllegalTransitionError:
        """The error for a command this status refuses, naming what blocks it."""
        if reason is None and self.is_final:
            reason = "final-status"
        allowed = actions_in(self.status)
        return IllegalTransitionError(action, self.status, allowed, reason, **params)

    def assignment_refusal(
        self, action: Action, assignment: Assignment, reason: str | None = None, **params: Any
    ) -> AssignmentStateError:
        """The error for a command this assignment refuses; ``allowed`` is what it accepts."""
        allowed = (
            assignment_actions(assignment, self.status)
            if action in ASSIGNMENT_RULES
            else actions_in(self.status)
        )
        return AssignmentStateError(
            action, assignment.id, assignment.state, self.status, allowed, reason, **params
        )

    @staticmethod
    def check_role(action: Action, actor: Actor) -> None:
        if not may(actor.role, action):
            raise PermissionDeniedError(
                action=action, role=actor.role, roles=sorted(roles_for(action))
            )

    def ensure_allowed(
        self, action: Action | str, actor: Actor, reason: str | None = None, **params: Any
    ) -> None:
        """Raise unless this role may do this action in the current status."""
        action = Action(action)
        self.check_role(action, actor)
        if action not in actions_in(self.status):
            raise self.refusal(action, reason, **params)

    def assignment(self, assignment_id: str) -> Assignment:
        found = self.assignments.get(assignment_id)
        if found is None:
            raise UnknownAssignmentError(assignment_id=assignment_id, number=self.number)
        return found

    def _own_assignment(self, action: Action, actor: Actor, assignment_id: str) -> Assignment:
        """The actor's department's assignment, if its rule accepts this command now."""
        self.ensure_allowed(action, actor)
        found = self.assignment(assignment_id)
        if actor.department != found.department:
            raise NotAssignedError(
                assignment_id=assignment_id,
                department=found.department,
                actor_department=actor.department,
            )
        rule = ASSIGNMENT_RULES[action]
        if found.role not in rule.roles:
            raise self.assignment_refusal(
                action,
                found,
                "assignment-role",
                assignment_role=found.role,
                roles=sorted(rule.roles),
            )
        if found.state not in rule.states:
            raise self.assignment_refusal(action, found)
        return found

    def current_assignments(self, *roles: AssignmentRole) -> list[Assignment]:
        return [
            a
            for a in self.assignments.values()
            if a.round == self.round and (not roles or a.role in roles)
        ]

    def lead_assignment(self) -> Assignment | None:
        """The lead assignment of the current round that is still in play."""
        leads = [
            a
            for a in self.current_assignments(AssignmentRole.LEAD)
            if a.state not in (AssignmentState.SUPERSEDED, AssignmentState.CANCELLED)
        ]
        return leads[-1] if leads else None

    @property
    def lead_department(self) -> str | None:
        lead = self.lead_assignment()
        return lead.department if lead else None

    @property
    def assisting_departments(self) -> list[str]:
        return [
            a.department
            for a in self.current_assignments(AssignmentRole.ASSISTING)
            if a.state not in (AssignmentState.SUPERSEDED, AssignmentState.CANCELLED)
        ]

    def _next_assignment_id(self, offset: int = 0) -> str:
        return f"{self.id}.{len(self.assignments) + 1 + offset}"

    def _assignment_payloads(
        self, new: list[NewAssignment], summons_id: str | None = None
    ) -> list[dict[str, Any]]:
        payloads = []
        for offset, item in enumerate(new):
            payloads.append(
                {
                    "assignment_id": self._next_assignment_id(offset),
                    "department": item.department,
                    "role": item.role.value,
                    "round": self.round,
                    "sign_for_deadline": _utc(item.sign_for_deadline)
                    if item.sign_for_deadline
                    else None,
                    "resolve_deadline": _utc(item.resolve_deadline)
                    if item.resolve_deadline
                    else None,
                    "report_in_deadline": _utc(item.report_in_deadline)
                    if item.report_in_deadline
                    else None,
                    "summons_id": summons_id,
                }
            )
        return payloads

    def _add_assignments(self, payloads: list[dict[str, Any]], at: datetime) -> None:
        for data in payloads:
            self.assignments[data["assignment_id"]] = Assignment.from_event(data, at)

    # ------------------------------------------------------------------ intake

    def classify(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        category: str,
        urgency: str,
        sla_class: str,
        reason: str | None = None,
    ) -> None:
        """梳理: set the category leaf and urgency (again, until dispatched)."""
        self.ensure_allowed(A.CLASSIFY, actor)
        self._classified(
            category=category,
            urgency=urgency,
            sla_class=sla_class,
            **self._meta(actor, at, command_id, reason),
        )

    @event("Classified")
    def _classified(
        self,
        category: str,
        urgency: str,
        sla_class: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.category = category
        self.urgency = urgency
        self.sla_class = sla_class
        self.status = Status.CLASSIFIED
        self._stamp(command_id)

    def reject(self, actor: Actor, at: datetime, command_id: str, reason: str) -> None:
        """不予受理: out of scope at intake."""
        self.ensure_allowed(A.REJECT, actor)
        if not reason:
            raise ValidationError("required", field="reason")
        self._rejected(**self._meta(actor, at, command_id, reason))

    @event("Rejected")
    def _rejected(
        self, principal: str, role: str, at: datetime, command_id: str, reason: str | None
    ) -> None:
        self.status = Status.REJECTED
        self.final_reason = reason
        self.closed_at = at
        self._stamp(command_id)

    # ---------------------------------------------------------------- dispatch

    def dispatch(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        lead: NewAssignment,
        assisting: list[NewAssignment],
        routed_by: str,
        reason: str | None = None,
    ) -> None:
        """派单: one lead department (主办) and any assisting ones (协办)."""
        self.ensure_allowed(A.DISPATCH, actor, "not-classified" if self.category is None else None)
        departments = [lead.department] + [a.department for a in assisting]
        twice = sorted({code for code in departments if departments.count(code) > 1})
        if twice:
            raise ValidationError("department-twice", field="assisting", departments=twice)
        if lead.role is not AssignmentRole.LEAD or any(
            a.role is not AssignmentRole.ASSISTING for a in assisting
        ):
            raise ValidationError("dispatch-roles", field="role")
        self._dispatched(
            assignments=self._assignment_payloads([lead, *assisting]),
            routed_by=routed_by,
            **self._meta(actor, at, command_id, reason),
        )

    @event("Dispatched")
    def _dispatched(
        self,
        assignments: list[dict[str, Any]],
        routed_by: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self._add_assignments(assignments, at)
        self.status = Status.DISPATCHED
        self._stamp(command_id)

    def sign_for(self, actor: Actor, at: datetime, command_id: str, assignment_id: str) -> None:
        """签收: the department accepts its assignment."""
        self._own_assignment(A.SIGN_FOR, actor, assignment_id)
        self._signed_for(assignment_id=assignment_id, **self._meta(actor, at, command_id, None))

    @event("SignedFor")
    def _signed_for(
        self,
        assignment_id: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        assignment = self.assignments[assignment_id]
        assignment.state = AssignmentState.SIGNED_FOR
        assignment.signed_for_at = at
        if assignment.role is AssignmentRole.LEAD and self.status is Status.DISPATCHED:
            self.status = Status.IN_PROGRESS
        self._stamp(command_id)

    def return_assignment(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        assignment_id: str,
        reason: str,
        redispatch_deadline: datetime,
    ) -> None:
        """退单: the department sends its assignment back to the dispatch centre."""
        self._own_assignment(A.RETURN, actor, assignment_id)
        if not reason:
            raise ValidationError("required", field="reason")
        self._returned(
            assignment_id=assignment_id,
            redispatch_deadline=_utc(redispatch_deadline),
            **self._meta(actor, at, command_id, reason),
        )

    @event("Returned")
    def _returned(
        self,
        assignment_id: str,
        redispatch_deadline: datetime,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        assignment = self.assignments[assignment_id]
        assignment.state = AssignmentState.RETURNED
        assignment.returned_at = at
        assignment.return_reason = reason
        assignment.redispatch_deadline = redispatch_deadline
        if assignment.role is AssignmentRole.LEAD:
            self.status = Status.RETURNED
        self._stamp(command_id)

    def arbitrate(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        assignment_id: str,
        decision: ArbitrationDecision,
        replacement: NewAssignment,
        reason: str | None = None,
    ) -> None:
        """派单争议仲裁: re-dispatch a returned assignment, or confirm its department keeps it."""
        self.ensure_allowed(A.ARBITRATE, actor)
        returned = self.assignment(assignment_id)
        if returned.state is not AssignmentState.RETURNED:
            raise self.assignment_refusal(A.ARBITRATE, returned, "not-returned")
        if decision is ArbitrationDecision.CONFIRM and replacement.department != (
            returned.department
        ):
            raise ValidationError(
                "confirm-keeps-department",
                field="department",
                department=replacement.department,
                returned_department=returned.department,
            )
        if decision is ArbitrationDecision.REDISPATCH:
            if replacement.department == returned.department:
                raise ValidationError(
                    "redispatch-same-department",
                    field="department",
                    department=replacement.department,
                )
            taken = {
                a.department
                for a in self.current_assignments(AssignmentRole.LEAD, AssignmentRole.ASSISTING)
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
        self._arbitrated(
            assignment_id=assignment_id,
            decision=decision.value,
            assignment=self._assignment_payloads([new])[0],
            **self._meta(actor, at, command_id, reason),
        )

    @event("Arbitrated")
    def _arbitrated(
        self,
        assignment_id: str,
        decision: str,
        assignment: dict[str, Any],
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.assignments[assignment_id].state = AssignmentState.SUPERSEDED
        self._add_assignments([assignment], at)
        if assignment["role"] == AssignmentRole.LEAD.value:
            self.status = Status.DISPATCHED
        self._stamp(command_id)

    # -------------------------------------------------------------------- work

    def report_progress(
        self, actor: Actor, at: datetime, command_id: str, assignment_id: str, note: str
    ) -> None:
        """阶段反馈: an interim update."""
        self._own_assignment(A.REPORT_PROGRESS, actor, assignment_id)
        self._progress_reported(
            assignment_id=assignment_id, note=note, **self._meta(actor, at, command_id, None)
        )

    @event("ProgressReported")
    def _progress_reported(
        self,
        assignment_id: str,
        note: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.assignments[assignment_id].progress_notes += 1
        self._stamp(command_id)

    def request_extension(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        assignment_id: str,
        new_deadline: datetime,
        latest_allowed: datetime,
        reason: str,
    ) -> None:
        """延期申请: ask for a later resolve deadline."""
        assignment = self._own_assignment(A.REQUEST_EXTENSION, actor, assignment_id)
        if not reason:
            raise ValidationError("required", field="reason")
        if assignment.extension_requested is not None:
            raise self.assignment_refusal(
                A.REQUEST_EXTENSION,
                assignment,
                "extension-pending",
                requested=assignment.extension_requested.isoformat(),
            )
        current = assignment.resolve_deadline
        if current is not None and _utc(new_deadline) <= current:
            raise ValidationError(
                "deadline-not-later",
                field="new_deadline",
                value=_utc(new_deadline).isoformat(),
                deadline=current.isoformat(),
            )
        if _utc(new_deadline) > _utc(latest_allowed):
            raise ValidationError(
                "deadline-too-late",
                field="new_deadline",
                value=_utc(new_deadline).isoformat(),
                latest=_utc(latest_allowed).isoformat(),
            )
        self._extension_requested(
            assignment_id=assignment_id,
            requested_deadline=_utc(new_deadline),
            **self._meta(actor, at, command_id, reason),
        )

    @event("ExtensionRequested")
    def _extension_requested(
        self,
        assignment_id: str,
        requested_deadline: datetime,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.assignments[assignment_id].extension_requested = requested_deadline
        self._stamp(command_id)

    def decide_extension(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        assignment_id: str,
        granted: bool,
        reason: str | None = None,
        new_deadline: datetime | None = None,
    ) -> None:
        """Grant (the deadline moves) or deny (it does not) a waiting extension request."""
        self.ensure_allowed(A.DECIDE_EXTENSION, actor)
        assignment = self.assignment(assignment_id)
        if assignment.extension_requested is None or not assignment.is_open:
            raise self.assignment_refusal(A.DECIDE_EXTENSION, assignment, "no-extension-pending")
        meta = self._meta(actor, at, command_id, reason)
        if granted:
            deadline = _utc(new_deadline) if new_deadline else assignment.extension_requested
            if assignment.resolve_deadline is not None and deadline <= assignment.resolve_deadline:
                raise ValidationError(
                    "deadline-not-later",
                    field="new_deadline",
                    value=deadline.isoformat(),
                    deadline=assignment.resolve_deadline.isoformat(),
                )
            self._extension_granted(assignment_id=assignment_id, new_deadline=deadline, **meta)
        else:
            if not reason:
                raise ValidationError("required", field="reason")
            self._extension_denied(assignment_id=assignment_id, **meta)

    @event("ExtensionGranted")
    def _extension_granted(
        self,
        assignment_id: str,
        new_deadline: datetime,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        assignment = self.assignments[assignment_id]
        assignment.resolve_deadline = new_deadline
        assignment.extension_requested = None
        assignment.extensions_granted += 1
        self._stamp(command_id)

    @event("ExtensionDenied")
    def _extension_denied(
        self,
        assignment_id: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.assignments[assignment_id].extension_requested = None
        self._stamp(command_id)

    def complete_part(
        self, actor: Actor, at: datetime, command_id: str, assignment_id: str, account: str
    ) -> None:
        """协办完成: an assisting department reports its part done."""
        self._own_assignment(A.COMPLETE_PART, actor, assignment_id)
        self._part_completed(
            assignment_id=assignment_id,
            account=account,
            **self._meta(actor, at, command_id, None),
        )

    @event("PartCompleted")
    def _part_completed(
        self,
        assignment_id: str,
        account: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        assignment = self.assignments[assignment_id]
        assignment.state = AssignmentState.COMPLETED
        assignment.finished_at = at
        assignment.account = account
        self._stamp(command_id)

    def pending_parts(self) -> list[Assignment]:
        """Assisting assignments of this round that are not yet completed."""
        return [a for a in self.current_assignments(AssignmentRole.ASSISTING) if a.is_open]

    def resolve(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        assignment_id: str,
        account: str,
        feedback_deadline: datetime,
    ) -> None:
        """办结: the lead department's resolution, once every assisting part is done."""
        self.ensure_allowed(
            A.RESOLVE, actor, "not-signed-for" if self.status is Status.DISPATCHED else None
        )
        lead = self._own_assignment(A.RESOLVE, actor, assignment_id)
        pending = self.pending_parts()
        if pending:
            raise self.assignment_refusal(
                A.RESOLVE,
                lead,
                "waiting-for-assisting",
                departments=[a.department for a in pending],
            )
        self._resolved(
            assignment_id=assignment_id,
            account=account,
            feedback_deadline=_utc(feedback_deadline),
            **self._meta(actor, at, command_id, None),
        )

    @event("Resolved")
    def _resolved(
        self,
        assignment_id: str,
        account: str,
        feedback_deadline: datetime,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        assignment = self.assignments[assignment_id]
        assignment.state = AssignmentState.RESOLVED
        assignment.finished_at = at
        assignment.account = account
        for other in self.current_assignments(AssignmentRole.SUMMONED):
            if other.is_open:
                other.state = AssignmentState.SUPERSEDED
        self.status = Status.RESOLVED
        self.resolved_at = at
        self.resolution = account
        self.feedback_deadline = feedback_deadline
        self._stamp(command_id)

    # ------------------------------------------------------------- 吹哨 / 报到

    def summon(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        summons: list[NewAssignment],
        reason: str,
    ) -> None:
        """吹哨: call departments to act together, each with a report-in deadline."""
        self.ensure_allowed(A.SUMMON, actor)
        if not summons:
            raise ValidationError("required", field="departments")
        codes = [s.department for s in summons]
        twice = sorted({code for code in codes if codes.count(code) > 1})
        if twice:
            raise ValidationError("department-twice", field="departments", departments=twice)
        if any(
            s.role is not AssignmentRole.SUMMONED or s.report_in_deadline is None for s in summons
        ):
            raise ValidationError("report-in-deadline-required", field="departments")
        waiting = {
            a.department
            for a in self.current_assignments(AssignmentRole.SUMMONED)
            if a.state is AssignmentState.DISPATCHED
        }
        again = sorted(set(codes) & waiting)
        if again:
            raise ValidationError("already-summoned", field="departments", departments=again)
        summons_id = f"{self.id}.s{len(self.assignments) + 1}"
        self._summoned(
            summons_id=summons_id,
            assignments=self._assignment_payloads(summons, summons_id),
            **self._meta(actor, at, command_id, reason),
        )

    @event("Summoned")
    def _summoned(
        self,
        summons_id: str,
        assignments: list[dict[str, Any]],
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self._add_assignments(assignments, at)
        self._stamp(command_id, summons_id=summons_id)

    def report_in(self, actor: Actor, at: datetime, command_id: str, assignment_id: str) -> None:
        """报到: a summoned department reports in."""
        self._own_assignment(A.REPORT_IN, actor, assignment_id)
        self._reported_in(assignment_id=assignment_id, **self._meta(actor, at, command_id, None))

    @event("ReportedIn")
    def _reported_in(
        self,
        assignment_id: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        assignment = self.assignments[assignment_id]
        assignment.state = AssignmentState.REPORTED_IN
        assignment.finished_at = at
        self._stamp(command_id)

    # -------------------------------------------------------- time: deadlines

    def open_deadlines(self) -> list[Deadline]:
        """Every deadline someone still has to meet, whoever owns it."""
        deadlines: list[Deadline] = []
        if self.is_final:
            return deadlines
        for a in self.assignments.values():
            if a.state is AssignmentState.DISPATCHED:
                if a.role is AssignmentRole.SUMMONED:
                    if a.report_in_deadline is not None:
                        deadlines.append(
                            Deadline(
                                DeadlineKind.REPORT_IN, a.report_in_deadline, a.id, a.department
                            )
                        )
                    continue
                if a.sign_for_deadline is not None:
                    deadlines.append(
                        Deadline(DeadlineKind.SIGN_FOR, a.sign_for_deadline, a.id, a.department)
                    )
            if a.state in (AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR) and (
                a.resolve_deadline is not None and a.role is not AssignmentRole.SUMMONED
            ):
                deadlines.append(
                    Deadline(DeadlineKind.RESOLVE, a.resolve_deadline, a.id, a.department)
                )
            if a.state is AssignmentState.RETURNED and a.redispatch_deadline is not None:
                deadlines.append(
                    Deadline(DeadlineKind.REDISPATCH, a.redispatch_deadline, a.id, DISPATCH_CENTRE)
                )
        if self.status is Status.RESOLVED and self.feedback_deadline is not None:
            deadlines.append(
                Deadline(DeadlineKind.FEEDBACK, self.feedback_deadline, None, DISPATCH_CENTRE)
            )
        return sorted(deadlines, key=lambda d: (d.due, d.kind.value, d.assignment_id or ""))

    def find_open_deadline(
        self, kind: DeadlineKind, assignment_id: str | None, due: datetime | None = None
    ) -> Deadline | None:
        """The open deadline of this kind and assignment (and this due instant, if given)."""
        for deadline in self.open_deadlines():
            if (
                deadline.kind is kind
                and deadline.assignment_id == assignment_id
                and (due is None or deadline.due == _utc(due))
            ):
                return deadline
        return None

    def overdue(self, at: datetime) -> list[Deadline]:
        return [d for d in self.open_deadlines() if d.due < _utc(at)]

    def urge(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        kind: DeadlineKind,
        assignment_id: str | None,
        reason: str | None = None,
    ) -> None:
        """催办: remind whoever owns an open deadline."""
        self.ensure_allowed(A.URGE, actor)
        deadline = self.find_open_deadline(kind, assignment_id)
        if deadline is None:
            raise self.refusal(A.URGE, "no-open-deadline", kind=kind, assignment_id=assignment_id)
        self._urged(
            kind=kind.value,
            assignment_id=assignment_id,
            department=deadline.department,
            deadline=deadline.due,
            **self._meta(actor, at, command_id, reason),
        )

    @event("Urged")
    def _urged(
        self,
        kind: str,
        assignment_id: str | None,
        department: str | None,
        deadline: datetime,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        if assignment_id is not None:
            self.assignments[assignment_id].urges += 1
        self._stamp(command_id)

    def escalate(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        level: int,
        reason: str,
        kind: DeadlineKind | None = None,
        assignment_id: str | None = None,
    ) -> None:
        """督办 / 提级: level 1 street leader, 2 district supervision, 3 兜底办."""
        self.ensure_allowed(A.ESCALATE, actor)
        if level not in ESCALATION_LEVELS:
            raise ValidationError(
                "invalid-escalation-level", field="level", value=level, levels=ESCALATION_LEVELS
            )
        if not reason:
            raise ValidationError("required", field="reason")
        department: str | None = None
        due: datetime | None = None
        if kind is not None:
            deadline = self.find_open_deadline(kind, assignment_id)
            if deadline is None:
                raise self.refusal(
                    A.ESCALATE, "no-open-deadline", kind=kind, assignment_id=assignment_id
                )
            department, due = deadline.department, deadline.due
        elif assignment_id is not None:
            department = self.assignment(assignment_id).department
        self._escalated(
            level=level,
            kind=kind.value if kind else None,
            assignment_id=assignment_id,
            department=department,
            deadline=due,
            **self._meta(actor, at, command_id, reason),
        )

    @event("Escalated")
    def _escalated(
        self,
        level: int,
        kind: str | None,
        assignment_id: str | None,
        department: str | None,
        deadline: datetime | None,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.escalation_level = max(self.escalation_level, level)
        if assignment_id is not None and assignment_id in self.assignments:
            target = self.assignments[assignment_id]
            target.escalation_level = max(target.escalation_level, level)
        self.escalations.append(
            EscalationRecord(at, level, kind, assignment_id, department, reason)
        )
        self._stamp(command_id)

    # ---------------------------------------------------------------- feedback

    def record_feedback(
        self,
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
        self.ensure_allowed(A.RECORD_FEEDBACK, actor)
        if contacted and (resolved is None or satisfaction is None):
            raise ValidationError(
                "feedback-incomplete", field="satisfaction" if resolved is not None else "resolved"
            )
        if not contacted and (resolved is not None or satisfaction is not None):
            raise ValidationError("feedback-without-contact", field="contacted")
        reopens = contacted and not (resolved and satisfaction is not Satisfaction.UNSATISFIED)
        if reopens and (not reopen or reopen[0].role is not AssignmentRole.LEAD):
            raise ValidationError("reopen-needs-lead", field="reopen")
        meta = self._meta(actor, at, command_id, None)
        self._feedback_recorded(
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
            self._closed(outcome=satisfaction.value, **meta)
            return
        payloads = self._assignment_payloads(reopen)
        for payload in payloads:
            payload["round"] = self.reopen_count + 1
        self._reopened(reopen_count=self.reopen_count + 1, assignments=payloads, **meta)
        if self.reopen_count >= reopen_escalation_threshold:
            self._escalated(
                level=3,
                kind=None,
                assignment_id=None,
                department=self.lead_department,
                deadline=None,
                **{
                    **meta,
                    "reason": f"reopened {self.reopen_count} times: 兜底办 (leader-led resolution)",
                },
            )

    @event("FeedbackRecorded")
    def _feedback_recorded(
        self,
        contacted: bool,
        resolved: bool | None,
        satisfaction: str | None,
        comment: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.feedback.append(
            FeedbackRecord(
                at=at,
                round=self.round,
                contacted=contacted,
                resolved=resolved,
                satisfaction=Satisfaction(satisfaction) if satisfaction else None,
                comment=comment,
            )
        )
        self._stamp(command_id)

    @event("Reopened")
    def _reopened(
        self,
        reopen_count: int,
        assignments: list[dict[str, Any]],
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.reopen_count = reopen_count
        self.round = reopen_count
        self._add_assignments(assignments, at)
        self.status = Status.DISPATCHED
        self.feedback_deadline = None
        self.resolved_at = None
        self._stamp(command_id)

    def close(
        self, actor: Actor, at: datetime, command_id: str, outcome: Outcome, reason: str | None
    ) -> None:
        """归档: end the loop (e.g. no answer within the 回访 window)."""
        self.ensure_allowed(A.CLOSE, actor)
        if outcome in (Outcome.SATISFIED, Outcome.BASICALLY_SATISFIED):
            raise ValidationError("satisfied-needs-feedback", field="outcome", outcome=outcome)
        self._closed(outcome=outcome.value, **self._meta(actor, at, command_id, reason))

    @event("Closed")
    def _closed(
        self,
        outcome: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.status = Status.CLOSED
        self.outcome = Outcome(outcome)
        self.closed_at = at
        self.feedback_deadline = None
        self._stamp(command_id)

    # ------------------------------------------------- duplicates, withdrawal

    def merge(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        into_id: UUID,
        into_number: str,
        reason: str | None = None,
    ) -> None:
        """合并: this grievance is a duplicate of another one."""
        self.ensure_allowed(A.MERGE, actor)
        if into_id == self.id:
            raise ValidationError("merge-into-itself", field="into")
        self._merged(
            into=str(into_id),
            into_number=into_number,
            **self._meta(actor, at, command_id, reason),
        )

    @event("Merged")
    def _merged(
        self,
        into: str,
        into_number: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self._cancel_open_assignments()
        self.status = Status.MERGED
        self.merged_into = into
        self.closed_at = at
        self.final_reason = reason
        self._stamp(command_id)

    def link_duplicate(
        self,
        actor: Actor,
        at: datetime,
        command_id: str,
        duplicate_id: UUID,
        duplicate_number: str,
    ) -> None:
        """The primary side of a merge: it keeps a list of its duplicates."""
        self.check_role(A.LINK_DUPLICATE, actor)
        if self.is_final:
            raise self.refusal(A.LINK_DUPLICATE, "primary-final", number=self.number)
        self._duplicate_linked(
            duplicate_id=str(duplicate_id),
            duplicate_number=duplicate_number,
            **self._meta(actor, at, command_id, None),
        )

    @event("DuplicateLinked")
    def _duplicate_linked(
        self,
        duplicate_id: str,
        duplicate_number: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
    ) -> None:
        self.duplicates.append(duplicate_id)
        self._stamp(command_id)

    def withdraw(self, actor: Actor, at: datetime, command_id: str, reason: str) -> None:
        """撤件: the citizen withdraws the grievance."""
        self.ensure_allowed(A.WITHDRAW, actor)
        self._withdrawn(**self._meta(actor, at, command_id, reason))

    @event("Withdrawn")
    def _withdrawn(
        self, principal: str, role: str, at: datetime, command_id: str, reason: str | None
    ) -> None:
        self._cancel_open_assignments()
        self.status = Status.WITHDRAWN
        self.closed_at = at
        self.final_reason = reason
        self._stamp(command_id)

    def _cancel_open_assignments(self) -> None:
        for assignment in self.assignments.values():
            if assignment.is_open:
                assignment.state = AssignmentState.CANCELLED
                assignment.extension_requested = None

    # ------------------------------------------------------------------- views

    def state(self) -> dict[str, Any]:
        """Everything the aggregate knows, as plain data (used to compare rebuilds)."""
        data = {
            key: value
            for key, value in vars(self).items()
            if not key.startswith("_") and key != "applied_commands"
        }
        data["id"] = self.id
        data["version"] = self.version
        data["assignments"] = {k: asdict(v) for k, v in self.assignments.items()}
        data["escalations"] = [asdict(e) for e in self.escalations]
        data["feedback"] = [asdict(f) for f in self.feedback]
        data["applied_commands"] = {k: asdict(v) for k, v in self.applied_commands.items()}
        return data
