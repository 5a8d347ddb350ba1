"""Dispatch-centre operators (接线员/派单员): intake, classification, dispatch, 回访, lists."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from api.deps import (
    AppDep,
    Intake,
    Operator,
    Reader,
    ReadModelsDep,
    Staff,
    WriteDep,
)
from api.i18n import choose_language
from api.routers.common import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    check_can_read,
    problems,
    read_model_call,
    set_version,
)
from api.schemas import (
    ArbitrateRequest,
    CallbackItem,
    CallbacksPage,
    CategoriesPublic,
    CategoryLeaf,
    CategoryNode,
    ClassifyRequest,
    CommandAccepted,
    DepartmentPublic,
    DepartmentsPublic,
    DispatchRequest,
    FeedbackRequest,
    GrievanceCreate,
    GrievancePublic,
    GrievancesPage,
    GrievanceSummary,
    MergeRequest,
    Moment,
    RejectRequest,
    WithdrawRequest,
)
from api.views import accepted, as_row, grievance_public, mask_row
from domain.model import Location, Status

router = APIRouter(prefix="/v1", tags=["operators"])


def _done(response: Response, result: CommandAccepted) -> CommandAccepted:
    set_version(response, result.version)
    return result


@router.post(
    "/grievances",
    status_code=201,
    response_model=CommandAccepted,
    responses=problems(401, 403, 409, 413, 422),
)
def create_grievance(
    body: GrievanceCreate, app: AppDep, who: Intake, opts: WriteDep, response: Response
) -> CommandAccepted:
    """受理: record a new grievance and give it a case number."""
    loc = body.location
    result = app.receive_grievance(
        who.actor,
        channel=body.channel.value,
        citizen_name=body.citizen_name,
        citizen_phone=body.citizen_phone,
        text=body.text,
        location=Location(loc.district, loc.street, loc.community, loc.grid, loc.address),
        occurred_at=body.occurred_at,
        command_id=opts.command_id,
    )
    response.headers["Location"] = f"/v1/grievances/{result.grievance_id}"
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/classify", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def classify(
    grievance_id: UUID,
    body: ClassifyRequest,
    app: AppDep,
    who: Operator,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """梳理: set the category leaf (its SLA class follows) and the urgency."""
    result = app.classify_grievance(
        grievance_id,
        who.actor,
        category=body.category,
        urgency=body.urgency.value if body.urgency else None,
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/dispatch", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def dispatch(
    grievance_id: UUID,
    app: AppDep,
    who: Operator,
    opts: WriteDep,
    response: Response,
    body: DispatchRequest | None = None,
) -> CommandAccepted:
    """派单: to the given lead (and assisting) departments, or where the routing rules say."""
    body = body or DispatchRequest(lead=None, assisting=None, reason=None)
    result = app.dispatch_grievance(
        grievance_id,
        who.actor,
        lead=body.lead,
        assisting=body.assisting,
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/reject", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def reject(
    grievance_id: UUID,
    body: RejectRequest,
    app: AppDep,
    who: Operator,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """不予受理: out of scope, with the reason."""
    result = app.reject_grievance(
        grievance_id,
        who.actor,
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/merge", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def merge(
    grievance_id: UUID,
    body: MergeRequest,
    app: AppDep,
    who: Operator,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """合并: mark this grievance a duplicate of ``into``."""
    result = app.merge_grievance(
        grievance_id,
        who.actor,
        into=body.into,
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/withdraw", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def withdraw(
    grievance_id: UUID,
    body: WithdrawRequest,
    app: AppDep,
    who: Operator,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """撤件 at the citizen's request."""
    result = app.withdraw_grievance(
        grievance_id,
        who.actor,
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/arbitrate",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def arbitrate(
    grievance_id: UUID,
    body: ArbitrateRequest,
    app: AppDep,
    who: Staff,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """仲裁 a returned assignment: re-dispatch it elsewhere or confirm its department."""
    result = app.arbitrate_return(
        grievance_id,
        who.actor,
        assignment_id=body.assignment_id,
        decision=body.decision.value,
        department=body.department,
        reason=body.reason,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


@router.post(
    "/grievances/{grievance_id}/feedback", response_model=CommandAccepted, responses=WRITE_PROBLEMS
)
def feedback(
    grievance_id: UUID,
    body: FeedbackRequest,
    app: AppDep,
    who: Operator,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """回访 result: closes the loop, or reopens (重办) when unresolved or unsatisfied."""
    result = app.record_feedback(
        grievance_id,
        who.actor,
        contacted=body.contacted,
        resolved=body.resolved,
        satisfaction=body.satisfaction.value if body.satisfaction else None,
        comment=body.comment,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
    )
    return _done(response, accepted(result))


# ---------------------------------------------------------------------- reads


@router.get("/grievances", response_model=GrievancesPage, responses=READ_PROBLEMS)
def list_grievances(
    app: AppDep,
    read_models: ReadModelsDep,
    who: Staff,
    status: Annotated[Status | None, Query(description="e.g. dispatched")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=64, description="lead or assisting")] = None,
    street: Annotated[str | None, Query(max_length=64)] = None,
    community: Annotated[str | None, Query(max_length=64)] = None,
    overdue: Annotated[bool | None, Query(description="only grievances past a deadline")] = None,
    escalation_level: Annotated[int | None, Query(ge=0, le=3)] = None,
    received_from: Annotated[Moment | None, Query()] = None,
    received_to: Annotated[Moment | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200, description="text search")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> GrievancesPage:
    """Grievances from the read models, filtered, newest first, with cursor pagination."""
    page = read_model_call(
        read_models.list_grievances,
        status=status.value if status else None,
        category=category,
        department=department,
        street=street,
        community=community,
        overdue=overdue,
        escalation_level=escalation_level,
        received_from=received_from,
        received_to=received_to,
        q=q,
        cursor=cursor,
        limit=limit,
        now=app.clock(),
    )
    # Read models keep contact data masked for everyone; the full record is one GET away.
    rows = [mask_row(as_row(item)) for item in page.items]
    return GrievancesPage(
        items=[GrievanceSummary.model_validate(row) for row in rows],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/grievances/{grievance_id}",
    response_model=GrievancePublic,
    responses=problems(401, 403, 404, 422),
)
def get_grievance(
    grievance_id: UUID, app: AppDep, who: Reader, request: Request, response: Response
) -> GrievancePublic:
    """One grievance, read from its events (never stale); ETag is its version."""
    grievance = app.get_grievance(grievance_id)
    check_can_read(grievance, who)
    set_version(response, grievance.version)
    return grievance_public(
        grievance, unmasked=who.sees_personal_data, lang=choose_language(request)
    )


@router.get("/callbacks", response_model=CallbacksPage, responses=READ_PROBLEMS)
def list_callbacks(
    app: AppDep,
    read_models: ReadModelsDep,
    who: Staff,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallbacksPage:
    """The 回访 queue: resolved grievances waiting for feedback, window ending soonest first."""
    page = read_model_call(read_models.list_callbacks, cursor=cursor, limit=limit, now=app.clock())
    rows = [mask_row(as_row(item)) for item in page.items]
    if who.sees_personal_data:
        # Read models never hold full contact data; operators making the call need it.
        for row in rows:
            grievance = app.get_grievance(UUID(str(row["grievance_id"])))
            row["citizen_name"] = grievance.citizen_name
            row["citizen_phone"] = grievance.citizen_phone
    return CallbacksPage(
        items=[CallbackItem.model_validate(row) for row in rows], next_cursor=page.next_cursor
    )


@router.get("/categories", response_model=CategoriesPublic, responses=problems(401, 403))
def list_categories(app: AppDep, who: Reader) -> CategoriesPublic:
    """The category tree: codes, names, default departments and SLA classes."""
    tree = app.policies.categories
    return CategoriesPublic(
        items=[
            CategoryNode(
                code=top.code,
                name=top.name,
                name_en=top.name_en,
                children=[
                    CategoryLeaf(
                        code=leaf.code,
                        name=leaf.name,
                        name_en=leaf.name_en,
                        lead=leaf.lead,
                        assisting=list(leaf.assisting),
                        sla_class=leaf.sla_class,
                        default_urgency=leaf.default_urgency,
                    )
                    for leaf in tree.children(top.code)
                ],
            )
            for top in tree.top
        ]
    )


@router.get("/departments", response_model=DepartmentsPublic, responses=problems(401, 403))
def list_departments(app: AppDep, who: Reader) -> DepartmentsPublic:
    """Departments (承办单位): codes, names and levels."""
    return DepartmentsPublic(
        items=[
            DepartmentPublic(
                code=d.code,
                name=d.name,
                name_en=d.name_en,
                level=d.level,
                street=d.street,
                community=d.community,
            )
            for d in app.policies.directory.departments.values()
        ]
    )
