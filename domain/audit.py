"""Audit replay over a grievance's stored events: state as of an instant, and who was late.

Pure functions over events already read from the store. Deadlines are judged on the
business instant ``at`` every event carries (the same clock that computed them);
"as of" an instant uses the events' recording timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.grievance import Grievance
from domain.model import Deadline, DeadlineKind


def replay(events: Sequence[Any], *, as_of: datetime | None = None) -> Grievance | None:
    """The aggregate rebuilt from its events recorded up to ``as_of`` (all when None)."""
    grievance: Grievance | None = None
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        grievance = event.mutate(grievance)
    return grievance


@dataclass(frozen=True)
class DeadlineAt:
    """A deadline open at some instant, and whether it had already passed."""

    kind: str
    due: datetime
    assignment_id: str | None
    department: str | None
    overdue: bool
    overdue_by_seconds: float


def deadlines_at(grievance: Grievance, at: datetime) -> list[DeadlineAt]:
    at = at.astimezone(UTC)
    return [
        DeadlineAt(
            kind=d.kind.value,
            due=d.due,
            assignment_id=d.assignment_id,
            department=d.department,
            overdue=d.due < at,
            overdue_by_seconds=max(0.0, (at - d.due).total_seconds()),
        )
        for d in grievance.open_deadlines()
    ]


@dataclass
class FollowUp:
    """What happened after a deadline was missed (or while it ran)."""

    at: datetime
    action: str  # urged | escalated | extension_requested | extension_granted | extension_denied
    level: int | None = None
    detail: str | None = None  # a person's reason (or the granted deadline)
    reason_code: str | None = None  # why the workflows acted (domain.model.ReasonCode)
    reason_params: dict[str, Any] | None = None


@dataclass
class DeadlineRecord:
    """One deadline over its life: when it was due, whether and when it was met."""

    grievance_id: UUID
    number: str
    kind: str
    assignment_id: str | None
    department: str | None
    due: datetime
    # met | met_late | lapsed | returned | superseded | cancelled | open | open_overdue
    outcome: str
    closed_at: datetime | None = None
    late_by_seconds: float = 0.0
    follow_ups: list[FollowUp] = field(default_factory=list)
    original_due: datetime | None = None  # before extensions moved it

    @property
    def missed(self) -> bool:
        return self.outcome in MISSED_OUTCOMES or (
            self.outcome in ENDED_OUTCOMES and self.late_by_seconds > 0
        )


# A deadline was missed when it ended (or still runs) one of these ways, or ended one of
# ``ENDED_OUTCOMES`` ways after it had passed (the deadline read model asks the same).
MISSED_OUTCOMES = ("met_late", "open_overdue", "lapsed")
ENDED_OUTCOMES = ("returned", "superseded", "cancelled")


# Events that end a deadline without the owner meeting it.
_SUPERSEDING = {"Arbitrated", "Reopened"}
_CANCELLING = {"Merged", "Withdrawn", "Rejected", "Closed"}


DeadlineKey = tuple[str, str | None]  # (kind, assignment_id): one open deadline


def open_deadline_map(grievance: Grievance | None) -> dict[DeadlineKey, Deadline]:
    if grievance is None:
        return {}
    return {(d.kind.value, d.assignment_id): d for d in grievance.open_deadlines()}


class DeadlineJudge:
    """Judges a grievance's deadlines event by event: ``open`` holds a record per open
    deadline (it mirrors the grievance's open deadlines after each event), ``finished``
    the records an event ended. The audit replay and the deadline read model both step
    it, so a deadline is judged one way only."""

    def __init__(self, open_records: dict[DeadlineKey, DeadlineRecord] | None = None) -> None:
        self.open: dict[DeadlineKey, DeadlineRecord] = dict(open_records or {})
        self.finished: list[DeadlineRecord] = []

    def step(self, event: Any, after: Grievance, after_open: dict[DeadlineKey, Deadline]) -> None:
        """One event: ``after`` is its grievance once it applied, ``after_open`` that
        grievance's open deadlines (``open_deadline_map``)."""
        name = type(event).__name__
        at: datetime = getattr(event, "at", event.timestamp)
        _note_follow_up(self.open, event, name, at)
        for key, record in list(self.open.items()):
            if key not in after_open:
                late = max(0.0, (at - record.due).total_seconds())
                outcome = _outcome(event, name, DeadlineKind(record.kind), late)
                record.outcome, record.closed_at, record.late_by_seconds = outcome, at, late
                self.finished.append(self.open.pop(key))
            elif after_open[key].due != record.due:
                record.original_due = record.original_due or record.due
                record.due = after_open[key].due
        for key, deadline in after_open.items():
            if key not in self.open:
                self.open[key] = _new_record(after, deadline)


def judged_open(record: DeadlineRecord, now: datetime) -> DeadlineRecord:
    """An open record judged against ``now`` (open, or open_overdue by how much)."""
    late = max(0.0, (now - record.due).total_seconds())
    record.outcome = "open_overdue" if late > 0 else "open"
    record.late_by_seconds = late
    return record


def deadline_history(events: Sequence[Any], now: datetime) -> list[DeadlineRecord]:
    """Every deadline the grievance ever had, judged against when each was met.

    Replays the events one by one; a deadline that disappears from the open set was
    met by the event that closed it (or ended by a re-dispatch, reopening or close).
    A deadline still open is judged against ``now``.
    """
    now = now.astimezone(UTC)
    judge = DeadlineJudge()
    grievance: Grievance | None = None
    for event in events:
        grievance = event.mutate(grievance)
        assert grievance is not None
        judge.step(event, grievance, open_deadline_map(grievance))
    finished = judge.finished + [judged_open(r, now) for r in judge.open.values()]
    return sorted(finished, key=lambda r: (r.due, r.kind, r.assignment_id or ""))


def _outcome(event: Any, name: str, kind: DeadlineKind, late: float) -> str:
    """How the event that removed a deadline from the open set ended it."""
    met = "met_late" if late > 0 else "met"
    if kind is DeadlineKind.FEEDBACK:
        if name == "Closed" and getattr(event, "outcome", None) == "no_response":
            return "lapsed"
        return met if name in ("Closed", "Reopened") else "cancelled"
    if kind is DeadlineKind.REDISPATCH and name == "Arbitrated":
        return met
    if name == "Returned":
        return "returned"
    if name in _SUPERSEDING or (name == "Resolved" and kind is DeadlineKind.REPORT_IN):
        return "superseded"
    if name in _CANCELLING:
        return "cancelled"
    return met


def _new_record(grievance: Grievance, deadline: Deadline) -> DeadlineRecord:
    return DeadlineRecord(
        grievance_id=grievance.id,
        number=grievance.number,
        kind=deadline.kind.value,
        assignment_id=deadline.assignment_id,
        department=deadline.department,
        due=deadline.due,
        outcome="open",
    )


def _code(event: Any) -> dict[str, Any]:
    # Events stored before reason codes existed have neither attribute.
    return {
        "reason_code": getattr(event, "reason_code", None),
        "reason_params": getattr(event, "reason_params", None),
    }


def _note_follow_up(
    records: dict[DeadlineKey, DeadlineRecord], event: Any, name: str, at: datetime
) -> None:
    assignment_id = getattr(event, "assignment_id", None)
    if name == "Urged":
        key = (event.kind, assignment_id)
        if key in records:
            records[key].follow_ups.append(
                FollowUp(at, "urged", detail=event.reason, **_code(event))
            )
    elif name == "Escalated":
        targets = (
            [(event.kind, assignment_id)]
            if event.kind
            else [k for k in records if assignment_id is None or k[1] == assignment_id]
        )
        for key in targets:
            if key in records:
                records[key].follow_ups.append(
                    FollowUp(
                        at, "escalated", level=event.level, detail=event.reason, **_code(event)
                    )
                )
    elif name in ("ExtensionRequested", "ExtensionGranted", "ExtensionDenied"):
        key = (DeadlineKind.RESOLVE.value, assignment_id)
        if key in records:
            action = {
                "ExtensionRequested": "extension_requested",
                "ExtensionGranted": "extension_granted",
                "ExtensionDenied": "extension_denied",
            }[name]
            detail = event.reason
            if name == "ExtensionGranted":
                detail = f"{event.new_deadline.isoformat()} {event.reason or ''}".strip()
            records[key].follow_ups.append(FollowUp(at, action, detail=detail))


def missed_deadlines(
    events: Sequence[Any], now: datetime, department: str | None = None
) -> list[DeadlineRecord]:
    """The deadlines that were missed (met late, or open past due), optionally of one owner."""
    return [
        r
        for r in deadline_history(events, now)
        if r.missed and (department is None or r.department == department)
    ]


def late_by_text(seconds: float) -> str:
    """A short human reading of a lateness, e.g. '2d 3h 5m'."""
    delta = timedelta(seconds=int(seconds))
    days, rest = divmod(delta.total_seconds(), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{int(days)}d"] if days else []
    if hours:
        parts.append(f"{int(hours)}h")
    if minutes:
        parts.append(f"{int(minutes)}m")
    if not parts:
        parts.append(f"{int(secs)}s")
    return " ".join(parts)
