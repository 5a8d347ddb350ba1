"""The policy what-if's request and answer (``POST /v1/what-if``, ``closeloop what-if``):
a proposed SLA profile and/or calendar in the shapes of ``domain/policies/sla.json`` and
``calendar.json``, bounded; ``what_if_answer`` computes the answer for both."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from api.catalogue import department_name
from api.i18n import Lang
from api.schemas import Code, Day, Request, _example
from domain.application import GrievanceApp
from domain.policies import SlaPolicy
from domain.whatif import (
    DepartmentWhatIf,
    Rerouted,
    base_policy,
    propose,
    propose_routing,
    reroute_period,
    total,
    what_if,
)

# A window's amount is bounded per unit to about a year: a deadline further away is not a
# proposal anyone makes, and the calendar walks day by day.
WINDOW_MAX = {
    "working_days": 366,
    "working_hours": 366 * 24,
    "hours": 366 * 24,
    "minutes": 366 * 24 * 60,
    "seconds": 366 * 24 * 3600,
}
Unit = Literal["working_days", "working_hours", "hours", "minutes", "seconds"]


def _one_bounded_unit(value: dict[Unit, float]) -> dict[Unit, float]:
    if len(value) != 1:
        raise ValueError('a window has exactly one unit, e.g. {"working_hours": 2}')
    ((unit, amount),) = value.items()
    if not 0 <= amount <= WINDOW_MAX[unit]:
        raise ValueError(f"{unit} must lie between 0 and {WINDOW_MAX[unit]}")
    return value


WindowIn = Annotated[dict[Unit, float], AfterValidator(_one_bounded_unit)]


class WindowsIn(Request):
    sign_for: WindowIn | None = None
    resolve: WindowIn | None = None


class SlaProposal(Request):
    """Windows replacing the base profile's; what is not named stays as it is."""

    classes: dict[Code, WindowsIn] = Field(default_factory=dict, max_length=20)
    urgency: dict[Code, WindowsIn] = Field(default_factory=dict, max_length=20)
    report_in: WindowIn | None = None
    redispatch: WindowIn | None = None
    feedback: WindowIn | None = None


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("working hours are local times, without an offset")
    return value


LocalTime = Annotated[time, AfterValidator(_local)]


class Span(Request):
    start: LocalTime
    end: LocalTime


def _in_order(spans: list[Span]) -> list[Span]:
    previous = time(0)
    for span in spans:
        if not previous <= span.start < span.end:
            raise ValueError("working spans must be non-empty, in order and not overlap")
        previous = span.end
    return spans


def _distinct(days: list[int]) -> list[int]:
    if len(set(days)) != len(days):
        raise ValueError("each weekday at most once")
    return days


class CalendarProposal(Request):
    """Keys replacing the current calendar's (the time zone stays). At least one weekday
    stays a working day."""

    working_hours: Annotated[list[Span], AfterValidator(_in_order)] | None = Field(
        None, min_length=1, max_length=6
    )
    holidays: list[Day] | None = Field(None, max_length=400)
    makeup_workdays: list[Day] | None = Field(None, max_length=100)
    weekend: (
        Annotated[list[Annotated[int, Field(ge=0, le=6)]], AfterValidator(_distinct)] | None
    ) = Field(None, max_length=6)


class RoutingRuleIn(Request):
    """One rule of ``routing.json``: a category (or its parent) at a street or community
    goes to ``lead`` (a department code, or ``street`` / ``community``: the place's own)."""

    category: Code
    lead: Code
    assisting: list[Code] = Field(default_factory=list, max_length=10)
    street: Code | None = None
    community: Code | None = None
    description: str = Field("", max_length=200)


class RoutingProposal(Request):
    """Rules replacing the routing rules in force (the negative list stays)."""

    rules: list[RoutingRuleIn] = Field(max_length=500)


class WhatIfRequest(Request):
    """A past period (local days, inclusive) and the proposal to judge it by."""

    date_from: Day
    date_to: Day
    sla_profile: Code | None = Field(
        None, description="a shipped profile to start from (default: the one in force)"
    )
    sla: SlaProposal | None = None
    calendar: CalendarProposal | None = None
    routing: RoutingProposal | None = None

    model_config = _example(
        {
            "date_from": "2026-11-01",
            "date_to": "2026-11-30",
            "sla": {"classes": {"B": {"sign_for": {"working_hours": 1}}}},
            "calendar": {"holidays": ["2026-11-23"]},
        }
    )


class TallyPublic(BaseModel):
    met: int
    missed: int
    pending: int = Field(description="still open and not yet due at as_of")
    dispatched: int
    signed_for_in_time: int
    response_rate: float | None = Field(description="响应率 = signed_for_in_time / dispatched")


class DepartmentWhatIfPublic(BaseModel):
    department: str = Field(description="department code (empty in the total)")
    name: str
    now: TallyPublic
    proposed: TallyPublic


class LeadsPublic(BaseModel):
    department: str
    name: str
    now: int
    proposed: int


class ReroutedPublic(BaseModel):
    """Lead assignments of the grievances first dispatched in the period, per department:
    as dispatched and under the proposed rules (the operators' own choices stay)."""

    by_rules: int
    moved: int
    by_operator: int
    items: list[LeadsPublic]


class WhatIfPublic(BaseModel):
    date_from: date
    date_to: date
    as_of: datetime
    sla_profile: str = Field(description="the proposal's base profile")
    items: list[DepartmentWhatIfPublic]
    total: DepartmentWhatIfPublic
    routing: ReroutedPublic | None = Field(
        None, description="only when the proposal has routing rules"
    )


def _public(row: DepartmentWhatIf, lang: Lang) -> DepartmentWhatIfPublic:
    return DepartmentWhatIfPublic(
        department=row.department,
        name=department_name(row.department, lang),
        now=TallyPublic.model_validate(row.now, from_attributes=True),
        proposed=TallyPublic.model_validate(row.proposed, from_attributes=True),
    )


def what_if_answer(app: GrievanceApp, body: WhatIfRequest, lang: Lang) -> WhatIfPublic:
    """Judge the period as recorded and under the proposal (``domain.whatif``)."""
    base: SlaPolicy = base_policy(app, body.sla_profile)
    proposal = propose(
        base,
        body.sla.model_dump(exclude_none=True) if body.sla else None,
        body.calendar.model_dump(exclude_none=True, mode="json") if body.calendar else None,
    )
    as_of = app.now()
    rows = what_if(app, proposal, body.date_from, body.date_to, as_of)
    routing = None
    if body.routing is not None:
        rules = [r.model_dump() for r in body.routing.rules]
        p = app.policies
        proposed = propose_routing(p.routing, rules, p.categories, p.directory)
        routing = _rerouted(reroute_period(app, proposed, body.date_from, body.date_to), lang)
    return WhatIfPublic(
        date_from=body.date_from,
        date_to=body.date_to,
        as_of=as_of,
        sla_profile=base.profile.name,
        items=[_public(row, lang) for row in rows],
        total=_public(total(rows), lang),
        routing=routing,
    )


def _rerouted(found: Rerouted, lang: Lang) -> ReroutedPublic:
    codes = sorted(found.now.keys() | found.proposed.keys())
    return ReroutedPublic(
        by_rules=found.by_rules,
        moved=found.moved,
        by_operator=found.by_operator,
        items=[
            LeadsPublic(
                department=code,
                name=department_name(code, lang),
                now=found.now.get(code, 0),
                proposed=found.proposed.get(code, 0),
            )
            for code in codes
        ],
    )
