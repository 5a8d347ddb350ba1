"""Policy what-if: what a proposed SLA profile or calendar would have done to a past period.

Every deadline departments had (签收, 办结, 报到) whose assignment was dispatched in the
period is judged twice against the **same recorded action instants**: once against the
deadline as recorded ("now"), once against the deadline the proposal gives
(``domain.deadlines.due_under``, from the same dispatch instant, SLA class and urgency).
A deadline extended by a granted request keeps the granted instant (or the proposed one,
when later): a supervisor chose it. Nothing is written; the events are read once.

A deadline is *met* when its department acted by it, *missed* when it acted later or the
deadline passed unmet (judged at ``as_of``); *pending* when still open and not yet due;
one ended by someone else before it was due (a re-dispatch, a withdrawal …) counts in
neither. 响应率 = sign-for deadlines met / assignments dispatched, as in
``projections.kpis``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain import audit
from domain.audit_reader import iter_all_events
from domain.deadlines import due_under
from domain.errors import ValidationError
from domain.grievance import Grievance
from domain.model import DeadlineKind, Location
from domain.policies import load_policies, sla_profiles
from domain.policies.calendar import BusinessCalendar
from domain.policies.categories import CategoryTree
from domain.policies.directory import Directory
from domain.policies.routing import RoutingPolicy
from domain.policies.sla import SlaPolicy, SlaProfile, Window, Windows

if TYPE_CHECKING:  # pragma: no cover
    from domain.application import GrievanceApp

DEPARTMENT_KINDS = frozenset(
    {DeadlineKind.SIGN_FOR.value, DeadlineKind.RESOLVE.value, DeadlineKind.REPORT_IN.value}
)
RATE_DIGITS = 4


COUNTS = ("met", "missed", "pending", "dispatched", "signed_for_in_time")


@dataclass
class Tally:
    """One department's deadlines in the period under one policy."""

    met: int = 0
    missed: int = 0
    pending: int = 0
    dispatched: int = 0  # lead and assisting assignments dispatched in the period
    signed_for_in_time: int = 0

    @property
    def response_rate(self) -> float | None:
        if not self.dispatched:
            return None
        return round(self.signed_for_in_time / self.dispatched, RATE_DIGITS)

    def count(self, record: audit.DeadlineRecord, due: datetime, as_of: datetime) -> None:
        verdict = judge(record, due, as_of)
        if verdict is not None:
            setattr(self, verdict, getattr(self, verdict) + 1)
        if record.kind == DeadlineKind.SIGN_FOR.value:
            self.dispatched += 1
            self.signed_for_in_time += verdict == "met"


@dataclass(frozen=True)
class DepartmentWhatIf:
    department: str
    now: Tally = field(default_factory=Tally)
    proposed: Tally = field(default_factory=Tally)


def judge(record: audit.DeadlineRecord, due: datetime, as_of: datetime) -> str | None:
    """``met``, ``missed``, ``pending`` or None (ended for the department in time by
    someone else's act), for the record's real action instant against ``due``."""
    done = record.closed_at
    if done is None:
        return "missed" if as_of > due else "pending"
    if record.outcome in ("met", "met_late"):
        return "missed" if done > due else "met"
    return "missed" if done > due else None


def proposed_due(record: audit.DeadlineRecord, g: Grievance, sla: SlaPolicy) -> datetime:
    assert record.assignment_id is not None
    a = g.assignments[record.assignment_id]
    due = due_under(sla, DeadlineKind(record.kind), a.dispatched_at, g)
    if record.original_due is not None:  # extended by a granted request: keep its instant
        return max(due, record.due)
    return due


