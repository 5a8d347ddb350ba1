"""Pieces the routers share: problem responses for OpenAPI, read-model calls, scoping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Response

from api.deps import Principal
from api.problems import PROBLEM_JSON, ProblemError
from domain.application import GrievanceApp
from domain.errors import DomainError, NotAssignedError
from domain.grievance import Grievance
from domain.model import Role

T = TypeVar("T")

_DESCRIPTIONS = {
    401: "Missing, invalid or revoked bearer token",
    403: "This role or department may not do this",
    404: "No such grievance or assignment",
    409: "Not allowed in the current status (names it and the allowed actions), "
    "or a concurrent write",
    412: "If-Match names a stale version",
    413: "Request body too large",
    422: "Invalid request: the fields and why",
    503: "Not ready",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these problem statuses."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


READ_PROBLEMS = problems(401, 403, 422)
WRITE_PROBLEMS = problems(401, 403, 404, 409, 412, 413, 422)


def set_version(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def read_model_call(fn: Callable[..., T], **kwargs: Any) -> T:
    """Call the read models; a malformed cursor or filter they refuse is a 422, not a 500."""
    try:
        return fn(**kwargs)
    except DomainError:
        raise
    except ValueError as exc:
        raise ProblemError(
            "invalid-request",
            f"查询参数不正确：{exc}",
            f"invalid query parameter: {exc}",
            field="cursor" if "cursor" in str(exc).lower() else None,
        ) from None


def check_can_read(grievance: Grievance, principal: Principal) -> None:
    """Departments read grievances they have (had) an assignment on; Open311 clients their own."""
    if principal.role is Role.DEPARTMENT:
        if not any(a.department == principal.department for a in grievance.assignments.values()):
            raise ProblemError(
                "forbidden",
                "本单位在该诉求上没有派单",
                "your department has no assignment on this grievance",
            )
    elif principal.role is Role.OPEN311 and grievance.received_by != principal.name:
        raise ProblemError(
            "forbidden",
            "只能查看本接入方提交的诉求",
            "an Open311 client may read only the requests it filed",
        )


def own_assignment(app: GrievanceApp, principal: Principal, assignment_id: str) -> Grievance:
    """The grievance of an assignment of the caller's department (404 unknown, 403 not theirs)."""
    grievance = app.get_by_assignment(assignment_id)
    owner = grievance.assignment(assignment_id).department
    if owner != principal.department:
        raise NotAssignedError(
            f"assignment {assignment_id} belongs to {owner}, not to {principal.department}"
        )
    return grievance
