"""Pieces the routers share: problem responses for OpenAPI, running a command, read-model
calls and pages, scoping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Response
from pydantic import BaseModel

from api.deps import AnyPrincipal, AppDep, Principal, WriteDep, WriteOptions, guarded
from api.problems import PROBLEM_JSON, ProblemError
from api.schemas import CommandAccepted
from api.views import accepted, as_row, mask_row
from domain.application import CommandResult, GrievanceApp
from domain.errors import DomainError, NotAssignedError
from domain.grievance import Grievance
from domain.model import Action, Role

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


def command_route(action: Action) -> dict[str, Any]:
    """Route keyword arguments of a command: who may send it (the domain's roles), its
    answer and its problems."""
    return {"response_model": CommandAccepted, "responses": WRITE_PROBLEMS, **guarded(action)}


def set_version(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def fields_of(body: BaseModel | None) -> dict[str, Any]:
    """A request body as the command's keyword arguments (enums as their values)."""
    if body is None:
        return {}
    return {k: v.value if isinstance(v, Enum) else v for k, v in body}


@dataclass
class Command:
    """One write for the caller: its app, principal, ``Idempotency-Key``/``If-Match`` and
    response; ``run`` sends the command and answers what it recorded, with its ``ETag``."""

    app: GrievanceApp
    who: Principal
    opts: WriteOptions
    response: Response

    def run(
        self,
        send: Callable[..., CommandResult],
        *target: Any,
        versioned: bool = True,
        **fields: Any,
    ) -> CommandAccepted:
        if versioned:
            fields["expected_version"] = self.opts.expected_version
        result = send(*target, self.who.actor, command_id=self.opts.command_id, **fields)
        set_version(self.response, result.version)
        return accepted(result)

    def run_on_assignment(
        self, send: Callable[..., CommandResult], assignment_id: str, body: BaseModel | None
    ) -> CommandAccepted:
        """The same for an assignment of the caller's department (403 when not its own)."""
        own_assignment(self.app, self.who, assignment_id)
        return self.run(send, assignment_id, **fields_of(body))


def command(app: AppDep, who: AnyPrincipal, opts: WriteDep, response: Response) -> Command:
    return Command(app, who, opts, response)


CommandDep = Annotated[Command, Depends(command)]


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


P = TypeVar("P", bound=BaseModel)


def page_items(model: type[P], items: Iterable[Any]) -> list[P]:
    """Read-model rows as response items, personal fields masked."""
    return [model.model_validate(mask_row(as_row(item))) for item in items]


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
            assignment_id=assignment_id, department=owner, actor_department=principal.department
        )
    return grievance
