"""The application service: one method per use case, one atomic save per command.

Every command takes an optional ``command_id``. Repeating a command with an id the
grievance has already applied changes nothing and answers the first result again,
which is what HTTP retries and Temporal activity retries rely on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from domain import audit
from domain.errors import (
    ConcurrentWriteError,
    DomainError,
    GrievanceNotFoundError,
    StaleVersionError,
    ValidationError,
)
from domain.grievance import Grievance, NewAssignment
from domain.integrity import GENESIS, BrokenLink, verify_chain, verify_chain_step
from domain.model import (
    Action,
    Actor,
    ArbitrationDecision,
    AssignmentRole,
    AssignmentState,
    Channel,
    DeadlineKind,
    Location,
    Outcome,
    Satisfaction,
    Urgency,
    clean_phone,
    clean_text,
    parse_enum,
)
from domain.policies import Policies, load_policies

ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://closeloop.invalid/grievance")
NUMBER_NAMESPACE = uuid5(NAMESPACE_URL, "https://closeloop.invalid/case-number")
_GRIEVANCE_TOPIC = "domain.grievance:Grievance."
MAX_TEXT = 4000
MAX_NOTE = 2000
MAX_REASON = 500


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
    """Claims one human-readable case number, so two grievances never share it."""

    @event("Claimed")
    def __init__(self, id: UUID, number: str, grievance_id: UUID) -> None:
        self.number = number
        self.grievance_id = grievance_id


def case_number_id(number: str) -> UUID:
    return uuid5(NUMBER_NAMESPACE, number)


def propose_case_number(grievance_id: UUID, received_local_day: str, attempt: int) -> str:
    """``YYYYMMDD`` + six digits derived from the id: readable over the phone, stable on retry."""
    digest = hashlib.sha256(f"{grievance_id}/{attempt}".encode()).digest()
    return f"{received_local_day}{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def grievance_id_for(command_id: str) -> UUID:
    return uuid5(ID_NAMESPACE, command_id)


def split_assignment_id(assignment_id: str) -> UUID:
    """Assignment ids are ``<grievance uuid>.<n>``: the grievance is found without a lookup."""
    head, _, tail = assignment_id.rpartition(".")
    try:
        if not tail.isdigit():
            raise ValueError
        return UUID(head)
    except ValueError:
        raise ValidationError(
            "invalid-assignment-id", field="assignment_id", value=assignment_id
        ) from None


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

    # ------------------------------------------------------------------ reads

    def get_grievance(self, grievance_id: UUID, version: int | None = None) -> Grievance:
        try:
            grievance: Grievance = self.repository.get(grievance_id, version=version)
        except AggregateNotFoundError:
            raise GrievanceNotFoundError(grievance_id=str(grievance_id)) from None
        if not isinstance(grievance, Grievance):
            raise GrievanceNotFoundError(grievance_id=str(grievance_id))
        return grievance

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

    def history(self, grievance_id: UUID) -> list[DomainEventProtocol[UUID]]:
        self.get_grievance(grievance_id)
        return list(self.events.get(grievance_id))

    def iter_events(self, start: int = 1, limit: int = 1000) -> Iterator[DomainEventProtocol[UUID]]:
        """Domain events in notification-log order, decoded."""
        for notification in self.recorder.select_notifications(start, limit):
            yield self.mapper.to_domain_event(notification)

    # ------------------------------------------------------------------ audit

    def state_as_of(self, grievance_id: UUID, as_of: datetime) -> Grievance | None:
        """The grievance as it was at ``as_of`` (None if it did not exist yet)."""
        if as_of.tzinfo is None:
            raise ValidationError("naive-datetime", field="as_of")
        return audit.replay(self.history(grievance_id), as_of=as_of)

    def deadline_history(
        self, grievance_id: UUID, now: datetime | None = None
    ) -> list[audit.DeadlineRecord]:
        """Every deadline of one grievance: due, met or not, by how long, what followed."""
        return audit.deadline_history(self.history(grievance_id), now or self._now())

    def department_lateness(
        self,
        department: str,
        date_from: datetime,
        date_to: datetime,
        now: datetime | None = None,
    ) -> list[audit.DeadlineRecord]:
        """Deadlines of one department due within [date_from, date_to) that it missed."""
        self.policies.directory.department(department)
        now = now or self._now()
        involved: set[UUID] = set()
        for recorded in self.iter_all_events():
            items = getattr(recorded, "assignments", None) or [
                getattr(recorded, "assignment", None)
            ]
            for item in items:
                if isinstance(item, dict) and item.get("department") == department:
                    involved.add(UUID(str(recorded.originator_id)))
        missed: list[audit.DeadlineRecord] = []
        for grievance_id in sorted(involved, key=str):
            for record in audit.missed_deadlines(self.history(grievance_id), now, department):
                if date_from <= record.due < date_to:
                    missed.append(record)
        return sorted(missed, key=lambda r: (r.due, r.number))

    def iter_all_events(self, page: int = 500) -> Iterator[DomainEventProtocol[UUID]]:
        """Every grievance event in log order (case-number claims left out)."""
        start = 1
        while True:
            notifications = self.recorder.select_notifications(start, page)
            if not notifications:
                return
            for notification in notifications:
                start = notification.id + 1
                if notification.topic.startswith(_GRIEVANCE_TOPIC):
                    yield self.mapper.to_domain_event(notification)

    # -------------------------------------------------------------- integrity

    def verify_grievance(self, grievance_id: UUID) -> BrokenLink | None:
        """Recompute one grievance's hash chain from its stored events."""
        events = []
        for stored in self.recorder.select_events(grievance_id):
            try:
                events.append(self.mapper.to_domain_event(stored))
            except Exception as error:  # a stored event that no longer decodes is tampering
                return BrokenLink(
                    grievance_id,
                    stored.originator_version,
                    stored.topic.rpartition(".")[2],
                    "decodable event",
                    repr(error),
                    "the stored event no longer decodes",
                )
        if not events:
            raise GrievanceNotFoundError(grievance_id=str(grievance_id))
        return verify_chain(grievance_id, events)

    def verify_all(self, page: int = 500) -> tuple[int, list[BrokenLink]]:
        """Walk the whole log; answer (grievances checked, first broken link of each)."""
        previous: dict[UUID, tuple[str, int]] = {}
        broken: dict[UUID, BrokenLink] = {}
        start = 1
        while True:
            notifications = self.recorder.select_notifications(start, page)
            if not notifications:
                break
            for notification in notifications:
                start = notification.id + 1
                if not notification.topic.startswith(_GRIEVANCE_TOPIC):
                    continue
                gid = UUID(str(notification.originator_id))
                if gid in broken:
                    continue
                try:
                    event = self.mapper.to_domain_event(notification)
                except Exception as error:
                    broken[gid] = BrokenLink(
                        gid,
                        notification.originator_version,
                        notification.topic.rpartition(".")[2],
                        "decodable event",
                        repr(error),
                        "the stored event no longer decodes",
                    )
                    continue
                prev_hash, prev_version = previous.get(gid, (GENESIS, 0))
                link = verify_chain_step(gid, event, prev_hash, prev_version + 1)
                if link is not None:
                    broken[gid] = link
                else:
                    previous[gid] = (event.chain_hash, event.originator_version)  # type: ignore[attr-defined]
        return len(previous.keys() | broken.keys()), sorted(
            broken.values(), key=lambda b: (str(b.grievance_id), b.version)
        )

    # --------------------------------------------------------------- plumbing

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return now.astimezone(UTC)

    def _save(self, *aggregates: Aggregate) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrentWriteError() from None

    def _result(self, grievance: Grievance, replayed: bool = False, **extra: Any) -> CommandResult:
        return CommandResult(
            grievance_id=grievance.id,
            number=grievance.number,
            version=grievance.version,
            status=grievance.status.value,
            replayed=replayed,
            extra=extra,
        )

    def _execute(
        self,
        grievance: Grievance,
        command_id: str | None,
        expected_version: int | None,
        mutate: Callable[[Grievance, str, datetime], dict[str, Any] | None],
    ) -> CommandResult:
        cmd = command_id or str(uuid4())
        applied = grievance.applied_commands.get(cmd)
        if applied is not None:
            return CommandResult(
                grievance_id=grievance.id,
                number=grievance.number,
                version=applied.version,
                status=applied.status.value,
                replayed=True,
                extra=dict(applied.extra),
            )
        if expected_version is not None and grievance.version != expected_version:
            raise StaleVersionError(
                number=grievance.number, version=grievance.version, expected=expected_version
            )
        extra = mutate(grievance, cmd, self._now()) or {}
        self._save(grievance)
        return self._result(grievance, **extra)

    def _command(
        self,
        grievance_id: UUID,
        command_id: str | None,
        expected_version: int | None,
        mutate: Callable[[Grievance, str, datetime], dict[str, Any] | None],
    ) -> CommandResult:
        return self._execute(self.get_grievance(grievance_id), command_id, expected_version, mutate)

    def _assignment_command(
        self,
        assignment_id: str,
        command_id: str | None,
        expected_version: int | None,
        mutate: Callable[[Grievance, str, datetime], dict[str, Any] | None],
    ) -> CommandResult:
        return self._execute(
            self.get_by_assignment(assignment_id), command_id, expected_version, mutate
        )

    def _new_work(
        self, grievance: Grievance, department: str, role: AssignmentRole, now: datetime
    ) -> NewAssignment:
        self.policies.directory.department(department)
        assert grievance.sla_class is not None and grievance.urgency is not None
        deadlines = self.policies.sla.assignment_deadlines(
            grievance.sla_class, grievance.urgency, now
        )
        return NewAssignment(
            department=department,
            role=role,
            sign_for_deadline=deadlines.sign_for,
            resolve_deadline=deadlines.resolve,
        )

    # ------------------------------------------------------------------ intake

    def receive_grievance(
        self,
        actor: Actor,
        *,
        channel: str,
        citizen_name: str,
        citizen_phone: str,
        text: str,
        location: Location,
        occurred_at: datetime | None = None,
        command_id: str | None = None,
    ) -> CommandResult:
        """受理: record a new grievance and give it a case number."""
        cmd = command_id or str(uuid4())
        grievance_id = grievance_id_for(cmd)
        try:
            existing = self.get_grievance(grievance_id)
        except GrievanceNotFoundError:
            pass
        else:
            return self._result(existing, replayed=True)
        channel_value = parse_enum(Channel, channel, "channel").value
        name = clean_text(citizen_name, "citizen_name", max_len=50)
        phone = clean_phone(citizen_phone)
        body = clean_text(text, "text", max_len=MAX_TEXT)
        address = clean_text(location.address, "location.address", max_len=200, required=False)
        location = Location(
            location.district, location.street, location.community, location.grid, address
        )
        self.policies.directory.check_location(location)
        if occurred_at is not None and occurred_at.tzinfo is None:
            raise ValidationError("naive-datetime", field="occurred_at")
        now = self._now()
        if occurred_at is not None and occurred_at > now:
            raise ValidationError(
                "in-the-future", field="occurred_at", value=occurred_at.isoformat()
            )
        Grievance.check_role(Action.RECEIVE, actor)
        local_day = now.astimezone(self.policies.calendar.tz).strftime("%Y%m%d")
        for attempt in range(20):
            number = propose_case_number(grievance_id, local_day, attempt)
            grievance = Grievance(
                id=grievance_id,
                number=number,
                channel=channel_value,
                citizen_name=name,
                citizen_phone=phone,
                text=body,
                location=location.as_dict(),
                occurred_at=occurred_at.astimezone(UTC) if occurred_at else None,
                principal=actor.principal,
                role=actor.role.value,
                at=now,
                command_id=cmd,
            )
            claim = CaseNumber(id=case_number_id(number), number=number, grievance_id=grievance_id)
            try:
                self.save(grievance, claim)
            except IntegrityError:
                try:
                    # The same command saved concurrently: answer its result.
                    return self._result(self.get_grievance(grievance_id), replayed=True)
                except GrievanceNotFoundError:
                    continue  # the number was taken: try the next one
            return self._result(grievance)
        raise ConcurrentWriteError(number_attempts=20)

    def classify_grievance(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        category: str,
        urgency: str | None = None,
        reason: str | None = None,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """梳理: category leaf (its SLA class follows) and urgency (or the category's default)."""
        leaf = self.policies.categories.leaf(category)
        level = parse_enum(
            Urgency, urgency or leaf.default_urgency or Urgency.NORMAL.value, "urgency"
        )
        assert leaf.sla_class is not None
        sla_class = leaf.sla_class

        def mutate(g: Grievance, cmd: str, now: datetime) -> None:
            g.classify(actor, now, cmd, leaf.code, level.value, sla_class, reason)

        return self._command(grievance_id, command_id, expected_version, mutate)

    def reject_grievance(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        reason: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """不予受理."""
        text = clean_text(reason, "reason", max_len=MAX_REASON)
        return self._command(
            grievance_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.reject(actor, now, cmd, text),
        )

    def suggest_route(self, grievance_id: UUID) -> tuple[str, list[str], str]:
        """What the routing rules would dispatch: (lead, assisting, rule)."""
        grievance = self.get_grievance(grievance_id)
        if grievance.category is None:
            raise grievance.refusal(Action.DISPATCH, "not-classified")
        route = self.policies.routing.route(
            self.policies.categories.leaf(grievance.category),
            Location.from_dict(grievance.location),
            self.policies.directory,
        )
        return route.lead, list(route.assisting), route.rule

    def dispatch_grievance(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        lead: str | None = None,
        assisting: list[str] | None = None,
        reason: str | None = None,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """派单: to the given departments, or where the routing rules send this category."""

        def mutate(g: Grievance, cmd: str, now: datetime) -> dict[str, Any]:
            g.ensure_allowed(Action.DISPATCH, actor, "not-classified")
            assert g.category is not None
            category = self.policies.categories.leaf(g.category)
            if lead is None:
                route = self.policies.routing.route(
                    category, Location.from_dict(g.location), self.policies.directory
                )
                lead_code, assisting_codes, routed_by = (
                    route.lead,
                    list(route.assisting) if assisting is None else list(assisting),
                    route.rule,
                )
            else:
                lead_code, assisting_codes, routed_by = lead, list(assisting or []), "operator"
            self.policies.routing.check(
                category, [lead_code, *assisting_codes], self.policies.directory
            )
            g.dispatch(
                actor,
                now,
                cmd,
                self._new_work(g, lead_code, AssignmentRole.LEAD, now),
                [self._new_work(g, c, AssignmentRole.ASSISTING, now) for c in assisting_codes],
                routed_by,
                reason,
            )
            return {
                "assignments": [
                    a.id for a in g.assignments.values() if a.state is AssignmentState.DISPATCHED
                ]
            }

        return self._command(grievance_id, command_id, expected_version, mutate)

    def arbitrate_return(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        assignment_id: str,
        decision: str,
        department: str | None = None,
        reason: str | None = None,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """仲裁 a returned assignment: re-dispatch it elsewhere or confirm its department."""
        choice = parse_enum(ArbitrationDecision, decision, "decision")

        def mutate(g: Grievance, cmd: str, now: datetime) -> dict[str, Any]:
            returned = g.assignment(assignment_id)
            if choice is ArbitrationDecision.CONFIRM:
                target = department or returned.department
            elif department is None:
                raise ValidationError("required", field="department")
            else:
                target = department
            assert g.category is not None
            self.policies.routing.check(
                self.policies.categories.leaf(g.category), [target], self.policies.directory
            )
            g.arbitrate(
                actor,
                now,
                cmd,
                assignment_id,
                choice,
                self._new_work(g, target, returned.role, now),
                reason,
            )
            return {"assignment_id": list(g.assignments)[-1]}

        return self._command(grievance_id, command_id, expected_version, mutate)

    def merge_grievance(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        into: UUID,
        reason: str | None = None,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """合并: mark a duplicate and link it to its primary, in one atomic save."""
        duplicate = self.get_grievance(grievance_id)
        cmd = command_id or str(uuid4())
        if cmd in duplicate.applied_commands:
            return self._execute(duplicate, cmd, expected_version, lambda g, c, n: None)
        primary = self.get_grievance(into)
        if expected_version is not None and duplicate.version != expected_version:
            raise StaleVersionError(
                number=duplicate.number, version=duplicate.version, expected=expected_version
            )
        now = self._now()
        duplicate.merge(actor, now, cmd, primary.id, primary.number, reason)
        primary.link_duplicate(actor, now, cmd, duplicate.id, duplicate.number)
        self._save(duplicate, primary)
        return self._result(duplicate, into=str(primary.id), into_number=primary.number)

    def withdraw_grievance(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        reason: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """撤件 at the citizen's request."""
        text = clean_text(reason, "reason", max_len=MAX_REASON)
        return self._command(
            grievance_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.withdraw(actor, now, cmd, text),
        )

    # ------------------------------------------------------------ departments

    def sign_for(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """签收."""
        return self._assignment_command(
            assignment_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.sign_for(actor, now, cmd, assignment_id),
        )

    def return_assignment(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        reason: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """退单, with the reason the dispatch centre arbitrates on."""
        text = clean_text(reason, "reason", max_len=MAX_REASON)
        return self._assignment_command(
            assignment_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.return_assignment(
                actor, now, cmd, assignment_id, text, self.policies.sla.redispatch_deadline(now)
            ),
        )

    def report_progress(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        note: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """阶段反馈."""
        text = clean_text(note, "note", max_len=MAX_NOTE)
        return self._assignment_command(
            assignment_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.report_progress(actor, now, cmd, assignment_id, text),
        )

    def request_extension(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        new_deadline: datetime,
        reason: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """延期申请: a later resolve deadline, within the SLA profile's maximum."""
        text = clean_text(reason, "reason", max_len=MAX_REASON)
        if new_deadline.tzinfo is None:
            raise ValidationError("naive-datetime", field="new_deadline")

        def mutate(g: Grievance, cmd: str, now: datetime) -> None:
            assignment = g.assignment(assignment_id)
            base = assignment.resolve_deadline or now
            g.request_extension(
                actor,
                now,
                cmd,
                assignment_id,
                new_deadline,
                self.policies.sla.latest_extension(base),
                text,
            )

        return self._assignment_command(assignment_id, command_id, expected_version, mutate)

    def complete_part(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        account: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """协办 part done."""
        text = clean_text(account, "account", max_len=MAX_NOTE)
        return self._assignment_command(
            assignment_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.complete_part(actor, now, cmd, assignment_id, text),
        )

    def resolve(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        account: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """办结 by the lead department; opens the 回访 window."""
        text = clean_text(account, "account", max_len=MAX_NOTE)
        return self._assignment_command(
            assignment_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.resolve(
                actor, now, cmd, assignment_id, text, self.policies.sla.feedback_deadline(now)
            ),
        )

    def report_in(
        self,
        assignment_id: str,
        actor: Actor,
        *,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """报到 after a summons."""
        return self._assignment_command(
            assignment_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.report_in(actor, now, cmd, assignment_id),
        )

    # ------------------------------------------------------------- supervisors

    def decide_extension(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        assignment_id: str,
        granted: bool,
        reason: str | None = None,
        new_deadline: datetime | None = None,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Grant or deny a waiting extension request."""
        text = clean_text(reason, "reason", max_len=MAX_REASON, required=not granted)
        return self._command(
            grievance_id,
            command_id,
            expected_version,
            lambda g, cmd, now: g.decide_extension(
                actor, now, cmd, assignment_id, granted, text or None, new_deadline
            ),
        )

    def summon_departments(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        departments: list[str],
        reason: str,
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """吹哨: each summoned department must 报到 before its report-in deadline."""
        text = clean_text(reason, "reason", max_len=MAX_REASON)

        def mutate(g: Grievance, cmd: str, now: datetime) -> dict[str, Any]:
            due = self.policies.sla.report_in_deadline(now)
            for code in departments:
                self.policies.directory.department(code)
            before = len(g.assignments)
            g.summon(
                actor,
                now,
                cmd,
                [
                    NewAssignment(code, AssignmentRole.SUMMONED, report_in_deadline=due)
                    for code in departments
                ],
                text,
            )
            return {"assignments": list(g.assignments)[before:]}

        return self._command(grievance_id, command_id, expected_version, mutate)

    def urge(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        kind: str,
        assignment_id: str | None = None,
        due: datetime | None = None,
        reason: str | None = None,
        command_id: str | None = None,
        only_if_open: bool = False,
    ) -> CommandResult:
        """催办 whoever owns an open deadline.

        With ``only_if_open`` (how the workflows call it), a deadline that was met,
        moved or is gone records nothing and answers ``recorded=False``.
        """
        deadline_kind = parse_enum(DeadlineKind, kind, "kind")
        grievance = self.get_grievance(grievance_id)
        if (
            only_if_open
            and (command_id is None or command_id not in grievance.applied_commands)
            and grievance.find_open_deadline(deadline_kind, assignment_id, due) is None
        ):
            return self._not_recorded(grievance)
        return self._execute(
            grievance,
            command_id,
            None,
            lambda g, cmd, now: g.urge(actor, now, cmd, deadline_kind, assignment_id, reason),
        )

    def escalate(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        level: int,
        reason: str,
        kind: str | None = None,
        assignment_id: str | None = None,
        due: datetime | None = None,
        command_id: str | None = None,
        expected_version: int | None = None,
        only_if_open: bool = False,
    ) -> CommandResult:
        """督办 / 提级, by hand or by a lapsed deadline."""
        text = clean_text(reason, "reason", max_len=MAX_REASON)
        deadline_kind = parse_enum(DeadlineKind, kind, "kind") if kind else None
        grievance = self.get_grievance(grievance_id)
        if (
            only_if_open
            and deadline_kind is not None
            and (command_id is None or command_id not in grievance.applied_commands)
            and grievance.find_open_deadline(deadline_kind, assignment_id, due) is None
        ):
            return self._not_recorded(grievance)
        return self._execute(
            grievance,
            command_id,
            expected_version,
            lambda g, cmd, now: g.escalate(
                actor, now, cmd, level, text, deadline_kind, assignment_id
            ),
        )

    def _not_recorded(self, grievance: Grievance) -> CommandResult:
        result = self._result(grievance)
        return CommandResult(
            grievance_id=result.grievance_id,
            number=result.number,
            version=result.version,
            status=result.status,
            recorded=False,
        )

    # ---------------------------------------------------------------- feedback

    def record_feedback(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        contacted: bool,
        resolved: bool | None = None,
        satisfaction: str | None = None,
        comment: str = "",
        command_id: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """回访 result: closes the loop, or reopens (重办) to the same departments."""
        level = parse_enum(Satisfaction, satisfaction, "satisfaction") if satisfaction else None
        text = clean_text(comment, "comment", max_len=MAX_NOTE, required=False)

        def mutate(g: Grievance, cmd: str, now: datetime) -> None:
            reopen: list[NewAssignment] = []
            lead = g.lead_department
            if lead is not None:
                reopen.append(self._new_work(g, lead, AssignmentRole.LEAD, now))
                reopen.extend(
                    self._new_work(g, code, AssignmentRole.ASSISTING, now)
                    for code in g.assisting_departments
                )
            g.record_feedback(
                actor,
                now,
                cmd,
                contacted,
                resolved,
                level,
                text,
                reopen,
                self.policies.sla.profile.reopen_escalation_threshold,
            )

        return self._command(grievance_id, command_id, expected_version, mutate)

    def close_grievance(
        self,
        grievance_id: UUID,
        actor: Actor,
        *,
        outcome: str,
        reason: str | None = None,
        command_id: str | None = None,
        only_if_open: bool = False,
    ) -> CommandResult:
        """归档 without feedback, e.g. the 回访 window lapsed (outcome ``no_response``)."""
        result = parse_enum(Outcome, outcome, "outcome")
        grievance = self.get_grievance(grievance_id)
        if (
            only_if_open
            and (command_id is None or command_id not in grievance.applied_commands)
            and grievance.find_open_deadline(DeadlineKind.FEEDBACK, None) is None
        ):
            return self._not_recorded(grievance)
        return self._execute(
            grievance,
            command_id,
            None,
            lambda g, cmd, now: g.close(actor, now, cmd, result, reason),
        )


__all__ = [
    "CaseNumber",
    "CommandResult",
    "DomainError",
    "GrievanceApp",
    "grievance_id_for",
    "split_assignment_id",
]
