"""One decide function per command: clean its data, apply the policies, call the aggregate.

``GrievanceApp.handle`` loads the grievance, answers repeats, checks the expected
version, then calls the command's function here and saves what it changed. A
function returns any other aggregate it changed (a merge's primary), or None; what a
command's result carries besides version and status (new assignment ids …) comes
from its last event (``Grievance.Recorded.result``), the same for a repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from eventsourcing.domain import Aggregate

from domain import commands as c
from domain.assignments import NewAssignment, ensure_can_dispatch
from domain.errors import PermissionDeniedError, ValidationError
from domain.evidence import MAX_FILENAME, FileData, check_sha256
from domain.evidence import MAX_NOTE as MAX_ATTACHMENT_NOTE
from domain.grievance import Grievance
from domain.intake import filed_by
from domain.knowledge import MAX_ANSWER, quoted_revisions
from domain.model import (
    Action,
    ArbitrationDecision,
    AssignmentRole,
    DeadlineKind,
    Location,
    Outcome,
    Reason,
    Role,
    Satisfaction,
    Stamp,
    Urgency,
    clean_text,
    parse_enum,
)
from domain.summons import check_department_summons, ratings, summoning_unit

if TYPE_CHECKING:  # pragma: no cover
    from domain.application import GrievanceApp

MAX_TEXT = 4000
MAX_NOTE = 2000
MAX_REASON = 500


C = TypeVar("C", bound=c.Command)
# A decide function returns the other aggregates it changed (a merge's primary), if any.
Changed = tuple[Aggregate, ...] | None
Decide = Callable[["GrievanceApp", Grievance, Any, Stamp], Changed]
HANDLERS: dict[type[c.Command], Decide] = {}


def handles(
    command_type: type[C],
) -> Callable[[Callable[[GrievanceApp, Grievance, C, Stamp], Changed]], Decide]:
    """Register the decide function of ``command_type``; it gets the command's ``Stamp``
    (who, the business instant, the command id) that its events record."""

    def register(decide: Callable[[GrievanceApp, Grievance, C, Stamp], Changed]) -> Decide:
        HANDLERS[command_type] = decide
        return decide

    return register


def reason_text(reason: str | None, *, required: bool = True) -> str:
    return clean_text(reason, "reason", max_len=MAX_REASON, required=required)


def new_work(
    app: GrievanceApp, g: Grievance, department: str, role: AssignmentRole, now: datetime
) -> NewAssignment:
    """A lead or assisting assignment with the SLA policy's deadlines from ``now``."""
    app.policies.directory.department(department)
    assert g.sla_class is not None and g.urgency is not None
    deadlines = app.policies.sla.assignment_deadlines(g.sla_class, g.urgency, now)
    return NewAssignment(department, role, deadlines.sign_for, deadlines.resolve)


# ------------------------------------------------------------------ intake


@handles(c.ClassifyGrievance)
def classify(app: GrievanceApp, g: Grievance, cmd: c.ClassifyGrievance, stamp: Stamp) -> None:
    leaf = app.policies.categories.leaf(cmd.category)
    default = leaf.default_urgency or Urgency.NORMAL.value
    urgency = parse_enum(Urgency, cmd.urgency or default, "urgency")
    assert leaf.sla_class is not None
    g.classify(stamp, leaf.code, urgency.value, leaf.sla_class, cmd.reason)


@handles(c.RejectGrievance)
def reject(app: GrievanceApp, g: Grievance, cmd: c.RejectGrievance, stamp: Stamp) -> None:
    g.reject(stamp, reason_text(cmd.reason))


