"""Departments (承办单位): their own assignments only. A department token acting on another
department's assignment gets 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import AnyPrincipal, AppDep, Read, ReadModelsDep, guarded
from api.problems import ProblemError
from api.routers.common import (
    READ_PROBLEMS,
    CommandDep,
    command_route,
    page_items,
    read_model_call,
)
from api.schemas import (
    AccountRequest,
    AssignmentsPage,
    AssignmentSummary,
    CommandAccepted,
    EmptyRequest,
    ExtensionRequestIn,
    ProgressRequest,
    ReturnRequest,
)
from domain.model import Action, AssignmentState, Role

router = APIRouter(prefix="/v1", tags=["departments"])

AssignmentIdPath = Annotated[
    str,
    Path(min_length=3, max_length=80, description="`<grievance id>.<n>`"),
]


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
            raise ProblemError(
                "forbidden",
                "只能查看本单位的派单",
                "a department may list only its own assignments",
            )
        department = who.department
    elif not department:
        raise ProblemError(
            "invalid-request",
            "请用 department 参数指定要查看的单位",
            "give the department to list with ?department=CODE",
            field="department",
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


@router.post("/assignments/{assignment_id}/sign-for", **command_route(Action.SIGN_FOR))
def sign_for(
    assignment_id: AssignmentIdPath, cmd: CommandDep, body: EmptyRequest | None = None
) -> CommandAccepted:
    """签收: the department accepts its assignment."""
    return cmd.run_on_assignment(cmd.app.sign_for, assignment_id, body)


@router.post("/assignments/{assignment_id}/return", **command_route(Action.RETURN))
def return_assignment(
    assignment_id: AssignmentIdPath, body: ReturnRequest, cmd: CommandDep
) -> CommandAccepted:
    """退单: send the assignment back to the dispatch centre, with the reason."""
    return cmd.run_on_assignment(cmd.app.return_assignment, assignment_id, body)


@router.post("/assignments/{assignment_id}/progress", **command_route(Action.REPORT_PROGRESS))
def report_progress(
    assignment_id: AssignmentIdPath, body: ProgressRequest, cmd: CommandDep
) -> CommandAccepted:
    """阶段反馈: an interim update on the work."""
    return cmd.run_on_assignment(cmd.app.report_progress, assignment_id, body)


@router.post(
    "/assignments/{assignment_id}/extension-request", **command_route(Action.REQUEST_EXTENSION)
)
def request_extension(
    assignment_id: AssignmentIdPath, body: ExtensionRequestIn, cmd: CommandDep
) -> CommandAccepted:
    """延期申请: ask for a later resolve deadline, with the reason."""
    return cmd.run_on_assignment(cmd.app.request_extension, assignment_id, body)


@router.post("/assignments/{assignment_id}/complete-part", **command_route(Action.COMPLETE_PART))
def complete_part(
    assignment_id: AssignmentIdPath, body: AccountRequest, cmd: CommandDep
) -> CommandAccepted:
    """协办完成: an assisting department reports its part done."""
    return cmd.run_on_assignment(cmd.app.complete_part, assignment_id, body)


@router.post("/assignments/{assignment_id}/resolve", **command_route(Action.RESOLVE))
def resolve(
    assignment_id: AssignmentIdPath, body: AccountRequest, cmd: CommandDep
) -> CommandAccepted:
    """办结: the lead department's resolution; opens the 回访 window."""
    return cmd.run_on_assignment(cmd.app.resolve, assignment_id, body)


@router.post("/assignments/{assignment_id}/report-in", **command_route(Action.REPORT_IN))
def report_in(
    assignment_id: AssignmentIdPath, cmd: CommandDep, body: EmptyRequest | None = None
) -> CommandAccepted:
    """报到: a summoned department reports in (吹哨报到)."""
    return cmd.run_on_assignment(cmd.app.report_in, assignment_id, body)
