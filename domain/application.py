"""The application service: one pipeline for every command, and reads by id.

``handle(command)`` loads the grievance, answers a repeated ``command_id`` with its
first result (what HTTP retries and Temporal activity retries rely on), checks the
expected version (If-Match), lets the command's decide function in
``domain.handlers`` call the aggregate, and saves atomically. The use-case methods
(``classify_grievance``, ``sign_for`` …) build a command from their arguments and
call ``handle``; the audit reader's functions (``domain.audit_reader``) are bound as
methods too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate, event
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.utils import EnvType

from domain import audit_reader, evidence, knowledge, ratings
from domain.case_numbers import (
    NUMBER_ATTEMPTS,
    case_number_id,
    grievance_id_for,
    propose_case_number,
    split_assignment_id,
)
from domain.commands import (
    AnswerAtIntake,
    ArbitrateReturn,
    AssignmentCommand,
    AttachFile,
    AttachToAssignment,
    ClassifyGrievance,
    CloseGrievance,
    Command,
    CompletePart,
    DeadlineStep,
    DecideExtension,
    DispatchGrievance,
    Escalate,
    GrievanceCommand,
    MergeGrievance,
    RateSummoned,
    ReceiveGrievance,
    RecordFeedback,
    RejectGrievance,
    ReportIn,
    ReportProgress,
    RequestExtension,
    Resolve,
    ReturnAssignment,
    SignFor,
    SummonDepartments,
    Urge,
    WithdrawGrievance,
)
from domain.errors import (
    ConcurrentWriteError,
    DomainError,
    GrievanceNotFoundError,
    StaleVersionError,
    ValidationError,
)
from domain.grievance import Grievance
from domain.handlers import HANDLERS, MAX_TEXT, still_open
from domain.intake import clean_intake
from domain.model import (
    Action,
    Actor,
    Channel,
    Location,
    RequestType,
    Stamp,
    Status,
    clean_phone,
    clean_text,
    parse_enum,
    utc,
)
from domain.policies import Policies, load_policies


@dataclass(frozen=True)
class CommandResult:
    """What a command answers: enough for an API response or a workflow's next step."""

    grievance_id: UUID
    number: str
    version: int
    status: str
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    recorded: bool = True  # False when a conditional command found nothing to do


class CaseNumber(Aggregate):
    """Claims one human-readable case number, so two grievances never share it.

    Defined here because its stored topic is ``domain.application:CaseNumber``.
    """

    @event("Claimed")
    def __init__(self, id: UUID, number: str, grievance_id: UUID) -> None:
        self.number = number
        self.grievance_id = grievance_id