@handles(c.DispatchGrievance)
def dispatch(app: GrievanceApp, g: Grievance, cmd: c.DispatchGrievance, stamp: Stamp) -> None:
    ensure_can_dispatch(g, cmd.actor)
    assert g.category is not None
    category = app.policies.categories.leaf(g.category)
    if cmd.lead is None:
        route = app.policies.routing.route(
            category, Location.from_dict(g.location), app.policies.directory
        )
        lead, routed_by = route.lead, route.rule
        assisting = list(route.assisting) if cmd.assisting is None else list(cmd.assisting)
    else:
        lead, assisting, routed_by = cmd.lead, list(cmd.assisting or []), "operator"
    app.policies.routing.check(category, [lead, *assisting], app.policies.directory)
    g.dispatch(
        stamp,
        new_work(app, g, lead, AssignmentRole.LEAD, stamp.at),
        [new_work(app, g, code, AssignmentRole.ASSISTING, stamp.at) for code in assisting],
        routed_by,
        cmd.reason,
    )


@handles(c.ArbitrateReturn)
def arbitrate(app: GrievanceApp, g: Grievance, cmd: c.ArbitrateReturn, stamp: Stamp) -> None:
    choice = parse_enum(ArbitrationDecision, cmd.decision, "decision")
    returned = g.assignment(cmd.assignment_id)
    target = cmd.department
    if choice is ArbitrationDecision.CONFIRM:
        target = target or returned.department
    if target is None:
        raise ValidationError("required", field="department")
    assert g.category is not None
    app.policies.routing.check(
        app.policies.categories.leaf(g.category), [target], app.policies.directory
    )
    replacement = new_work(app, g, target, returned.role, stamp.at)
    g.arbitrate(stamp, cmd.assignment_id, choice, replacement, cmd.reason)


@handles(c.MergeGrievance)
def merge(app: GrievanceApp, g: Grievance, cmd: c.MergeGrievance, stamp: Stamp) -> Changed:
    primary = app.get_grievance(cmd.into)
    g.merge(stamp, primary, cmd.reason)
    primary.link_duplicate(stamp, g)
    return (primary,)


@handles(c.WithdrawGrievance)
def withdraw(app: GrievanceApp, g: Grievance, cmd: c.WithdrawGrievance, stamp: Stamp) -> None:
    g.withdraw(stamp, reason_text(cmd.reason))


# ------------------------------------------------------------- departments


@handles(c.SignFor)
def sign_for(app: GrievanceApp, g: Grievance, cmd: c.SignFor, stamp: Stamp) -> None:
    g.sign_for(stamp, cmd.assignment_id)


@handles(c.ReturnAssignment)
def return_assignment(
    app: GrievanceApp, g: Grievance, cmd: c.ReturnAssignment, stamp: Stamp
) -> None:
    text = reason_text(cmd.reason)
    due = app.policies.sla.redispatch_deadline(stamp.at)
    g.return_assignment(stamp, cmd.assignment_id, text, due)


@handles(c.ReportProgress)
def report_progress(app: GrievanceApp, g: Grievance, cmd: c.ReportProgress, stamp: Stamp) -> None:
    note = clean_text(cmd.note, "note", max_len=MAX_NOTE)
    g.report_progress(stamp, cmd.assignment_id, note)


@handles(c.RequestExtension)
def request_extension(
    app: GrievanceApp, g: Grievance, cmd: c.RequestExtension, stamp: Stamp
) -> None:
    text = reason_text(cmd.reason)
    if cmd.new_deadline.tzinfo is None:
        raise ValidationError("naive-datetime", field="new_deadline")
    base = g.assignment(cmd.assignment_id).resolve_deadline or stamp.at
    latest = app.policies.sla.latest_extension(base)
    g.request_extension(stamp, cmd.assignment_id, cmd.new_deadline, latest, text)


@handles(c.CompletePart)
def complete_part(app: GrievanceApp, g: Grievance, cmd: c.CompletePart, stamp: Stamp) -> None:
    account = clean_text(cmd.account, "account", max_len=MAX_NOTE)
    g.complete_part(stamp, cmd.assignment_id, account)


