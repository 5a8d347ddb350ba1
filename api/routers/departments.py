"""Departments (承办单位): their own assignments only. A department token acting on another
department's assignment gets 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AnyPrincipal, AppDep, Read, ReadModelsDep, guarded
from api.problems import ProblemError
from api.routers.common import (
    READ_PROBLEMS,
    CommandRoute,
    add_commands,
    page_items,
    read_model_call,
)
from api.schemas import (
    AccountRequest,
    AssignmentsPage,
    AssignmentSummary,
    EmptyRequest,
    ExtensionRequestIn,
    ProgressRequest,
    ReturnRequest,
)
from domain import commands
from domain.model import Action, AssignmentState, Role

router = APIRouter(prefix="/v1", tags=["departments"])


@router.get(
    "/assignments",
    response_model=AssignmentsPage,
    responses=READ_PROBLEMS,
    **guarded(Read.ASSIGNMENTS),
)
def list_assignments(
    app: AppDep,
    read_models: ReadModelsDep,
    who: AnyPrincipal,
    state: Annotated[AssignmentState | None, Query(description="e.g. dispatched")] = None,
    department: Annotated[
        str | None, Query(max_length=64, description="staff only; departments see their own")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AssignmentsPage:
    """This department's assignments (staff: any department's), optionally by state."""
    if who.role is Role.DEPARTMENT:
        if department not in (None, who.department):
            raise ProblemError("forbidden", message="own-assignments-only")
        department = who.department
    elif not department:
        raise ProblemError(
            "invalid-request", message="department-param-required", field="department"
        )
    page = read_model_call(
        read_models.list_assignments,
        department=department,
        state=state.value if state else None,
        cursor=cursor,
        limit=limit,
        now=app.clock(),
    )
    return AssignmentsPage(
        items=page_items(AssignmentSummary, page.items), next_cursor=page.next_cursor
    )


A = "/assignments/{assignment_id}"
add_commands(
    router,
    CommandRoute(
        f"{A}/sign-for",
        Action.SIGN_FOR,
        commands.SignFor,
        EmptyRequest,
        "签收: the department accepts its assignment.",
        optional=True,
    ),
    CommandRoute(
        f"{A}/return",
        Action.RETURN,
        commands.ReturnAssignment,
        ReturnRequest,
        "退单: send the assignment back to the dispatch centre, with the reason.",
        name="return_assignment",
    ),
    CommandRoute(
        f"{A}/progress",
        Action.REPORT_PROGRESS,
        commands.ReportProgress,
        ProgressRequest,
        "阶段反馈: an interim update on the work.",
    ),
    CommandRoute(
        f"{A}/extension-request",
        Action.REQUEST_EXTENSION,
        commands.RequestExtension,
        ExtensionRequestIn,
        "延期申请: ask for a later resolve deadline, with the reason.",
    ),
    CommandRoute(
        f"{A}/complete-part",
        Action.COMPLETE_PART,
        commands.CompletePart,
        AccountRequest,
        "协办完成: an assisting department reports its part done.",
    ),
    CommandRoute(
        f"{A}/resolve",
        Action.RESOLVE,
        commands.Resolve,
        AccountRequest,
        "办结: the lead department's resolution; opens the 回访 window.",
    ),
    CommandRoute(
        f"{A}/report-in",
        Action.REPORT_IN,
        commands.ReportIn,
        EmptyRequest,
        "报到: a summoned department reports in (吹哨报到).",
        optional=True,
    ),
)
