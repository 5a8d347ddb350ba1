"""The Grievance aggregate: one citizen request moving through collect → resolve → feedback.

Public methods are the commands: each checks its rule first (so a refused command
records nothing), then triggers events whose ``change`` only changes state. The
events are declared here, on the aggregate (their topics are
``domain.grievance:Grievance.<Name>``); the commands live next to their concept and
are bound below as methods: ``domain.assignments`` (派单, the departments'
commands, 吹哨), ``domain.deadlines`` (open deadlines, 催办, 督办) and
``domain.lifecycle`` (梳理, 回访, 归档, 合并, 撤件). The guards (``domain.guards``)
read the tables of ``domain.rules``; refusals are ``domain.errors`` codes with
parameters.

Every event carries who did it (``principal``, ``role``), the business instant ``at``,
the ``command_id`` that caused it (for idempotency) and, where given, a person's
``reason``; events the workflows cause carry ``reason_code`` and ``reason_params``
instead (``domain.model.ReasonCode``; older stored events have neither). Event data
uses plain types only (str, int, bool, datetime, lists and dicts of them) so every
backend's transcoder round-trips it exactly.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import assignments, deadlines, evidence, guards, knowledge, lifecycle, summons
from domain.assignments import Assignment, NewAssignment
from domain.deadlines import DISPATCH_CENTRE, EscalationRecord
from domain.errors import UnknownAssignmentError
from domain.intake import legacy_intake
from domain.integrity import GENESIS, chain_digest, event_data, keep_as_stored
from domain.lifecycle import FeedbackRecord
from domain.model import (
    FINAL_STATUSES,
    AssignmentRole,
    AssignmentState,
    Outcome,
    Reason,
    Satisfaction,
    Stamp,
    Status,
)
from domain.rules import ACTION_ROLES as ACTION_ROLES  # re-exported for older imports
from domain.rules import STATUS_ACTIONS as STATUS_ACTIONS  # re-exported for older imports
from domain.tracecontext import CURRENT_TRACE

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
        """Version 2 of ``Received`` carries the channel's structured details (``intake``,
        ``domain.intake``) next to the citizen's text as given; version 1 appended an
        Open311 client's details to the text, and is read as version 2 here, once."""

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            text, intake = legacy_intake(state.get("channel", ""), state.get("text", ""))
            if intake is not None:
                before = dict(state)
                state.update(text=text, intake=intake)
                keep_as_stored(before, state)

    class Received(Created):
        number: str
        channel: str
        citizen_name: str
        citizen_phone: str
        text: str
        location: dict[str, Any]
        occurred_at: datetime | None
        principal: str
        role: str
        at: datetime
        command_id: str
        reason: str | None = None
        intake: dict[str, Any] | None = None
        # 咨询, 求助 … (domain.model.RequestType); None when not given, and on older events.
        request_type: str | None = None

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
        if "trace" not in kwargs and "trace" in event_class.__dataclass_fields__:
            kwargs["trace"] = CURRENT_TRACE.get()
        # The hash covers exactly what the event stores, its defaulted fields included.
        for f in fields(event_class):
            if f.name not in kwargs and f.default is not MISSING:
                kwargs[f.name] = f.default
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
        intake: dict[str, Any] | None = None,
        request_type: str | None = None,
    ) -> None:
        self.number = number
        self.request_type = request_type
        self.intake_answer: knowledge.IntakeAnswer | None = None
        self.intake = intake  # the channel's structured details (domain.intake)
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
        self.attachments: list[evidence.AttachmentRecord] = []
        self.applied_commands: dict[str, Applied] = {}
        self.chain_hash = GENESIS  # replaced by the event's own hash right after __init__
        self.trace: str | None = None  # the newest event's trace context (domain.tracecontext)
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
    rate_summoned = summons.rate_summoned
    urge = deadlines.urge
    escalate = deadlines.escalate
    record_feedback = lifecycle.record_feedback
    close = lifecycle.close
    merge = lifecycle.merge
    link_duplicate = lifecycle.link_duplicate
    withdraw = lifecycle.withdraw
    attach = evidence.attach
    answer_at_intake = knowledge.answer_at_intake

    # --------------------------------------------------------- queries (bound)

    current_assignments = assignments.current_assignments
    lead_assignment = assignments.lead_assignment
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

    def assignment(self, assignment_id: str) -> Assignment:
        found = self.assignments.get(assignment_id)
        if found is None:
            raise UnknownAssignmentError(assignment_id=assignment_id, number=self.number)
        return found

    # ------------------------------------------------------------ guards (bound)

    allowed_actions = guards.allowed_actions
    check_role = staticmethod(guards.check_role)
    refusal = guards.refusal
    assignment_refusal = guards.assignment_refusal
    ensure_allowed = guards.ensure_allowed
    _own_assignment = guards.own_assignment

    # ----------------------------------------------------------------- helpers

    def _stamp(self, command_id: str, **extra: Any) -> None:
        # Called last in every event body: after a multi-event command, the id maps
        # to the final version and status, which is what a repeat must answer.
        self.applied_commands[command_id] = Applied(self.version + 1, self.status, extra)

    @staticmethod
    def _meta(stamp: Stamp, reason: str | Reason | None = None) -> dict[str, Any]:
        """The fields every ``Recorded`` event carries: who, when, which command, why."""
        why = reason if isinstance(reason, Reason) else Reason(reason)
        return stamp.fields() | why.fields()

    def _add_assignments(self, payloads: list[dict[str, Any]], at: datetime) -> None:
        for data in payloads:
            self.assignments[data["assignment_id"]] = Assignment.from_event(data, at)

    def _cancel_open_assignments(self) -> None:
        for assignment in self.assignments.values():
            if assignment.is_open:
                assignment.state = AssignmentState.CANCELLED
                assignment.extension_requested = None

    def _set_resolved(self, at: datetime, resolution: str, feedback_deadline: datetime) -> None:
        """办结 (or answered at intake with a 回访 to come): the 回访 window opens."""
        self.status = Status.RESOLVED
        self.resolved_at = at
        self.resolution = resolution
        self.feedback_deadline = feedback_deadline

    def _set_ended(self, status: Status, at: datetime, reason: str | None) -> None:
        """Ended before its loop closed (不予受理, 合并, 撤件): open work is cancelled."""
        self._cancel_open_assignments()
        self.status = status
        self.closed_at = at
        self.final_reason = reason

    # ------------------------------------------------------------------ events
    # Every event after Received is a Recorded: who, when (``at``), which command and,
    # for a person's command, why (``reason``). ``change`` is the event's effect;
    # ``apply`` then notes the command id (for repeats) and the chain hash.

    class Recorded(Event):
        principal: str
        role: str
        at: datetime
        command_id: str
        reason: str | None
        # The W3C traceparent of the request that caused it (see domain.tracecontext);
        # None when untraced, and on events stored before traces were kept.
        trace: str | None = field(default=None, kw_only=True)

        def apply(self, aggregate: Any) -> None:
            aggregate.trace = self.trace
            self.change(aggregate)
            aggregate._stamp(self.command_id, **self.result())
            super().apply(aggregate)

        def change(self, g: Grievance) -> None:
            pass

        def result(self) -> dict[str, Any]:
            """What a repeat of the command answers besides version and status."""
            return {}

    class AssignmentEvent(Recorded):
        """An event about one assignment of the grievance."""

        assignment_id: str

        def target(self, g: Grievance) -> Assignment:
            return g.assignments[self.assignment_id]

    class Classified(Recorded):
        category: str
        urgency: str
        sla_class: str

        def change(self, g: Grievance) -> None:
            g.category, g.urgency, g.sla_class = self.category, self.urgency, self.sla_class
            g.status = Status.CLASSIFIED

    class Rejected(Recorded):
        def change(self, g: Grievance) -> None:
            g._set_ended(Status.REJECTED, self.at, self.reason)

    class Dispatched(Recorded):
        assignments: list[dict[str, Any]]
        routed_by: str

        def change(self, g: Grievance) -> None:
            g._add_assignments(self.assignments, self.at)
            g.status = Status.DISPATCHED

        def result(self) -> dict[str, Any]:
            return {"assignments": [a["assignment_id"] for a in self.assignments]}

    class SignedFor(AssignmentEvent):
        def change(self, g: Grievance) -> None:
            assignment = self.target(g)
            assignment.state = AssignmentState.SIGNED_FOR
            assignment.signed_for_at = self.at
            if assignment.role is AssignmentRole.LEAD and g.status is Status.DISPATCHED:
                g.status = Status.IN_PROGRESS

    class Returned(AssignmentEvent):
        redispatch_deadline: datetime

        def change(self, g: Grievance) -> None:
            assignment = self.target(g)
            assignment.state = AssignmentState.RETURNED
            assignment.returned_at = self.at
            assignment.return_reason = self.reason
            assignment.redispatch_deadline = self.redispatch_deadline
            if assignment.role is AssignmentRole.LEAD:
                g.status = Status.RETURNED

    class Arbitrated(AssignmentEvent):
        decision: str
        assignment: dict[str, Any]

        def change(self, g: Grievance) -> None:
            self.target(g).state = AssignmentState.SUPERSEDED
            g._add_assignments([self.assignment], self.at)
            if self.assignment["role"] == AssignmentRole.LEAD.value:
                g.status = Status.DISPATCHED

        def result(self) -> dict[str, Any]:
            return {"assignment_id": self.assignment["assignment_id"]}

    class ProgressReported(AssignmentEvent):
        note: str

        def change(self, g: Grievance) -> None:
            self.target(g).progress_notes += 1

    class ExtensionRequested(AssignmentEvent):
        requested_deadline: datetime

        def change(self, g: Grievance) -> None:
            self.target(g).extension_requested = self.requested_deadline

    class ExtensionGranted(AssignmentEvent):
        new_deadline: datetime

        def change(self, g: Grievance) -> None:
            assignment = self.target(g)
            assignment.resolve_deadline = self.new_deadline
            assignment.extension_requested = None
            assignment.extensions_granted += 1

    class ExtensionDenied(AssignmentEvent):
        def change(self, g: Grievance) -> None:
            self.target(g).extension_requested = None

    class PartCompleted(AssignmentEvent):
        account: str

        def change(self, g: Grievance) -> None:
            self.target(g).finish(AssignmentState.COMPLETED, self.at, self.account)

    class Resolved(AssignmentEvent):
        account: str
        feedback_deadline: datetime

        def change(self, g: Grievance) -> None:
            self.target(g).finish(AssignmentState.RESOLVED, self.at, self.account)
            for other in g.current_assignments(AssignmentRole.SUMMONED):
                if other.is_open:
                    other.state = AssignmentState.SUPERSEDED
            g._set_resolved(self.at, self.account, self.feedback_deadline)

    class Summoned(Recorded):
        summons_id: str
        assignments: list[dict[str, Any]]
        # The department that blew the whistle; None when a supervisor did (and in
        # events stored before departments could).
        summoned_by: str | None = None

        def change(self, g: Grievance) -> None:
            g._add_assignments(self.assignments, self.at)
            summons.summoners(g)[self.summons_id] = self.summoned_by

        def result(self) -> dict[str, Any]:
            ids = [a["assignment_id"] for a in self.assignments]
            return {"summons_id": self.summons_id, "assignments": ids}

    class ReportedIn(AssignmentEvent):
        def change(self, g: Grievance) -> None:
            self.target(g).finish(AssignmentState.REPORTED_IN, self.at)

    class SummonsRated(AssignmentEvent):
        """The summoning unit (``rater``) rates a department it summoned; ``revision`` 2
        and up correct the first rating within the policy's window."""

        department: str
        rater: str
        rating: str
        on_time: bool | None  # reported in by the report-in deadline (None: never did)
        revision: int
        previous: str | None = None  # the rating this one corrects

        def change(self, g: Grievance) -> None:
            previous = summons.ratings(g).get(self.assignment_id)
            summons.ratings(g)[self.assignment_id] = summons.RatingRecord(
                self.assignment_id,
                self.department,
                self.rater,
                Satisfaction(self.rating),
                self.on_time,
                self.reason,
                self.revision,
                previous.first_at if previous else self.at,
                self.at,
                self.principal,
            )

    class Urged(Recorded):
        kind: str
        assignment_id: str | None
        department: str | None
        deadline: datetime
        # Why the workflows urged (domain.model.ReasonCode); None in older events.
        reason_code: str | None = None
        reason_params: dict[str, Any] | None = None

        def change(self, g: Grievance) -> None:
            if self.assignment_id is not None:
                g.assignments[self.assignment_id].urges += 1

    class Escalated(Recorded):
        level: int
        kind: str | None
        assignment_id: str | None
        department: str | None
        deadline: datetime | None
        reason_code: str | None = None
        reason_params: dict[str, Any] | None = None

        def change(self, g: Grievance) -> None:
            g.escalation_level = max(g.escalation_level, self.level)
            target = g.assignments.get(self.assignment_id or "")
            if target is not None:
                target.escalation_level = max(target.escalation_level, self.level)
            g.escalations.append(
                EscalationRecord(
                    self.at,
                    self.level,
                    self.kind,
                    self.assignment_id,
                    self.department,
                    self.reason,
                    self.reason_code,
                    self.reason_params,
                )
            )

    class FeedbackRecorded(Recorded):
        contacted: bool
        resolved: bool | None
        satisfaction: str | None
        comment: str

        def change(self, g: Grievance) -> None:
            satisfaction = Satisfaction(self.satisfaction) if self.satisfaction else None
            g.feedback.append(
                FeedbackRecord(
                    self.at, g.round, self.contacted, self.resolved, satisfaction, self.comment
                )
            )

    class Reopened(Recorded):
        reopen_count: int
        assignments: list[dict[str, Any]]

        def change(self, g: Grievance) -> None:
            g.reopen_count = g.round = self.reopen_count
            g._add_assignments(self.assignments, self.at)
            g.status = Status.DISPATCHED
            g.feedback_deadline = None
            g.resolved_at = None

    class Closed(Recorded):
        outcome: str
        reason_code: str | None = None
        reason_params: dict[str, Any] | None = None

        def change(self, g: Grievance) -> None:
            g.status = Status.CLOSED
            g.outcome = Outcome(self.outcome)
            g.closed_at = self.at
            g.feedback_deadline = None

    class AnsweredAtIntake(Recorded):
        """直接答复: the answer given on the call and the article revisions it quoted;
        closed next (``Closed``), or resolved with a 回访 window when the policy wants one."""

        answer: str
        articles: list[dict[str, Any]]
        feedback_deadline: datetime | None

        def change(self, g: Grievance) -> None:
            g.intake_answer = knowledge.IntakeAnswer(
                self.at, self.principal, self.answer, list(self.articles)
            )
            if self.feedback_deadline is not None:
                g._set_resolved(self.at, self.answer, self.feedback_deadline)

    class Merged(Recorded):
        into: str
        into_number: str

        def change(self, g: Grievance) -> None:
            g._set_ended(Status.MERGED, self.at, self.reason)
            g.merged_into = self.into

        def result(self) -> dict[str, Any]:
            return {"into": self.into, "into_number": self.into_number}

    class DuplicateLinked(Recorded):
        duplicate_id: str
        duplicate_number: str

        def change(self, g: Grievance) -> None:
            g.duplicates.append(self.duplicate_id)

    class Withdrawn(Recorded):
        def change(self, g: Grievance) -> None:
            g._set_ended(Status.WITHDRAWN, self.at, self.reason)

    class Attached(Recorded):
        """附件: a file in the blob store, by hash; on an assignment when a department sent it."""

        sha256: str
        media_type: str
        size: int
        filename: str
        thumbnail_sha256: str | None
        assignment_id: str | None
        department: str | None
        note: str | None

        def change(self, g: Grievance) -> None:
            # A read model's state kept before attachments existed has no list yet.
            g.__dict__.setdefault("attachments", []).append(
                evidence.AttachmentRecord(
                    self.sha256,
                    self.media_type,
                    self.size,
                    self.filename,
                    self.thumbnail_sha256,
                    self.assignment_id,
                    self.department,
                    self.note,
                    self.principal,
                    self.role,
                    self.at,
                )
            )

        def result(self) -> dict[str, Any]:
            return {"sha256": self.sha256, "thumbnail_sha256": self.thumbnail_sha256}

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
        data["attachments"] = [asdict(a) for a in evidence.attachments(self)]
        data["applied_commands"] = {k: asdict(v) for k, v in self.applied_commands.items()}
        return data
