"""The Grievance aggregate: one citizen request moving through collect → resolve → feedback.

Public methods are the commands: each checks its rule first (so a refused command
records nothing), then triggers ``@event`` methods whose bodies only change state.
The events are declared here, on the aggregate (their topics are
``domain.grievance:Grievance.<Name>``); the commands' rules live next to their
concept and are bound below as methods: ``domain.assignments`` (派单, the
departments' commands, 吹哨), ``domain.deadlines`` (open deadlines, 催办, 督办) and
``domain.lifecycle`` (梳理, 回访, 归档, 合并, 撤件). The guards read the tables of
``domain.rules``; refusals are ``domain.errors`` codes with parameters.

Every event carries who did it (``principal``, ``role``), the business instant ``at``,
the ``command_id`` that caused it (for idempotency) and, where given, a person's
``reason``; events the workflows cause carry ``reason_code`` and ``reason_params``
instead (``domain.model.ReasonCode``; older stored events have neither). Event data
uses plain types only (str, int, bool, datetime, lists and dicts of them) so every
backend's transcoder round-trips it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import assignments, deadlines, lifecycle
from domain.assignments import Assignment, NewAssignment
from domain.deadlines import DISPATCH_CENTRE, EscalationRecord
from domain.errors import (
    AssignmentStateError,
    IllegalTransitionError,
    NotAssignedError,
    PermissionDeniedError,
    UnknownAssignmentError,
)
from domain.integrity import GENESIS, chain_digest, event_data
from domain.lifecycle import FeedbackRecord
from domain.model import (
    FINAL_STATUSES,
    Action,
    Actor,
    AssignmentRole,
    AssignmentState,
    Outcome,
    Satisfaction,
    Status,
    utc,
)
from domain.rules import ACTION_ROLES as ACTION_ROLES  # re-exported for older imports
from domain.rules import ASSIGNMENT_RULES, actions_in, assignment_actions, may, roles_for
from domain.rules import STATUS_ACTIONS as STATUS_ACTIONS  # re-exported for older imports

__all__ = [
    "ACTION_ROLES",
    "DISPATCH_CENTRE",
    "STATUS_ACTIONS",
    "Applied",
    "Assignment",
    "EscalationRecord",
    "FeedbackRecord",
    "Grievance",
    "NewAssignment",
]


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

    # ------------------------------------------------------- commands (bound)

    classify = lifecycle.classify
    reject = lifecycle.reject
    dispatch = assignments.dispatch
    arbitrate = assignments.arbitrate
    sign_for = assignments.sign_for
    return_assignment = assignments.return_assignment
    report_progress = assignments.report_progress
    request_extension = assignments.request_extension
    decide_extension = assignments.decide_extension
    complete_part = assignments.complete_part
    resolve = assignments.resolve
    summon = assignments.summon
    report_in = assignments.report_in
    urge = deadlines.urge
    escalate = deadlines.escalate
    record_feedback = lifecycle.record_feedback
    close = lifecycle.close
    merge = lifecycle.merge
    link_duplicate = lifecycle.link_duplicate
    withdraw = lifecycle.withdraw

    # --------------------------------------------------------- queries (bound)

    current_assignments = assignments.current_assignments
    lead_assignment = assignments.lead_assignment
    pending_parts = assignments.pending_parts
    open_deadlines = deadlines.open_deadlines
    find_open_deadline = deadlines.find_open_deadline
    overdue = deadlines.overdue

    @property
    def lead_department(self) -> str | None:
        lead = self.lead_assignment()
        return lead.department if lead else None

    @property
    def assisting_departments(self) -> list[str]:
        return assignments.assisting_departments(self)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def allowed_actions(self) -> list[str]:
        return sorted(a.value for a in actions_in(self.status))

    def assignment(self, assignment_id: str) -> Assignment:
        found = self.assignments.get(assignment_id)
        if found is None:
            raise UnknownAssignmentError(assignment_id=assignment_id, number=self.number)
        return found

    # ------------------------------------------------------------------ guards

    @staticmethod
    def check_role(action: Action, actor: Actor) -> None:
        if not may(actor.role, action):
            raise PermissionDeniedError(
                action=action, role=actor.role, roles=sorted(roles_for(action))
            )

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

    def ensure_allowed(
        self, action: Action | str, actor: Actor, reason: str | None = None, **params: Any
    ) -> None:
        """Raise unless this role may do this action in the current status."""
        action = Action(action)
        self.check_role(action, actor)
        if action not in actions_in(self.status):
            raise self.refusal(action, reason, **params)

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
                action, found, "assignment-role", assignment_role=found.role, roles=rule.roles
            )
        if found.state not in rule.states:
            raise self.assignment_refusal(action, found)
        return found

    # ----------------------------------------------------------------- helpers

    def _stamp(self, command_id: str, **extra: Any) -> None:
        # Called last in every event body: after a multi-event command, the id maps
        # to the final version and status, which is what a repeat must answer.
        self.applied_commands[command_id] = Applied(self.version + 1, self.status, extra)

    @staticmethod
    def _meta(
        actor: Actor,
        at: datetime,
        command_id: str,
        reason: str | None,
        reason_code: str | None = None,
        reason_params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "principal": actor.principal,
            "role": actor.role.value,
            "at": utc(at),
            "command_id": command_id,
            "reason": reason,
        }
        if reason_code is not None:
            meta["reason_code"] = str(reason_code)
            meta["reason_params"] = dict(reason_params or {})
        return meta

    def _add_assignments(self, payloads: list[dict[str, Any]], at: datetime) -> None:
        for data in payloads:
            self.assignments[data["assignment_id"]] = Assignment.from_event(data, at)

    def _cancel_open_assignments(self) -> None:
        for assignment in self.assignments.values():
            if assignment.is_open:
                assignment.state = AssignmentState.CANCELLED
                assignment.extension_requested = None

    # ------------------------------------------------------------------ events

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

    @event("Rejected")
    def _rejected(
        self, principal: str, role: str, at: datetime, command_id: str, reason: str | None
    ) -> None:
        self.status = Status.REJECTED
        self.final_reason = reason
        self.closed_at = at
        self._stamp(command_id)

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
        reason_code: str | None = None,
        reason_params: dict[str, Any] | None = None,
    ) -> None:
        if assignment_id is not None:
            self.assignments[assignment_id].urges += 1
        self._stamp(command_id)

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
        reason_code: str | None = None,
        reason_params: dict[str, Any] | None = None,
    ) -> None:
        self.escalation_level = max(self.escalation_level, level)
        if assignment_id is not None and assignment_id in self.assignments:
            target = self.assignments[assignment_id]
            target.escalation_level = max(target.escalation_level, level)
        self.escalations.append(
            EscalationRecord(
                at, level, kind, assignment_id, department, reason, reason_code, reason_params
            )
        )
        self._stamp(command_id)

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

    @event("Closed")
    def _closed(
        self,
        outcome: str,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
        reason: str | None,
        reason_code: str | None = None,
        reason_params: dict[str, Any] | None = None,
    ) -> None:
        self.status = Status.CLOSED
        self.outcome = Outcome(outcome)
        self.closed_at = at
        self.feedback_deadline = None
        self._stamp(command_id)

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

    @event("Withdrawn")
    def _withdrawn(
        self, principal: str, role: str, at: datetime, command_id: str, reason: str | None
    ) -> None:
        self._cancel_open_assignments()
        self.status = Status.WITHDRAWN
        self.closed_at = at
        self.final_reason = reason
        self._stamp(command_id)

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


# Events stored before workflows wrote reason codes have no such attributes: read None.
for _name in ("Urged", "Escalated", "Closed"):
    getattr(Grievance, _name).reason_code = None
    getattr(Grievance, _name).reason_params = None
