"""What the API is given (``Services``) and the typed dependencies routes declare.

The composition root builds ``Services`` inside the app's lifespan; tests pass their own
builder. Nothing here connects to anything at import time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any

import anyio.to_thread
import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.evidence import UploadPolicy
from api.problems import ProblemError
from api.ratelimit import RateLimiter
from api.stores import IdempotencyStore, TokenRecord, TokenStore
from domain.application import GrievanceApp
from domain.evidence import BlobStore
from domain.model import Action, Actor, Role
from domain.rules import roles_for
from projections.queries import ReadModels


@dataclass
class Services:
    """Everything the API needs, built once per process in the lifespan."""

    app: GrievanceApp
    read_models: ReadModels
    tokens: TokenStore
    idempotency: IdempotencyStore
    temporal_reachable: Callable[[], Awaitable[bool]] | None = None
    # The case file's workflow section: the timers, activities and signals of workflow
    # ``grievance-<id>`` from Temporal's history (oldest first, all runs); None when no
    # such workflow exists; raises when Temporal cannot be reached.
    workflow_history: Callable[[str], Awaitable[list[dict[str, Any]] | None]] | None = None
    max_projection_lag: int = 1000  # events behind the log before /readyz says 503
    # Attachments: where their objects are kept (None: uploads answer 503) and what they may be.
    blobs: BlobStore | None = None
    uploads: UploadPolicy = field(default_factory=UploadPolicy)
    # Rate limits and the Open311 filing quota (None: none, as in most tests).
    rate_limits: RateLimiter | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close what was opened, last opened first."""
        for closer in reversed(self.closers):
            closer()


@dataclass(frozen=True)
class Principal:
    """Who is calling: from the bearer token."""

    token_id: str
    name: str
    role: Role
    department: str | None = None
    client_id: str = ""  # the token's client: what ownership goes by, never ``name``

    @classmethod
    def from_record(cls, record: TokenRecord) -> Principal:
        client = record.client_id or record.id
        return cls(record.id, record.name, Role(record.role), record.department, client)

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.role, self.department, self.client_id or None)

    @property
    def sees_personal_data(self) -> bool:
        """Only the dispatch centre's operators see citizens' full names and phone numbers."""
        return self.role is Role.OPERATOR


# Dependencies are ``async def`` unless they block: FastAPI runs a plain ``def`` dependency
# in the thread pool, one hop per dependency per request. A write request hops once, for
# its endpoint (the domain call).


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_app(services: ServicesDep) -> GrievanceApp:
    return services.app


async def get_read_models(services: ServicesDep) -> ReadModels:
    return services.read_models


AppDep = Annotated[GrievanceApp, Depends(get_app)]
ReadModelsDep = Annotated[ReadModels, Depends(get_read_models)]

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


def _unauthorized(message: str) -> ProblemError:
    return ProblemError("unauthorized", message=message, headers={"WWW-Authenticate": "Bearer"})


def key_from_authorization(header: str) -> str | None:
    """The key an ``Authorization`` header carries: a bearer token, or the password (else the
    user) of HTTP Basic, which a client keeping its key in the endpoint URL sends."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


async def authenticated(services: Services, token: str) -> TokenRecord | None:
    """The active token record of this secret (from memory if it was checked in the last
    seconds, else from the store in a worker thread), or None."""
    record = services.tokens.cached(token)
    if record is None:
        record = await anyio.to_thread.run_sync(services.tokens.authenticate, token)
    return record


async def current_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """401 unless a valid, unrevoked bearer token came with the request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("token-missing")
    record = await authenticated(services, credentials.credentials)
    if record is None:
        raise _unauthorized("token-invalid")
    principal = Principal.from_record(record)
    # async dependency: runs in the request's task, so the access log and the
    # endpoint's thread both see these.
    request.state.principal = principal.name
    request.state.role = principal.role.value
    structlog.contextvars.bind_contextvars(principal=principal.name, role=principal.role.value)
    return principal


# ---------------------------------------------------------------- who may do what

# SYSTEM is the workflows acting on deadlines: never a caller over HTTP.
HTTP_ROLES = frozenset(Role) - {Role.SYSTEM}


class Read(StrEnum):
    """What a read-only route shows. Commands are governed by the domain's table
    (``domain.rules.ACTION_ROLES``); reads, which the domain does not govern, are here."""

    GRIEVANCES = "grievances"  # GET /grievances, /callbacks (lists)
    GRIEVANCE = "grievance"  # GET /grievances/{id}, then scoped per caller
    REFERENCE = "reference"  # GET /categories, /departments
    ASSIGNMENTS = "assignments"  # GET /assignments, then scoped per caller
    AUDIT = "audit"  # GET /audit/...
    KPIS = "kpis"  # GET /kpis and the dashboard's 三率 trend
    RATINGS = "ratings"  # GET /rating-rounds/{id}, then scoped per caller
    RANKINGS = "rankings"  # GET /rankings; a department sees its own line only
    KNOWLEDGE = "knowledge"  # GET /knowledge/search, /knowledge/articles/{id}
    SERVICE_REQUESTS = "service_requests"  # Open311 GET requests, then scoped per caller


