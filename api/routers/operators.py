"""Dispatch-centre operators (接线员/派单员): intake, classification, dispatch, 回访, lists."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from api.deps import AnyPrincipal, AppDep, Read, ReadModelsDep, guarded
from api.i18n import choose_language
from api.routers.common import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    CommandRoute,
    WriterDep,
    add_commands,
    check_can_read,
    fields_of,
    page_items,
    problems,
    read_model_call,
    set_version,
)
from api.schemas import (
    AnswerRequest,
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
    GrievanceFilters,
    GrievancePublic,
    GrievancesPage,
    GrievanceSummary,
    MergeRequest,
    RejectRequest,
    WithdrawRequest,
)
from api.views import grievance_public
from domain.commands import (
    AnswerAtIntake,
    ArbitrateReturn,
    ArticleRef,
    ClassifyGrievance,
    DispatchGrievance,
    MergeGrievance,
    ReceiveGrievance,
    RecordFeedback,
    RejectGrievance,
    WithdrawGrievance,
)
from domain.model import Action, Location

router = APIRouter(prefix="/v1", tags=["operators"])


@router.post(
    "/grievances",
    status_code=201,
    response_model=CommandAccepted,
    responses=problems(401, 403, 409, 413, 422),
    **guarded(Action.RECEIVE),
)
def create_grievance(body: GrievanceCreate, write: WriterDep) -> CommandAccepted:
    """受理: record a new grievance and give it a case number."""
    location = Location(**fields_of(body.location))
    answer = write.send(ReceiveGrievance, body, location=location)
    write.response.headers["Location"] = f"/v1/grievances/{answer.id}"
    return answer


G = "/grievances/{grievance_id}"
add_commands(
    router,
    CommandRoute(
        f"{G}/classify",
        Action.CLASSIFY,
        ClassifyGrievance,
        ClassifyRequest,
        "梳理: set the category leaf (its SLA class follows) and the urgency.",
    ),
    CommandRoute(
        f"{G}/dispatch",
        Action.DISPATCH,
        DispatchGrievance,
        DispatchRequest,
        "派单: to the given lead (and assisting) departments, or where the routing rules say.",
        optional=True,
    ),
    CommandRoute(
        f"{G}/reject",
        Action.REJECT,
        RejectGrievance,
        RejectRequest,
        "不予受理: out of scope, with the reason.",
    ),
    CommandRoute(
        f"{G}/merge",
        Action.MERGE,
        MergeGrievance,
        MergeRequest,
        "合并: mark this grievance a duplicate of ``into``.",
    ),
    CommandRoute(
        f"{G}/withdraw",
        Action.WITHDRAW,
        WithdrawGrievance,
        WithdrawRequest,
        "撤件 at the citizen's request.",
    ),
    CommandRoute(
        f"{G}/arbitrate",
        Action.ARBITRATE,
        ArbitrateReturn,
        ArbitrateRequest,
        "仲裁 a returned assignment: re-dispatch it elsewhere or confirm its department.",
    ),
    CommandRoute(
        f"{G}/feedback",
        Action.RECORD_FEEDBACK,
        RecordFeedback,
        FeedbackRequest,
        "回访 result: closes the loop, or reopens (重办) when unresolved or unsatisfied.",
        name="feedback",
    ),
)


@router.post(
    f"{G}/answer",
    name=Action.ANSWER_AT_INTAKE.value,
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
    **guarded(Action.ANSWER_AT_INTAKE),
)
def answer_at_intake(grievance_id: UUID, body: AnswerRequest, write: WriterDep) -> CommandAccepted:
    """直接答复: settled on the call from the knowledge base, closed without dispatch."""
    quoted = [ArticleRef(article_id=a.article_id, revision=a.revision) for a in body.articles]
    return write.send(
        AnswerAtIntake, grievance_id=grievance_id, answer=body.answer, articles=quoted
    )


# ---------------------------------------------------------------------- reads


@router.get(
    "/grievances",
    response_model=GrievancesPage,
    responses=READ_PROBLEMS,
    **guarded(Read.GRIEVANCES),
)
def list_grievances(
    app: AppDep, read_models: ReadModelsDep, filters: Annotated[GrievanceFilters, Query()]
) -> GrievancesPage:
    """Grievances from the read models, filtered, newest first, with cursor pagination."""
    wanted = filters.model_dump()
    wanted["status"] = filters.status.value if filters.status else None
    page = read_model_call(read_models.list_grievances, **wanted, now=app.clock())
    # Read models keep contact data masked for everyone; the full record is one GET away.
    return GrievancesPage(
        items=page_items(GrievanceSummary, page.items), next_cursor=page.next_cursor
    )


@router.get(
    "/grievances/{grievance_id}",
    response_model=GrievancePublic,
    responses=problems(401, 403, 404, 422),
    **guarded(Read.GRIEVANCE),
)
def get_grievance(
    grievance_id: UUID, app: AppDep, who: AnyPrincipal, request: Request, response: Response
) -> GrievancePublic:
    """One grievance, read from its events (never stale); ETag is its version."""
    grievance = app.get_grievance(grievance_id)
    check_can_read(grievance, who)
    set_version(response, grievance.version)
    return grievance_public(
        grievance, unmasked=who.sees_personal_data, lang=choose_language(request)
    )


@router.get(
    "/callbacks", response_model=CallbacksPage, responses=READ_PROBLEMS, **guarded(Read.GRIEVANCES)
)
def list_callbacks(
    app: AppDep,
    read_models: ReadModelsDep,
    who: AnyPrincipal,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallbacksPage:
    """The 回访 queue: resolved grievances waiting for feedback, window ending soonest first."""
    page = read_model_call(read_models.list_callbacks, cursor=cursor, limit=limit, now=app.clock())
    items = page_items(CallbackItem, page.items)
    if who.sees_personal_data:
        # Read models never hold full contact data; operators making the call need it.
        contacts = app.contacts(UUID(item.grievance_id) for item in items)

        def with_contact(item: CallbackItem) -> CallbackItem:
            name, phone = contacts[UUID(item.grievance_id)]
            return item.model_copy(update={"citizen_name": name, "citizen_phone": phone})

        items = [with_contact(item) for item in items]
    return CallbacksPage(items=items, next_cursor=page.next_cursor)


@router.get(
    "/categories",
    response_model=CategoriesPublic,
    responses=problems(401, 403),
    **guarded(Read.REFERENCE),
)
def list_categories(app: AppDep) -> CategoriesPublic:
    """The category tree: codes, names, default departments and SLA classes."""
    tree = app.policies.categories
    return CategoriesPublic(
        items=[
            CategoryNode(
                code=top.code,
                name=top.name,
                name_en=top.name_en,
                children=[CategoryLeaf.model_validate(leaf) for leaf in tree.children(top.code)],
            )
            for top in tree.top
        ]
    )


@router.get(
    "/departments",
    response_model=DepartmentsPublic,
    responses=problems(401, 403),
    **guarded(Read.REFERENCE),
)
def list_departments(app: AppDep) -> DepartmentsPublic:
    """Departments (承办单位): codes, names and levels."""
    departments = app.policies.directory.departments.values()
    return DepartmentsPublic(items=[DepartmentPublic.model_validate(d) for d in departments])
