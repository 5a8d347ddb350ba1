"""SLA policy: windows per SLA class and urgency, turned into deadline instants by the calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from domain.errors import ValidationError
from domain.policies.calendar import BusinessCalendar

T = TypeVar("T")

_UNITS = ("working_days", "working_hours", "hours", "minutes", "seconds")


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time: working days/hours (through the calendar) or plain clock time."""

    unit: str
    amount: float

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Window:
        if len(data) != 1:
            raise ValueError(f"a window has exactly one unit, got {data}")
        ((unit, amount),) = data.items()
        if unit not in _UNITS:
            raise ValueError(f"unknown window unit {unit!r}; use one of {_UNITS}")
        return cls(unit, float(amount))

    def after(self, start: datetime, calendar: BusinessCalendar) -> datetime:
        if self.unit == "working_days":
            return calendar.add_working_days(start, int(self.amount))
        if self.unit == "working_hours":
            return calendar.add_working_time(start, timedelta(hours=self.amount))
        return start + timedelta(**{self.unit: self.amount})

    def describe(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount} {self.unit.replace('_', ' ')}"


@dataclass(frozen=True)  # not slots: a slotted generic dataclass breaks super()
class SignForResolve(Generic[T]):
    """The two deadlines of every assignment: as windows (the policy) or as instants."""

    sign_for: T
    resolve: T


Windows = SignForResolve[Window]
AssignmentDeadlines = SignForResolve[datetime]


@dataclass(frozen=True, slots=True)
class SlaProfile:
    name: str
    classes: dict[str, Windows]
    urgency: dict[str, Windows]
    report_in: Window
    redispatch: Window
    feedback: Window
    extension_max: Window
    urge_share: float  # share of a window after which the department is urged (催办)
    level2_after: Window  # lapse after a missed deadline before level-2 escalation
    reopen_escalation_threshold: int  # the reopening that escalates to level 3 (兜底办)
    # Whether a grievance answered at intake (直接答复) still gets a 回访 (then it waits
    # resolved, with the feedback window) or is closed at once.
    answered_at_intake_callback: bool = False

    @classmethod
    def from_data(cls, name: str, data: dict[str, Any]) -> SlaProfile:
        def windows(d: dict[str, Any]) -> Windows:
            return Windows(Window.from_data(d["sign_for"]), Window.from_data(d["resolve"]))

        share = float(data["urge_share"])
        if not 0 < share < 1:
            raise ValueError("urge_share must lie strictly between 0 and 1")
        return cls(
            name=name,
            classes={k: windows(v) for k, v in data["classes"].items()},
            urgency={k: windows(v) for k, v in data.get("urgency", {}).items()},
            report_in=Window.from_data(data["report_in"]),
            redispatch=Window.from_data(data["redispatch"]),
            feedback=Window.from_data(data["feedback"]),
            extension_max=Window.from_data(data["extension_max"]),
            urge_share=share,
            level2_after=Window.from_data(data["level2_after"]),
            reopen_escalation_threshold=int(data["reopen_escalation_threshold"]),
            answered_at_intake_callback=bool(data.get("answered_at_intake_callback", False)),
        )


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    profile: SlaProfile
    calendar: BusinessCalendar

    def assignment_deadlines(
        self, sla_class: str, urgency: str, start: datetime
    ) -> AssignmentDeadlines:
        """The earlier of the class's and the urgency's windows, for each deadline."""
        windows = self.profile.classes.get(sla_class)
        if windows is None:
            raise ValidationError("unknown-sla-class", field="sla_class", sla_class=sla_class)
        sign_for = windows.sign_for.after(start, self.calendar)
        resolve = windows.resolve.after(start, self.calendar)
        override = self.profile.urgency.get(urgency)
        if override is not None:
            sign_for = min(sign_for, override.sign_for.after(start, self.calendar))
            resolve = min(resolve, override.resolve.after(start, self.calendar))
        return AssignmentDeadlines(sign_for, max(resolve, sign_for))

    def report_in_deadline(self, start: datetime) -> datetime:
        return self.profile.report_in.after(start, self.calendar)

    def redispatch_deadline(self, start: datetime) -> datetime:
        return self.profile.redispatch.after(start, self.calendar)

    def feedback_deadline(self, start: datetime) -> datetime:
        return self.profile.feedback.after(start, self.calendar)

    def latest_extension(self, start: datetime) -> datetime:
        return self.profile.extension_max.after(start, self.calendar)

    def urge_at(self, start: datetime, deadline: datetime) -> datetime:
        return start + (deadline - start) * self.profile.urge_share

    def level2_at(self, deadline: datetime) -> datetime:
        return self.profile.level2_after.after(deadline, self.calendar)
