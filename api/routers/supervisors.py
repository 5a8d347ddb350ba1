"""Supervisors (督办/考核): extension decisions, 吹哨, manual escalation, 三率.

Audit reads (history, state as of, lateness, case file, verify) live in ``audit``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.assessment_schemas import RateSummonedRequest
from api.deps import AppDep, Read, ReadModelsDep, guarded
from api.routers.common import (
    READ_PROBLEMS,
    CommandRoute,
    add_commands,
    check_period,
    read_model_call,
)
from api.schemas import (
    Day,
    DepartmentKpi,
    EscalateRequest,
    ExtensionDecisionRequest,
    IntakeKpis,
    KpisPublic,
    Moment,
    SummonRequest,
)
from api.views import as_row
from domain.commands import DecideExtension, Escalate, RateSummoned, SummonDepartments
from domain.model import Action
from projections.replay import kpis_as_of

router = APIRouter(prefix="/v1", tags=["supervisors"])


G = "/grievances/{grievance_id}"
add_commands(
    router,
    CommandRoute(
        f"{G}/extension-decision",
        Action.DECIDE_EXTENSION,
        DecideExtension,
        ExtensionDecisionRequest,
        "Grant (the deadline moves) or deny a waiting extension request.",
    ),
    CommandRoute(
        f"{G}/summon",
        Action.SUMMON,
        SummonDepartments,
        SummonRequest,
        "吹哨: call departments to act together; each must 报到 by its report-in deadline.",
    ),
    CommandRoute(
        f"{G}/summons-rating",
        Action.RATE_SUMMONED,
        RateSummoned,
        RateSummonedRequest,
        "Rate a summoned department once its summons ended (the summoning unit, or a "
        "supervisor for it): 满意 / 基本满意 / 不满意 with a reason; correctable for a while.",
    ),
    CommandRoute(
        f"{G}/escalate",
        Action.ESCALATE,
        Escalate,
        EscalateRequest,
        "督办 by hand: level 1 street leader, 2 district supervision, 3 兜底办.",
    ),
)


# ----------------------------------------------------------------------- 三率


@router.get("/kpis", response_model=KpisPublic, responses=READ_PROBLEMS, **guarded(Read.KPIS))
def kpis(
    app: AppDep,
    read_models: ReadModelsDep,
    date_from: Annotated[
        Day | None, Query(description="first local day (default: 29 days ago)")
    ] = None,
    date_to: Annotated[Day | None, Query(description="last local day (default: today)")] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    as_of: Annotated[
        Moment | None,
        Query(
            description="the figures as recorded up to this instant (counts kept by "
            "recording instant), e.g. to check a published monthly figure"
        ),
    ] = None,
) -> KpisPublic:
    """三率 per department for a period: response, resolution and satisfaction rates."""
    today = app.clock().astimezone(app.policies.calendar.tz).date()
    date_to = date_to or today
    date_from = date_from or date_to - timedelta(days=29)
    check_period(date_from, date_to, "date_from", "date_to")
    if as_of is not None:
        result = kpis_as_of(
            app,
            read_models,
            as_of,
            date_from=date_from,
            date_to=date_to,
            department=department,
        )
    else:
        result = read_model_call(
            read_models.kpis, date_from=date_from, date_to=date_to, department=department
        )
    # 直办率 is the dispatch centre's, not a department's; from the live read model only.
    intake = None
    if as_of is None and department is None:
        counts = read_model_call(read_models.intake_kpis, date_from=date_from, date_to=date_to)
        intake = IntakeKpis.model_validate(counts)
    return KpisPublic(
        date_from=date_from.isoformat(),
        date_to=date_to.isoformat(),
        department=department,
        as_of=as_of,
        items=[DepartmentKpi.model_validate(as_row(row)) for row in result],
        intake=intake,
    )
