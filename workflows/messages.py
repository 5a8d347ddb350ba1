"""The small dataclasses that cross the Temporal boundary: signal envelope, inputs, results.

Everything here is plain data (str, int, bool, datetime, lists of dataclasses), so the
pydantic data converter round-trips it exactly and fields can be added later with
defaults without breaking running workflows. The only domain import is
``domain.model`` (values and enums, no I/O), passed through the workflow sandbox with
this module; the constants below are its plain-string values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from domain import model

# Deadline kinds, as the plain strings workflow state carries.
SIGN_FOR = model.DeadlineKind.SIGN_FOR.value
RESOLVE = model.DeadlineKind.RESOLVE.value
REPORT_IN = model.DeadlineKind.REPORT_IN.value
REDISPATCH = model.DeadlineKind.REDISPATCH.value
FEEDBACK = model.DeadlineKind.FEEDBACK.value

# The one definition lives in the domain (domain.model.FINAL_STATUSES).
FINAL_STATUSES = frozenset(status.value for status in model.FINAL_STATUSES)


def workflow_id_for(grievance_id: str) -> str:
    return f"grievance-{grievance_id}"


@dataclass
class DeadlineRef:
    """One open deadline: its kind, when it is due and, for a department's, the assignment."""

    kind: str
    due: datetime
    assignment_id: str | None = None
    department: str | None = None


@dataclass(kw_only=True)
class DeadlineInfo(DeadlineRef):
    """One open deadline as the grievance's events set it, with its ladder instants.

    ``urge_at`` (the SLA profile's share of the window) and ``level2_at`` (the lapse
    after the deadline) are computed by the relay from the same policy the domain used,
    so the workflow only waits; it never recomputes a deadline.
    """

    urge_at: datetime
    level2_at: datetime


@dataclass
class AssignmentInfo:
    """One department's part in the current round (lead, assisting or summoned)."""

    assignment_id: str
    department: str
    role: str
    round: int
    state: str
    notify: bool = False  # the department has a webhook: announce the assignment


@dataclass
class EventRef:
    """A domain event the envelope covers: its class name and aggregate version."""

    type: str
    version: int


@dataclass
class GrievanceUpdate:
    """The relay's signal: what changed, and the grievance's orchestration state after it.

    ``version`` is the aggregate version after the last event in ``events``; a workflow
    ignores an update whose version it has already applied, so a relay that sends the
    same batch twice causes no second effect.
    """

    grievance_id: str
    version: int
    status: str
    events: list[EventRef] = field(default_factory=list)
    number: str = ""
    round: int = 0
    reopen_count: int = 0
    deadlines: list[DeadlineInfo] = field(default_factory=list)
    assignments: list[AssignmentInfo] = field(default_factory=list)


@dataclass
class NotifyInput:
    """One signed outbound notification to one department."""

    grievance_id: str
    department: str
    event: str  # assigned | summoned | urged | escalated
    idempotency_key: str
    number: str = ""
    assignment_id: str | None = None
    kind: str | None = None
    deadline: datetime | None = None
    level: int | None = None


@dataclass
class WorkflowState:
    """What a run carries into the next one through continue-as-new."""

    version: int = 0
    status: str = "received"
    number: str = ""
    round: int = 0
    reopen_count: int = 0
    deadlines: list[DeadlineInfo] = field(default_factory=list)
    assignments: list[AssignmentInfo] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # ladder steps already acted on
    applied_versions: list[int] = field(default_factory=list)  # last few, for audits/tests
    updates_applied: int = 0
    duplicates_ignored: int = 0
    steps_recorded: int = 0
    runs: int = 1


@dataclass
class GrievanceWorkflowInput:
    grievance_id: str
    state: WorkflowState | None = None


@dataclass
class GrievanceOutcome:
    grievance_id: str
    status: str
    version: int
    runs: int


@dataclass(kw_only=True)
class LadderStep(DeadlineRef):
    """A step of the escalation ladder on one open deadline of a grievance, with the
    command id that makes a retried step record nothing twice."""

    grievance_id: str
    command_id: str


@dataclass
class UrgeInput(LadderStep):
    """催办: remind whoever holds the deadline."""


@dataclass(kw_only=True)
class EscalateInput(LadderStep):
    """督办 at ``level`` (1 at the deadline, 2 after the lapse)."""

    level: int


@dataclass
class CloseInput:
    grievance_id: str
    due: datetime
    command_id: str
    outcome: str = "no_response"


@dataclass
class StepResult:
    """What a deadline step did: ``recorded`` False = the deadline was met or moved."""

    recorded: bool
    replayed: bool
    version: int
    status: str
    department: str | None = None
    notify: bool = False  # the department has a webhook configured


@dataclass
class NotifyResult:
    delivered: bool
    status_code: int | None = None
    skipped_reason: str | None = None


# ------------------------------------------------------------------ rating rounds


def round_workflow_id(round_id: UUID | str) -> str:
    return f"rating-round-{round_id}"


@dataclass
class RoundInput:
    round_id: str
    urge_at: datetime
    deadline: datetime


@dataclass
class RoundStepInput:
    round_id: str
    action: str  # urge_round | close_round | publish_round


@dataclass
class RoundStepResult:
    status: str
    recorded: bool
