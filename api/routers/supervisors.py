"""Supervisors (督办/考核): extension decisions, 吹哨, manual escalation, audit, 三率."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from api.deps import AppDep, ReadModelsDep, Supervisor, WriteDep
from api.i18n import choose_language
from api.problems import ProblemError
from api.routers.common import READ_PROBLEMS, WRITE_PROBLEMS, problems, read_model_call, set_version
from api.schemas import (
    AuditEvents,
    CommandAccepted,
    DepartmentKpi,
    EscalateRequest,
    ExtensionDecisionRequest,
    GrievanceStateAt,
    KpisPublic,
    Moment,
    SummonRequest,
)
from api.views import accepted, as_row, audit_event, grievance_public
from domain.errors import GrievanceNotFoundError

router = APIRouter(prefix="/v1", tags=["supervisors"])


@router.post(
    "/grievances/{grievance_id}/extension-decision",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def decide_extension(
    grievance_id: UUID,
    body: ExtensionDecisionRequest,
    app: AppDep,
    who: Supervisor,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """Grant (the deadline moves) or deny a waiting extension request."""
    result = app.decide_extension(
        grievance_id,
        who.actor,
        assignment_id=body.assignment_id,
        granted=body.granted,
        reason=body.reason,
        new_deadline=body.new_deadline,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    set_version(response, result.version)
    return accepted(result)


@router.post(
    "/grievances/{grievance_id}/summon", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def summon(
    grievance_id: UUID,
    body: SummonRequest,
    app: AppDep,
    who: Supervisor,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """吹哨: call departments to act together; each must 报到 by its report-in deadline."""
    result = app.summon_departments(
        grievance_id,
        who.actor,
        departments=list(body.departments),
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    set_version(response, result.version)
    return accepted(result)


@router.post(
    "/grievances/{grievance_id}/escalate", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def escalate(
    grievance_id: UUID,
    body: EscalateRequest,
    app: AppDep,
    who: Supervisor,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """督办 by hand: level 1 street leader, 2 district supervision, 3 兜底办."""
    result = app.escalate(
        grievance_id,
        who.actor,
        level=body.level,
        reason=body.reason,
        assignment_id=body.assignment_id,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    set_version(response, result.version)
    return accepted(result)


# ---------------------------------------------------------------------- audit


@router.get(
    "/audit/grievances/{grievance_id}/events",
    response_model=AuditEvents,
    responses=problems(401, 403, 404, 422),
)
def audit_events(grievance_id: UUID, app: AppDep, who: Supervisor) -> AuditEvents:
    """Every stored event of a grievance, in order, from the event store."""
    events = app.history(grievance_id)
    grievance = app.get_grievance(grievance_id)
    return AuditEvents(
        grievance_id=grievance.id,
        number=grievance.number,
        events=[audit_event(e, unmasked=who.sees_personal_data) for e in events],
    )


@router.get(
    "/audit/grievances/{grievance_id}/state",
    response_model=GrievanceStateAt,
    responses=problems(401, 403, 404, 422),
)
def audit_state(
    grievance_id: UUID,
    app: AppDep,
    who: Supervisor,
    request: Request,
    response: Response,
    as_of: Annotated[
        Moment | None, Query(description="ISO-8601 instant: the state after the last event then")
    ] = None,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> GrievanceStateAt:
    """The grievance as it was at a version, or as of an instant (replayed from its events)."""
    if as_of is not None and version is not None:
        raise ProblemError(
            "invalid-request",
            "as_of 与 version 只能给出其一",
            "give as_of or version, not both",
            field="as_of",
        )
    if as_of is not None:
        events = app.history(grievance_id)
        earlier = [e for e in events if getattr(e, "timestamp") <= as_of]  # noqa: B009
        if not earlier:
            raise GrievanceNotFoundError(
                f"grievance {grievance_id} did not exist yet at {as_of.isoformat()}"
            )
        version = earlier[-1].originator_version
    elif version is not None:
        current = app.get_grievance(grievance_id)
        if version > current.version:
            raise GrievanceNotFoundError(
                f"grievance {grievance_id} has no version {version} (it is at {current.version})"
            )
    grievance = app.get_grievance(grievance_id, version=version)
    set_version(response, grievance.version)
    return GrievanceStateAt(
        as_of=as_of,
        version=grievance.version,
        grievance=grievance_public(
            grievance, unmasked=who.sees_personal_data, lang=choose_language(request)
        ),
    )


# ----------------------------------------------------------------------- 三率


@router.get("/kpis", response_model=KpisPublic, responses=READ_PROBLEMS)
def kpis(
    app: AppDep,
    read_models: ReadModelsDep,
    who: Supervisor,
    date_from: Annotated[
        date | None, Query(description="first local day (default: 29 days ago)")
    ] = None,
    date_to: Annotated[date | None, Query(description="last local day (default: today)")] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> KpisPublic:
    """三率 per department for a period: response, resolution and satisfaction rates."""
    today = app.clock().astimezone(app.policies.calendar.tz).date()
    date_to = date_to or today
    date_from = date_from or date_to - timedelta(days=29)
    if date_from > date_to:
        raise ProblemError(
            "invalid-request",
            "date_from 不能晚于 date_to",
            "date_from must not be after date_to",
            field="date_from",
        )
    if (date_to - date_from).days > 3660:
        raise ProblemError(
            "invalid-request",
            "统计区间不能超过十年",
            "the period may not exceed ten years",
            field="date_from",
        )
    result = read_model_call(
        read_models.kpis, date_from=date_from, date_to=date_to, department=department
    )
    return KpisPublic(
        date_from=date_from.isoformat(),
        date_to=date_to.isoformat(),
        department=department,
        items=[DepartmentKpi.model_validate(as_row(row)) for row in result],
    )
