"""Departments (承办单位): their own assignments only. A department token acting on another
department's assignment gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import AppDep, AssignmentReader, DepartmentUser, ReadModelsDep, WriteDep
from api.problems import ProblemError
from api.routers.common import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    own_assignment,
    read_model_call,
    set_version,
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
from api.views import accepted, as_row, assignment_actions, mask_row
from domain.application import CommandResult
from domain.errors import AssignmentStateError
from domain.model import AssignmentState, Role

router = APIRouter(prefix="/v1", tags=["departments"])

AssignmentIdPath = Annotated[
    str,
    Path(min_length=3, max_length=80, description="`<grievance id>.<n>`"),
]


def _run(
    app: AppDep,
    who: DepartmentUser,
    assignment_id: str,
    response: Response,
    command: Callable[[], CommandResult],
) -> CommandAccepted:
    grievance = own_assignment(app, who, assignment_id)
    try:
        result = command()
    except AssignmentStateError as exc:
        # The aggregate names the assignment's state; say what may be done to it instead.
        exc.allowed = assignment_actions(grievance.assignment(assignment_id), grievance.status)
        raise
    set_version(response, result.version)
    return accepted(result)


@router.get("/assignments", response_model=AssignmentsPage, responses=READ_PROBLEMS)
def list_assignments(
    app: AppDep,
    read_models: ReadModelsDep,
    who: AssignmentReader,
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
    rows = [mask_row(as_row(item)) for item in page.items]
    return AssignmentsPage(
        items=[AssignmentSummary.model_validate(row) for row in rows],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/assignments/{assignment_id}/sign-for",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def sign_for(
    assignment_id: AssignmentIdPath,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
    body: EmptyRequest | None = None,
) -> CommandAccepted:
    """签收: the department accepts its assignment."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.sign_for(
            assignment_id,
            who.actor,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )


@router.post(
    "/assignments/{assignment_id}/return",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def return_assignment(
    assignment_id: AssignmentIdPath,
    body: ReturnRequest,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """退单: send the assignment back to the dispatch centre, with the reason."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.return_assignment(
            assignment_id,
            who.actor,
            reason=body.reason,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )


@router.post(
    "/assignments/{assignment_id}/progress",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def report_progress(
    assignment_id: AssignmentIdPath,
    body: ProgressRequest,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """阶段反馈: an interim update on the work."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.report_progress(
            assignment_id,
            who.actor,
            note=body.note,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )


@router.post(
    "/assignments/{assignment_id}/extension-request",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def request_extension(
    assignment_id: AssignmentIdPath,
    body: ExtensionRequestIn,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """延期申请: ask for a later resolve deadline, with the reason."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.request_extension(
            assignment_id,
            who.actor,
            new_deadline=body.new_deadline,
            reason=body.reason,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )


@router.post(
    "/assignments/{assignment_id}/complete-part",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def complete_part(
    assignment_id: AssignmentIdPath,
    body: AccountRequest,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """协办完成: an assisting department reports its part done."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.complete_part(
            assignment_id,
            who.actor,
            account=body.account,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )


@router.post(
    "/assignments/{assignment_id}/resolve",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def resolve(
    assignment_id: AssignmentIdPath,
    body: AccountRequest,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
) -> CommandAccepted:
    """办结: the lead department's resolution; opens the 回访 window."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.resolve(
            assignment_id,
            who.actor,
            account=body.account,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )


@router.post(
    "/assignments/{assignment_id}/report-in",
    response_model=CommandAccepted,
    responses=WRITE_PROBLEMS,
)
def report_in(
    assignment_id: AssignmentIdPath,
    app: AppDep,
    who: DepartmentUser,
    opts: WriteDep,
    response: Response,
    body: EmptyRequest | None = None,
) -> CommandAccepted:
    """报到: a summoned department reports in (吹哨报到)."""
    return _run(
        app,
        who,
        assignment_id,
        response,
        lambda: app.report_in(
            assignment_id,
            who.actor,
            command_id=opts.command_id,
            expected_version=opts.expected_version,
        ),
    )