def recompute(
    histories: Iterable[Sequence[Any]],
    proposal: SlaPolicy,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> list[DepartmentWhatIf]:
    """Per department, the deadlines of assignments dispatched in [start, end), judged as
    recorded and under ``proposal``; sorted by department code."""
    found: dict[str, DepartmentWhatIf] = {}
    for events in histories:
        g = audit.replay(events)
        if g is None:
            continue
        for record in audit.deadline_history(events, as_of):
            if record.kind not in DEPARTMENT_KINDS or record.department is None:
                continue
            assignment = g.assignments.get(record.assignment_id or "")
            if assignment is None or not start <= assignment.dispatched_at < end:
                continue
            row = found.setdefault(record.department, DepartmentWhatIf(record.department))
            row.now.count(record, record.due, as_of)
            row.proposed.count(record, proposed_due(record, g, proposal), as_of)
    return [found[code] for code in sorted(found)]


@dataclass
class Rerouted:
    """Where the grievances first dispatched in the period went, and would go under the
    proposed routing rules: lead assignments per department. The operators' own choices
    (``routed_by`` ``operator``) stay where they went."""

    now: dict[str, int] = field(default_factory=dict)
    proposed: dict[str, int] = field(default_factory=dict)
    by_rules: int = 0  # dispatched where the rules (or the category's default) said
    moved: int = 0  # of those, to another lead under the proposal
    by_operator: int = 0


def reroute(
    histories: Iterable[Sequence[Any]],
    routing: RoutingPolicy,
    categories: CategoryTree,
    directory: Directory,
    start: datetime,
    end: datetime,
) -> Rerouted:
    """The first dispatch of each grievance in [start, end), routed again by ``routing``
    with the category and place it had then."""
    found = Rerouted()
    for events in histories:
        g: Grievance | None = None
        for event in events:
            g = event.mutate(g)
            if not isinstance(event, Grievance.Dispatched):
                continue
            assert g is not None
            if start <= event.at < end and g.category is not None:
                lead = event.assignments[0]["department"]
                proposed = lead
                if event.routed_by == "operator":
                    found.by_operator += 1
                else:
                    found.by_rules += 1
                    leaf = categories.leaf(g.category)
                    proposed = routing.route(leaf, Location.from_dict(g.location), directory).lead
                    found.moved += proposed != lead
                found.now[lead] = found.now.get(lead, 0) + 1
                found.proposed[proposed] = found.proposed.get(proposed, 0) + 1
            break  # only the first dispatch: later ones follow arbitration or reopening
    return found


# ------------------------------------------------------------------ the proposal


def _windows(base: Windows | None, data: Mapping[str, Any], name: str) -> Windows:
    parts: dict[str, Window] = {}
    for part in ("sign_for", "resolve"):
        if part in data:
            parts[part] = Window.from_data(dict(data[part]))
        elif base is not None:
            parts[part] = getattr(base, part)
        else:
            raise ValidationError("required", field=f"{name}.{part}")
    return Windows(parts["sign_for"], parts["resolve"])


def propose_profile(base: SlaProfile, data: Mapping[str, Any]) -> SlaProfile:
    """``base`` with the windows ``data`` names replaced (the shape of ``sla.json``'s
    profiles: ``classes``/``urgency`` per key with ``sign_for``/``resolve``, and
    ``report_in``, ``redispatch``, ``feedback``)."""

    def table(name: str, current: dict[str, Windows]) -> dict[str, Windows]:
        changed = {
            key: _windows(current.get(key), value, f"sla.{name}.{key}")
            for key, value in dict(data.get(name) or {}).items()
        }
        return {**current, **changed}

    def window(name: str, current: Window) -> Window:
        return Window.from_data(dict(data[name])) if name in data else current

    return replace(
        base,
        name=str(data.get("name") or f"{base.name}*"),
        classes=table("classes", base.classes),
        urgency=table("urgency", base.urgency),
        report_in=window("report_in", base.report_in),
        redispatch=window("redispatch", base.redispatch),
        feedback=window("feedback", base.feedback),
    )


def propose_calendar(base: BusinessCalendar, data: Mapping[str, Any]) -> BusinessCalendar:
    """``base`` with the keys ``data`` gives replaced (the shape of ``calendar.json``)."""
    current: dict[str, Any] = {
        "timezone": base.timezone,
        "working_hours": [{"start": s.isoformat(), "end": e.isoformat()} for s, e in base.spans],
        "holidays": sorted(d.isoformat() for d in base.holidays),
        "makeup_workdays": sorted(d.isoformat() for d in base.makeup_workdays),
        "weekend": sorted(base.weekend),
    }
    return BusinessCalendar.from_data({**current, **data})


def base_policy(app: GrievanceApp, profile: str | None) -> SlaPolicy:
    """The SLA policy in force, or another shipped profile of the same policy directory."""
    if profile is None or profile == app.policies.sla.profile.name:
        return app.policies.sla
    directory = app.env.get("POLICY_DIR")
    folder = Path(directory) if directory else None
    known = sla_profiles(folder)
    if profile not in known:
        raise ValidationError("not-one-of", field="sla_profile", value=profile, allowed=known)
    return load_policies(profile, folder).sla


def propose_routing(
    base: RoutingPolicy,
    rules: Sequence[Mapping[str, Any]],
    categories: CategoryTree,
    directory: Directory,
) -> RoutingPolicy:
    """``base`` with its rules replaced (the shape of ``routing.json``'s ``rules``); the
    negative list stays. Each rule names a known category and departments (or
    ``street`` / ``community``: the place's own office or committee)."""
    proposed = RoutingPolicy.from_data({"rules": [dict(r) for r in rules]})
    for n, rule in enumerate(proposed.rules):
        if rule.category not in categories.by_code:
            raise ValidationError(
                "unknown-category", field=f"routing.rules.{n}.category", category=rule.category
            )
        for code in (rule.lead, *rule.assisting):
            if code not in ("street", "community") and code not in directory.departments:
                raise ValidationError(
                    "unknown-department", field=f"routing.rules.{n}", department=code
                )
    return replace(base, rules=proposed.rules)


def propose(
    base: SlaPolicy,
    profile: Mapping[str, Any] | None = None,
    calendar: Mapping[str, Any] | None = None,
) -> SlaPolicy:
    """The proposed SLA policy: ``base`` with the profile's and the calendar's changes."""
    return SlaPolicy(
        propose_profile(base.profile, profile or {}),
        propose_calendar(base.calendar, calendar or {}),
    )


# ------------------------------------------------------------------ reading


def histories(app: GrievanceApp, end: datetime) -> list[list[Any]]:
    """The recorded events of every grievance received before ``end`` (an assignment
    dispatched before ``end`` can only belong to one of them), read once in log order."""
    found: dict[UUID, list[Any]] = {}
    later: set[UUID] = set()
    for event in iter_all_events(app):
        gid = event.originator_id
        events = found.get(gid)
        if events is None:
            if gid in later:
                continue
            if audit_at(event) >= end:
                later.add(gid)
                continue
            events = found[gid] = []
        events.append(event)
    return list(found.values())


def audit_at(event: Any) -> datetime:
    at: datetime = getattr(event, "at", None) or event.timestamp
    return at


def period(tz: tzinfo, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The instants of local days ``date_from`` .. ``date_to`` (inclusive): [start, end)."""
    start = datetime.combine(date_from, time(0), tzinfo=tz)
    return start, datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz)


def total(rows: Iterable[DepartmentWhatIf]) -> DepartmentWhatIf:
    """Every department's tallies summed (``department`` is empty)."""
    summed = DepartmentWhatIf("")
    for row in rows:
        for mine, theirs in ((summed.now, row.now), (summed.proposed, row.proposed)):
            for name in COUNTS:
                setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
    return summed


def reroute_period(
    app: GrievanceApp, routing: RoutingPolicy, date_from: date, date_to: date
) -> Rerouted:
    """``reroute`` over the recorded events, for the local days ``date_from`` .. ``date_to``."""
    start, end = period(app.policies.calendar.tz, date_from, date_to)
    p = app.policies
    return reroute(histories(app, end), routing, p.categories, p.directory, start, end)


def what_if(
    app: GrievanceApp,
    proposal: SlaPolicy,
    date_from: date,
    date_to: date,
    as_of: datetime | None = None,
) -> list[DepartmentWhatIf]:
    """``recompute`` over the recorded events of the application's log, for the local
    days ``date_from`` .. ``date_to`` of the current calendar."""
    start, end = period(app.policies.calendar.tz, date_from, date_to)
    return recompute(histories(app, end), proposal, start, end, as_of or app.now())