_STAFF = frozenset({Role.OPERATOR, Role.SUPERVISOR})
READ_ROLES: Mapping[Read, frozenset[Role]] = MappingProxyType(
    {
        Read.GRIEVANCES: _STAFF,
        Read.GRIEVANCE: HTTP_ROLES,
        Read.REFERENCE: HTTP_ROLES,
        Read.ASSIGNMENTS: _STAFF | {Role.DEPARTMENT},
        Read.AUDIT: _STAFF,
        Read.KPIS: frozenset({Role.SUPERVISOR}),
        Read.RATINGS: frozenset({Role.SUPERVISOR, Role.DEPARTMENT}),
        Read.RANKINGS: frozenset({Role.SUPERVISOR, Role.DEPARTMENT}),
        Read.KNOWLEDGE: _STAFF,
        Read.SERVICE_REQUESTS: _STAFF | {Role.OPEN311},
    }
)


def roles_of(what: Action | Read) -> frozenset[Role]:
    """The roles that may call a route: for a command the domain's, minus SYSTEM."""
    if isinstance(what, Read):
        return READ_ROLES[what]
    return roles_for(what) & HTTP_ROLES


def role_names(roles: frozenset[Role]) -> list[str]:
    """In the order of ``Role`` (stable, for messages and documentation)."""
    return [r.value for r in Role if r in roles]


def forbidden(role: Role, roles: frozenset[Role]) -> ProblemError:
    """403 naming the roles that may (also as ``roles``)."""
    names = role_names(roles)
    return ProblemError(
        "forbidden",
        message="role-forbidden",
        params={"role": role.value, "roles": names},
        roles=names,
    )


class RoleCheck:
    """A dependency: the caller's principal, 403 unless its role is one of ``roles``."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(
        self, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if principal.role not in self.roles:
            raise forbidden(principal.role, self.roles)
        return principal


@cache
def require(*roles: Role) -> RoleCheck:
    """One ``RoleCheck`` per set of roles (so FastAPI runs it once per request)."""
    return RoleCheck(frozenset(roles))


def permit(what: Action | Read) -> RoleCheck:
    """The dependency that admits the roles of ``roles_of(what)``."""
    roles = roles_of(what)
    return require(*(r for r in Role if r in roles))


def guarded(what: Action | Read) -> dict[str, Any]:
    """Route keyword arguments: only ``roles_of(what)`` may call it (others 403, before the
    body is read); the OpenAPI operation lists them as ``x-roles`` (and ``x-action``)."""
    extra: dict[str, Any] = {"x-roles": role_names(roles_of(what))}
    if isinstance(what, Action):
        extra["x-action"] = what.value
    return {"dependencies": [Depends(permit(what))], "openapi_extra": extra}


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
# For routes outside this package's routers that take the principal as a parameter.
Staff = Annotated[Principal, Depends(permit(Read.GRIEVANCES))]
Supervisor = Annotated[Principal, Depends(permit(Read.KPIS))]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_VERSION = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')


@dataclass(frozen=True)
class WriteOptions:
    """The command id (from ``Idempotency-Key``) and expected version (from ``If-Match``)."""

    command_id: str | None
    expected_version: int | None


def command_id_for(principal: Principal, method: str, path: str, key: str) -> str:
    """Stable per caller, route and key: a retried request is the same domain command."""
    digest = hashlib.sha256(f"{principal.token_id}|{method}|{path}|{key}".encode()).hexdigest()
    return f"http:{digest[:40]}"


async def write_options(
    request: Request,
    principal: AnyPrincipal,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="Retry-safe key: the same key and body replays the first response.",
        ),
    ] = None,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=64,
            description="The grievance version this change is based on (412 when stale).",
        ),
    ] = None,
) -> WriteOptions:
    command_id = None
    if idempotency_key is not None:
        if not _KEY.match(idempotency_key):
            raise ProblemError(
                "invalid-request", message="idempotency-key-invalid", field="Idempotency-Key"
            )
        command_id = command_id_for(principal, request.method, request.url.path, idempotency_key)
    expected = None
    if if_match is not None and if_match.strip() != "*":
        match = _VERSION.match(if_match.strip())
        if match is None:
            raise ProblemError("precondition-invalid", field="If-Match")
        expected = int(match.group(1))
    return WriteOptions(command_id, expected)


WriteDep = Annotated[WriteOptions, Depends(write_options)]
