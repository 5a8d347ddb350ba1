"""Pieces the routers share: problem responses for OpenAPI, the command routes (one
pipeline for every write), read-model calls and pages, scoping.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from fastapi import Path as PathParam
from pydantic import BaseModel

from api.deps import AnyPrincipal, AppDep, Principal, WriteDep, WriteOptions, guarded
from api.problems import PROBLEM_JSON, ProblemError
from api.schemas import CommandAccepted
from api.views import accepted, as_row, mask_row
from domain import commands
from domain.application import GrievanceApp
from domain.errors import DomainError, NotAssignedError
from domain.grievance import Grievance
from domain.intake import filed_by
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


def set_version(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def fields_of(body: BaseModel | None) -> dict[str, Any]:
    """A request body as the command's fields (enums as their values)."""
    if body is None:
        return {}
    return {k: v.value if isinstance(v, Enum) else v for k, v in body}


@dataclass
class Writer:
    """The caller's writes: its principal, ``Idempotency-Key`` (the command id) and
    ``If-Match`` (the expected version); ``send`` hands one command to the domain's
    pipeline and answers what it recorded, with its ``ETag``."""

    app: GrievanceApp
    who: Principal
    opts: WriteOptions
    response: Response

    def send(
        self, kind: type[commands.Command], body: BaseModel | None = None, **fields: Any
    ) -> CommandAccepted:
        fields = fields_of(body) | fields  # what the route adds wins over the body
        if issubclass(kind, commands.AssignmentCommand):
            self.check_owns(fields["assignment_id"])
        if issubclass(kind, commands.GrievanceCommand | commands.AssignmentCommand):
            fields["expected_version"] = self.opts.expected_version
        command = kind(actor=self.who.actor, command_id=self.opts.command_id, **fields)
        result = self.app.handle(command)
        set_version(self.response, result.version)
        return accepted(result)

    def check_owns(self, assignment_id: str) -> None:
        """404 for an unknown assignment, 403 when it is not the caller's department's
        (from the warm aggregate when this process has one)."""
        owner = self.app.assignment_department(assignment_id)
        if owner != self.who.department:
            raise NotAssignedError(
                assignment_id=assignment_id,
                department=owner,
                actor_department=self.who.department,
            )


async def writer(app: AppDep, who: AnyPrincipal, opts: WriteDep, response: Response) -> Writer:
    return Writer(app, who, opts, response)


WriterDep = Annotated[Writer, Depends(writer)]
AssignmentIdPath = Annotated[
    str, PathParam(min_length=3, max_length=80, description="`<grievance id>.<n>`")
]


@dataclass(frozen=True)
class CommandRoute:
    """``POST <path>`` sends ``command`` (who may: the domain's roles for ``action``).

    The path names its target, ``{grievance_id}`` or ``{assignment_id}`` (then only the
    assignment's own department may); ``body`` is the request schema (``optional``: it may
    be left out). ``summary`` is the route's one-line documentation; ``name`` keeps the
    OpenAPI operation id where it differs from the action."""

    path: str
    action: Action
    command: type[commands.Command]
    body: type[BaseModel]
    summary: str
    optional: bool = False
    name: str = ""


def add_commands(router: APIRouter, *routes: CommandRoute) -> None:
    """Register one route per command: same pipeline, answer and problems for all."""
    for route in routes:
        router.post(
            route.path,
            name=route.name or route.action.value,
            summary=route.summary,
            response_model=CommandAccepted,
            responses=WRITE_PROBLEMS,
            **guarded(route.action),
        )(_endpoint(route))


def _endpoint(route: CommandRoute) -> Callable[..., CommandAccepted]:
    kind = route.command

    def endpoint(write: Writer, body: BaseModel | None = None, **target: Any) -> CommandAccepted:
        return write.send(kind, body, **target)

    on_assignment = "{assignment_id}" in route.path
    target = inspect.Parameter(
        "assignment_id" if on_assignment else "grievance_id",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=AssignmentIdPath if on_assignment else UUID,
    )
    return signed(endpoint, route, [target], CommandAccepted)


E = TypeVar("E", bound=Callable[..., Any])


def signed(endpoint: E, route: CommandRoute, target: list[inspect.Parameter], returns: Any) -> E:
    """Give a generic command endpoint the signature FastAPI reads: the path's ``target``
    parameters, the route's body (left out if ``optional``) and the writer; its name and
    documentation are the route's."""
    body = inspect.Parameter(
        "body",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=route.body | None if route.optional else route.body,
        default=None if route.optional else inspect.Parameter.empty,
    )
    write = inspect.Parameter("write", inspect.Parameter.KEYWORD_ONLY, annotation=WriterDep)
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*target, body, write], return_annotation=returns
    )
    endpoint.__name__ = route.name or route.action.value
    endpoint.__doc__ = route.summary
    return endpoint


def read_model_call(fn: Callable[..., T], **kwargs: Any) -> T:
    """Call the read models; a malformed cursor or filter they refuse is a 422, not a 500."""
    try:
        return fn(**kwargs)
    except DomainError:
        raise
    except ValueError as exc:
        field = "cursor" if "cursor" in str(exc).lower() else None
        raise ProblemError("invalid-request", field=field) from None


P = TypeVar("P", bound=BaseModel)


def page_items(model: type[P], items: Iterable[Any]) -> list[P]:
    """Read-model rows as response items, personal fields masked."""
    return [model.model_validate(mask_row(as_row(item))) for item in items]


MAX_PERIOD = timedelta(days=3660)


def check_period(start: date, end: date, first: str, last: str) -> None:
    """422 unless the period runs forward and spans at most ``MAX_PERIOD``; ``first`` and
    ``last`` name its query parameters."""
    if start > end:
        raise ProblemError(
            "invalid-request",
            message="period-reversed",
            params={"start": first, "end": last},
            field=first,
        )
    if end - start > MAX_PERIOD:
        raise ProblemError("invalid-request", message="period-too-long", field=first)


def check_can_read(grievance: Grievance, principal: Principal) -> None:
    """Departments read grievances they have (had) an assignment on; Open311 clients their own."""
    if principal.role is Role.DEPARTMENT:
        if not any(a.department == principal.department for a in grievance.assignments.values()):
            raise ProblemError("forbidden", message="no-assignment-on-grievance")
    elif principal.role is Role.OPEN311 and not filed_by(
        grievance.intake, grievance.received_by, principal.actor
    ):
        raise ProblemError("forbidden", message="open311-own-requests-only")