def project(
    aggregate: Grievance | None, events: Iterable[DomainEventProtocol[UUID]]
) -> Grievance | None:
    """Apply stored events to an aggregate: eventsourcing's ``project_aggregate`` without
    its per-event ``assert isinstance(event, CanMutateProtocol)``, a runtime Protocol check
    that cost ~36 µs an event (every stored event here is an ``Aggregate.Event``)."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)  # type: ignore[attr-defined]
    return aggregate


class WarmAggregates:
    """Grievances as the last command of this process left them, for the next command.

    An entry is *taken out* for a command and put back only after the command saved (or
    answered a repeat), so no two threads share an aggregate and a refused command never
    leaves a half-changed one behind. An entry may be stale (another process wrote since):
    the save then fails on its version, and ``handle`` runs the command again on a fresh
    load; any answer other than a save or a repeat is also checked on a fresh load.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[UUID, Grievance] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, grievance_id: UUID) -> Grievance | None:
        with self._lock:
            return self._entries.pop(grievance_id, None)

    def put(self, grievance: Grievance) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._entries[grievance.id] = grievance
            self._entries.move_to_end(grievance.id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def peek(self, grievance_id: UUID) -> Grievance | None:
        """The warm copy without taking it out: only for what never changes once recorded
        (an assignment's department)."""
        with self._lock:
            return self._entries.get(grievance_id)

    def evict(self, grievance_id: UUID) -> None:
        with self._lock:
            self._entries.pop(grievance_id, None)


def _use_case(
    command_type: type[GrievanceCommand] | type[AssignmentCommand],
) -> Callable[..., CommandResult]:
    """A method ``(target id, actor, **data)`` that builds the command and handles it."""
    target = "assignment_id" if issubclass(command_type, AssignmentCommand) else "grievance_id"

    def use_case(app: GrievanceApp, target_id: Any, actor: Actor, **data: Any) -> CommandResult:
        return app.handle(command_type(**{target: target_id}, actor=actor, **data))

    use_case.__doc__ = command_type.__doc__
    use_case.__name__ = command_type.__name__
    return use_case


class GrievanceApp(Application[UUID]):
    """接诉即办 application service: the commands of the grievance loop and reads by id."""

    name = "Grievances"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # eventsourcing names an application (and its PostgreSQL tables) after the
        # class; a subclass (a test double, a process) must use the same tables.
        named = "name" in cls.__dict__
        super().__init_subclass__(**kwargs)
        if not named:
            cls.name = GrievanceApp.name

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        policies: Policies | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(env)
        if policies is None:
            policy_dir = self.env.get("POLICY_DIR")
            policies = load_policies(
                self.env.get("SLA_PROFILE") or None, Path(policy_dir) if policy_dir else None
            )
        self.policies = policies
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.warm = WarmAggregates(int(self.env.get("WARM_AGGREGATES") or 1000))

    def now(self) -> datetime:
        """The application clock's instant, in UTC."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return now.astimezone(UTC)

    def stamp(self, command: Command) -> Stamp:
        """Who, the business instant (the command's ``at``, else now) and the command id
        (the command's, else a fresh one): what the command's events record."""
        at = utc(command.at) if command.at else self.now()
        return Stamp(command.actor, at, command.command_id or str(uuid4()))

    # ------------------------------------------------------------------ reads

    def get_grievance(self, grievance_id: UUID, version: int | None = None) -> Grievance:
        try:
            grievance: Grievance = self.repository.get(
                grievance_id, version=version, projector_func=project
            )
        except AggregateNotFoundError:
            raise GrievanceNotFoundError(grievance_id=str(grievance_id)) from None
        if not isinstance(grievance, Grievance):
            raise GrievanceNotFoundError(grievance_id=str(grievance_id))
        return grievance

    def contacts(self, grievance_ids: Iterable[UUID]) -> dict[UUID, tuple[str, str]]:
        """Each grievance's citizen (name, phone), read off its first event only: contact
        data is set at intake and never changes, so no grievance is replayed for it."""
        found: dict[UUID, tuple[str, str]] = {}
        cold: list[UUID] = []
        for grievance_id in grievance_ids:
            warm = self.warm.peek(grievance_id)
            if warm is not None:
                found[grievance_id] = (warm.citizen_name, warm.citizen_phone)
            else:
                cold.append(grievance_id)
        # The others' intake events in one read.
        for stored in audit_reader.first_stored_events(self, cold):
            intake = self.mapper.to_domain_event(stored)
            received = vars(intake)  # the intake event: whichever class version it has
            found[intake.originator_id] = (received["citizen_name"], received["citizen_phone"])
        return found

    def get_by_number(self, number: str) -> Grievance:
        try:
            claim: CaseNumber = self.repository.get(case_number_id(number))
        except AggregateNotFoundError:
            raise GrievanceNotFoundError(number=number) from None
        return self.get_grievance(claim.grievance_id)

    def get_by_assignment(self, assignment_id: str) -> Grievance:
        grievance = self.get_grievance(split_assignment_id(assignment_id))
        grievance.assignment(assignment_id)  # raises if unknown
        return grievance

    def assignment_department(self, assignment_id: str) -> str:
        """The department an assignment was given to (fixed when it was made): from the
        warm copy when this process has one that knows it, else from the stored events."""
        warm = self.warm.peek(split_assignment_id(assignment_id))
        if warm is not None and assignment_id in warm.assignments:
            return warm.assignments[assignment_id].department
        return self.get_by_assignment(assignment_id).assignment(assignment_id).department

    def history(self, grievance_id: UUID) -> list[DomainEventProtocol[UUID]]:
        """Every stored event of one grievance, in order (read once)."""
        events = list(self.events.get(grievance_id))
        if not events or not isinstance(events[0], Grievance.Event):
            raise GrievanceNotFoundError(grievance_id=str(grievance_id))
        return events

    def iter_events(self, start: int = 1, limit: int = 1000) -> Iterator[DomainEventProtocol[UUID]]:
        """Domain events in notification-log order, decoded."""
        for notification in self.recorder.select_notifications(start, limit):
            yield self.mapper.to_domain_event(notification)

    # The audit reader (state as of an instant, lateness, the hash chain).
    state_as_of = audit_reader.state_as_of
    stored_history = audit_reader.stored_history
    deadline_history = audit_reader.deadline_history
    department_lateness = audit_reader.department_lateness
    iter_all_events = audit_reader.iter_all_events
    verify_grievance = audit_reader.verify_grievance
    verify_all = audit_reader.verify_all
    verify_objects = evidence.verify_objects
    # The knowledge base (知识库): articles in the same event store.
    get_article = knowledge.get_article
    handle_article = knowledge.handle_article
    # Quarterly rating rounds (街道评部门), in the same event store.
    get_round = ratings.get_round
    handle_round = ratings.handle_round

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """eventsourcing's ``save`` without its two runtime Protocol checks per object
        (``isinstance(obj, DomainEventProtocol)``, then ``CollectEventsProtocol``): ~0.1 ms
        a command. Our aggregates are ``Aggregate`` subclasses, told apart by a plain
        class check; anything else takes the library's way."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated in eventsourcing; kept for parity
        return recordings

    # --------------------------------------------------------------- pipeline

    def handle(self, command: Command) -> CommandResult:
        """The one pipeline: load → repeated command id → expected version → decide → save.

        The grievance comes from ``self.warm`` when this process has it (no replay, no read:
        one transaction, the write); a stale or refused warm attempt runs again on a fresh
        load, so every refusal and every "nothing to do" is judged on the stored events."""
        if isinstance(command, ReceiveGrievance):
            return self._receive(command)
        warm = self.warm.take(self._target(command))
        if warm is not None:
            try:
                result = self._run(command, warm)
            except DomainError:
                result = None
            if result is not None and result.recorded:
                self.warm.put(warm)
                return result
        grievance = self._load(command)
        result = self._run(command, grievance)
        self.warm.put(grievance)
        return result

    @staticmethod
    def _target(command: Command) -> UUID:
        if isinstance(command, AssignmentCommand):
            return split_assignment_id(command.assignment_id)
        assert isinstance(command, GrievanceCommand)
        return command.grievance_id

    def _run(self, command: Command, grievance: Grievance) -> CommandResult:
        decide = HANDLERS[type(command)]
        if isinstance(command, AssignmentCommand):
            grievance.assignment(command.assignment_id)  # raises if unknown
        stamp = self.stamp(command)
        command_id = stamp.command_id
        applied = grievance.applied_commands.get(command_id)
        if applied is not None:  # a repeat answers what the first run answered
            return self._result(grievance, applied.version, applied.status, True, **applied.extra)
        step = command if isinstance(command, DeadlineStep) else None
        if step is not None and step.only_if_open and not still_open(grievance, step):
            return self._result(grievance, recorded=False)
        expected = getattr(command, "expected_version", None)
        if expected is not None and grievance.version != expected:
            raise StaleVersionError(
                number=grievance.number, version=grievance.version, expected=expected
            )
        others = decide(self, grievance, command, stamp) or ()
        self._save(grievance, *others)
        for other in others:  # a merge's primary: the warm copy (if any) is now stale
            if isinstance(other, Grievance):
                self.warm.evict(other.id)
        return self._result(grievance, **grievance.applied_commands[command_id].extra)

    def _load(self, command: Command) -> Grievance:
        """A fresh load of the command's grievance (``_run`` checks the assignment)."""
        return self.get_grievance(self._target(command))

    def _save(self, *aggregates: Aggregate) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrentWriteError() from None

    @staticmethod
    def _result(
        grievance: Grievance,
        version: int | None = None,
        status: Status | None = None,
        replayed: bool = False,
        recorded: bool = True,
        **extra: Any,
    ) -> CommandResult:
        return CommandResult(
            grievance_id=grievance.id,
            number=grievance.number,
            version=grievance.version if version is None else version,
            status=(status or grievance.status).value,
            replayed=replayed,
            extra=extra,
            recorded=recorded,
        )

    def _receive(self, command: ReceiveGrievance) -> CommandResult:
        """受理: a new grievance and the claim of its case number, saved together."""
        command_id = command.command_id or str(uuid4())
        grievance_id = grievance_id_for(command_id)
        # No existence check first: a repeated intake fails to save (its grievance id is
        # taken) and is answered from the stored grievance below.
        actor, occurred_at = command.actor, command.occurred_at
        channel = parse_enum(Channel, command.channel, "channel").value
        request_type = command.request_type
        if request_type is not None:
            request_type = parse_enum(RequestType, request_type, "request_type").value
        name = clean_text(command.citizen_name, "citizen_name", max_len=50, one_line=True)
        phone = clean_phone(command.citizen_phone)
        intake = clean_intake(command.intake)
        body = clean_text(command.text, "text", max_len=MAX_TEXT, required=intake is None)
        given = command.location
        address = clean_text(
            given.address, "location.address", max_len=200, required=False, one_line=True
        )
        location = Location(given.district, given.street, given.community, given.grid, address)
        self.policies.directory.check_location(location)
        if occurred_at is not None and occurred_at.tzinfo is None:
            raise ValidationError("naive-datetime", field="occurred_at")
        now = utc(command.at) if command.at else self.now()
        if occurred_at is not None and occurred_at > now:
            raise ValidationError(
                "in-the-future", field="occurred_at", value=occurred_at.isoformat()
            )
        Grievance.check_role(Action.RECEIVE, actor)
        classify = None
        if command.category is not None:
            classify = ClassifyGrievance(
                grievance_id=grievance_id, actor=actor, category=command.category
            )
            Grievance.check_role(Action.CLASSIFY, actor)
        local_day = now.astimezone(self.policies.calendar.tz).strftime("%Y%m%d")
        for attempt in range(NUMBER_ATTEMPTS):
            number = propose_case_number(grievance_id, local_day, attempt)
            grievance = Grievance(
                id=grievance_id,
                number=number,
                channel=channel,
                citizen_name=name,
                citizen_phone=phone,
                text=body,
                location=location.as_dict(),
                occurred_at=utc(occurred_at) if occurred_at else None,
                principal=actor.principal,
                role=actor.role.value,
                at=now,
                command_id=command_id,
                intake=intake,
                request_type=request_type,
            )
            if classify is not None:  # 梳理 in the same save: one command, atomic
                classified = f"{command_id}/classify"
                stamp = Stamp(classify.actor, now, classified)
                HANDLERS[ClassifyGrievance](self, grievance, classify, stamp)
            claim = CaseNumber(id=case_number_id(number), number=number, grievance_id=grievance_id)
            try:
                self.save(grievance, claim)
            except IntegrityError:
                try:
                    # The same command saved concurrently: answer its result.
                    return self._result(self.get_grievance(grievance_id), replayed=True)
                except GrievanceNotFoundError:
                    continue  # the number was taken: try the next one
            self.warm.put(grievance)
            return self._result(grievance)
        raise ConcurrentWriteError(number_attempts=NUMBER_ATTEMPTS)

    # -------------------------------------------------------------- use cases

    def receive_grievance(self, actor: Actor, **data: Any) -> CommandResult:
        """受理: record a new grievance and give it a case number."""
        return self.handle(ReceiveGrievance(actor=actor, **data))

    classify_grievance = _use_case(ClassifyGrievance)
    reject_grievance = _use_case(RejectGrievance)
    dispatch_grievance = _use_case(DispatchGrievance)
    arbitrate_return = _use_case(ArbitrateReturn)
    merge_grievance = _use_case(MergeGrievance)
    withdraw_grievance = _use_case(WithdrawGrievance)
    sign_for = _use_case(SignFor)
    return_assignment = _use_case(ReturnAssignment)
    report_progress = _use_case(ReportProgress)
    request_extension = _use_case(RequestExtension)
    complete_part = _use_case(CompletePart)
    resolve = _use_case(Resolve)
    report_in = _use_case(ReportIn)
    decide_extension = _use_case(DecideExtension)
    summon_departments = _use_case(SummonDepartments)
    rate_summoned = _use_case(RateSummoned)
    urge = _use_case(Urge)
    escalate = _use_case(Escalate)
    record_feedback = _use_case(RecordFeedback)
    close_grievance = _use_case(CloseGrievance)
    attach_file = _use_case(AttachFile)
    attach_to_assignment = _use_case(AttachToAssignment)
    answer_at_intake = _use_case(AnswerAtIntake)


__all__ = ["CaseNumber", "CommandResult", "GrievanceApp"]