@handles(c.Resolve)
def resolve(app: GrievanceApp, g: Grievance, cmd: c.Resolve, stamp: Stamp) -> None:
    account = clean_text(cmd.account, "account", max_len=MAX_NOTE)
    due = app.policies.sla.feedback_deadline(stamp.at)
    g.resolve(stamp, cmd.assignment_id, account, due)


@handles(c.ReportIn)
def report_in(app: GrievanceApp, g: Grievance, cmd: c.ReportIn, stamp: Stamp) -> None:
    g.report_in(stamp, cmd.assignment_id)


# ------------------------------------------------------------- supervisors


@handles(c.DecideExtension)
def decide_extension(app: GrievanceApp, g: Grievance, cmd: c.DecideExtension, stamp: Stamp) -> None:
    text = reason_text(cmd.reason, required=not cmd.granted) or None
    g.decide_extension(stamp, cmd.assignment_id, cmd.granted, text, cmd.new_deadline)


@handles(c.SummonDepartments)
def summon(app: GrievanceApp, g: Grievance, cmd: c.SummonDepartments, stamp: Stamp) -> None:
    text = reason_text(cmd.reason)
    due = app.policies.sla.report_in_deadline(stamp.at)
    g.ensure_allowed(Action.SUMMON, cmd.actor)  # its status first: then it is classified
    targets = [app.policies.directory.department(code) for code in cmd.departments]
    assert g.category is not None
    app.policies.routing.check(
        app.policies.categories.leaf(g.category), cmd.departments, app.policies.directory
    )
    summoned_by = None
    if cmd.actor.role is Role.DEPARTMENT:
        assert cmd.actor.department is not None
        summoner = app.policies.directory.department(cmd.actor.department)
        check_department_summons(g, cmd.actor, summoner, targets, app.policies.summons)
        summoned_by = summoner.code
    summons = [
        NewAssignment(code, AssignmentRole.SUMMONED, report_in_deadline=due)
        for code in cmd.departments
    ]
    g.summon(stamp, summons, text, summoned_by)


@handles(c.RateSummoned)
def rate_summoned(app: GrievanceApp, g: Grievance, cmd: c.RateSummoned, stamp: Stamp) -> None:
    rating = parse_enum(Satisfaction, cmd.rating, "rating")
    policy = app.policies.summons
    text = reason_text(cmd.reason, required=rating.value in policy.reason_required) or None
    target = g.assignment(cmd.assignment_id)
    previous = ratings(g).get(cmd.assignment_id)
    until = (
        policy.correction_window.after(previous.first_at, app.policies.calendar)
        if previous
        else None
    )
    rater = summoning_unit(g, target, app.policies.directory)
    g.rate_summoned(stamp, cmd.assignment_id, rating, text, rater, until)


def step_reason(step: c.DeadlineStep, *, required: bool = False) -> Reason:
    """A deadline step's reason: a person's text (``required`` when no code is given), or
    the workflow's code and params."""
    text = reason_text(step.reason, required=required and step.reason_code is None) or None
    return Reason(text, step.reason_code, step.reason_params)


@handles(c.Urge)
def urge(app: GrievanceApp, g: Grievance, cmd: c.Urge, stamp: Stamp) -> None:
    kind = parse_enum(DeadlineKind, cmd.kind, "kind")
    g.urge(stamp, kind, cmd.assignment_id, step_reason(cmd))


@handles(c.Escalate)
def escalate(app: GrievanceApp, g: Grievance, cmd: c.Escalate, stamp: Stamp) -> None:
    kind = parse_enum(DeadlineKind, cmd.kind, "kind") if cmd.kind else None
    g.escalate(stamp, cmd.level, step_reason(cmd, required=True), kind, cmd.assignment_id)


# ---------------------------------------------------------------- feedback


@handles(c.RecordFeedback)
def record_feedback(app: GrievanceApp, g: Grievance, cmd: c.RecordFeedback, stamp: Stamp) -> None:
    level = parse_enum(Satisfaction, cmd.satisfaction, "satisfaction") if cmd.satisfaction else None
    comment = clean_text(cmd.comment, "comment", max_len=MAX_NOTE, required=False)
    reopen: list[NewAssignment] = []
    lead, assisting = g.lead_department, g.assisting_departments
    if lead is None and g.category is not None:
        # Answered at intake and not settled after all: the routing rules name who works on it.
        leaf = app.policies.categories.leaf(g.category)
        route = app.policies.routing.route(
            leaf, Location.from_dict(g.location), app.policies.directory
        )
        lead, assisting = route.lead, list(route.assisting)
    if lead is not None:
        reopen.append(new_work(app, g, lead, AssignmentRole.LEAD, stamp.at))
        reopen.extend(
            new_work(app, g, code, AssignmentRole.ASSISTING, stamp.at) for code in assisting
        )
    threshold = app.policies.sla.profile.reopen_escalation_threshold
    g.record_feedback(stamp, cmd.contacted, cmd.resolved, level, comment, reopen, threshold)


@handles(c.CloseGrievance)
def close(app: GrievanceApp, g: Grievance, cmd: c.CloseGrievance, stamp: Stamp) -> None:
    outcome = parse_enum(Outcome, cmd.outcome, "outcome")
    g.close(stamp, outcome, step_reason(cmd))


# ---------------------------------------------------------------- evidence


def _attachment_data(cmd: c.AttachFile | c.AttachToAssignment) -> FileData:
    if not isinstance(cmd.size, int) or cmd.size < 1:
        raise ValidationError("out-of-range", field="size", value=cmd.size, min=1)
    filename = clean_text(cmd.filename, "filename", max_len=MAX_FILENAME, required=False)
    note = clean_text(cmd.note, "note", max_len=MAX_ATTACHMENT_NOTE, required=False) or None
    thumbnail = cmd.thumbnail_sha256
    return {
        "sha256": check_sha256(cmd.sha256),
        "media_type": clean_text(cmd.media_type, "media_type", max_len=100),
        "size": cmd.size,
        "filename": filename,
        "thumbnail_sha256": check_sha256(thumbnail, "thumbnail_sha256") if thumbnail else None,
        "note": note,
    }


@handles(c.AttachFile)
def attach(app: GrievanceApp, g: Grievance, cmd: c.AttachFile, stamp: Stamp) -> None:
    if cmd.actor.role is Role.OPEN311 and not filed_by(g.intake, g.received_by, cmd.actor):
        # An Open311 client attaches only to what it filed itself.
        raise PermissionDeniedError(action=Action.ATTACH, role=cmd.actor.role)
    g.attach(stamp, None, _attachment_data(cmd))


@handles(c.AttachToAssignment)
def attach_to_assignment(
    app: GrievanceApp, g: Grievance, cmd: c.AttachToAssignment, stamp: Stamp
) -> None:
    g.attach(stamp, cmd.assignment_id, _attachment_data(cmd))


@handles(c.AnswerAtIntake)
def answer_at_intake(app: GrievanceApp, g: Grievance, cmd: c.AnswerAtIntake, stamp: Stamp) -> None:
    answer = clean_text(cmd.answer, "answer", max_len=MAX_ANSWER)
    quoted = quoted_revisions(app, list(cmd.articles or []))
    sla = app.policies.sla
    due = sla.feedback_deadline(stamp.at) if sla.profile.answered_at_intake_callback else None
    g.answer_at_intake(stamp, answer, quoted, due)


# ------------------------------------------------------- deadline steps


def still_open(g: Grievance, step: c.DeadlineStep) -> bool:
    """Whether the deadline a workflow step is about is still open (at the same instant)."""
    if isinstance(step, c.CloseGrievance):
        return g.find_open_deadline(DeadlineKind.FEEDBACK, None) is not None
    if isinstance(step, c.Urge | c.Escalate) and step.kind is not None:
        kind = parse_enum(DeadlineKind, step.kind, "kind")
        return g.find_open_deadline(kind, step.assignment_id, step.due) is not None
    return True
