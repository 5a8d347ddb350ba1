"""The one place that turns errors into HTTP statuses and RFC 9457 ``application/problem+json``.

| error | status |
| --- | --- |
| ``ValidationError`` (the field is named) | 422 |
| ``NegativeListError`` (the dispatch itself is not permitted: its content, not the state) | 422 |
| ``IllegalTransitionError`` / ``AssignmentStateError`` (current status, allowed actions) | 409 |
| ``ConcurrentWriteError`` / ``CommandIdReusedError`` | 409 |
| ``StaleVersionError`` (``If-Match``) | 412 |
| ``NotAssignedError`` / ``PermissionDeniedError`` / ``SummonRefusedError`` | 403 |
| ``GrievanceNotFoundError`` / ``UnknownAssignmentError`` | 404 |
| request validation (every field listed) | 422 |
| anything unexpected | 500, with the request id and nothing else |

``title`` and ``detail`` are Simplified Chinese unless the caller asked for English
(``?lang=en`` or ``Accept-Language: en``); ``code`` is a stable English identifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from api.catalogue import describe, has, join, t
from api.i18n import Lang, choose_language
from domain.errors import (
    AssignmentStateError,
    DomainError,
    IllegalTransitionError,
    NotAssignedError,
    UnknownAssignmentError,
    ValidationError,
)
from domain.model import Role
from domain.policies.directory import Directory

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://closeloop.invalid/problems/"

# code -> HTTP status; the title of each is ``title.<code>`` in the catalogue.
STATUSES: dict[str, int] = {
    "invalid-command": 422,
    "invalid-request": 422,
    "negative-list": 422,
    "illegal-transition": 409,
    "illegal-assignment-transition": 409,
    "illegal-article-transition": 409,
    "concurrent-write": 409,
    "command-id-reused": 409,
    "stale-version": 412,
    "not-assigned": 403,
    "permission-denied": 403,
    "summon-refused": 403,
    "round-state": 409,
    "round-not-found": 404,
    "forbidden": 403,
    "unauthorized": 401,
    "grievance-not-found": 404,
    "article-not-found": 404,
    "unknown-assignment": 404,
    "not-found": 404,
    "method-not-allowed": 405,
    "idempotency-key-reused": 422,
    "payload-too-large": 413,
    "rate-limited": 429,
    "unsupported-media-type": 415,
    "precondition-invalid": 422,
    "not-ready": 503,
    "internal-error": 500,
}


class ProblemError(Exception):
    """An error the API itself raises (auth, idempotency, preconditions): rendered like the rest.

    The detail is the catalogue's ``error.<message>`` (``message`` defaults to the code)
    filled with ``params``.
    """

    def __init__(
        self,
        code: str,
        *,
        message: str | None = None,
        params: dict[str, Any] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.status = status or STATUSES[code]
        self.message = message or code
        self.params = params or {}
        self.headers = headers or {}
        self.extensions = extensions

    def detail(self, lang: Lang) -> str:
        return t(f"error.{self.message}", lang, **self.params)


def problem_body(
    code: str,
    lang: Lang,
    detail: str,
    *,
    status: int | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    title_key = f"title.{code}" if has(f"title.{code}", lang) else "title.domain-error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": t(title_key, lang),
        "status": status or STATUSES.get(code, 500),
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if v is not None})
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=int(body["status"]), media_type=PROBLEM_JSON, headers=headers
    )


def error_detail(exc: DomainError, lang: Lang, directory: Directory | None = None) -> str:
    """One domain error in words (the catalogue's ``describe``)."""
    return describe(exc, lang, directory)


def _http_code(exc: DomainError) -> str:
    """The problem's ``code``: the error class's (a ValidationError's specific code is detail)."""
    code = str(type(exc).code)
    return code if code in STATUSES else "invalid-command"


def domain_problem(
    exc: DomainError, lang: Lang, directory: Directory | None = None
) -> dict[str, Any]:
    """Status, code and localised detail for one domain error."""
    code = _http_code(exc)
    detail = error_detail(exc, lang, directory)
    if isinstance(exc, AssignmentStateError):
        return problem_body(
            code,
            lang,
            detail,
            current_status=exc.status,
            assignment_id=exc.assignment_id,
            assignment_state=exc.assignment_state,
            allowed_actions=exc.allowed,
        )
    if isinstance(exc, IllegalTransitionError):
        return problem_body(
            code, lang, detail, current_status=exc.status, allowed_actions=exc.allowed
        )
    if isinstance(exc, ValidationError):
        field = exc.field
        errors = [{"field": field, "message": detail}] if field else None
        return problem_body(code, lang, detail, field=field, errors=errors)
    return problem_body(code, lang, detail)


#: What a department is told instead (issue 15): never which department holds another's
#: assignment, nor the case number of a grievance it asked about by assignment id.
_FOR_DEPARTMENTS: dict[type[DomainError], str] = {
    NotAssignedError: "not-your-assignment",
    UnknownAssignmentError: "no-such-assignment",
}


def concealed(exc: DomainError, conn: HTTPConnection) -> DomainError:
    """``exc`` as a department caller may see it: the same status and code, a generic
    detail naming only the assignment id it sent."""
    if getattr(conn.state, "role", None) != Role.DEPARTMENT.value:
        return exc
    for kind, code in _FOR_DEPARTMENTS.items():
        if isinstance(exc, kind):
            return kind(code, assignment_id=exc.params.get("assignment_id"))
    return exc


def _directory(conn: HTTPConnection) -> Directory | None:
    """The running application's departments (a city may replace the packaged ones)."""
    services = getattr(conn.app.state, "services", None)
    app = getattr(services, "app", None)
    policies = getattr(app, "policies", None)
    return getattr(policies, "directory", None)


def _field_of(loc: Sequence[Any]) -> tuple[str, str]:
    parts = [str(p) for p in loc]
    where = parts[0] if parts and parts[0] in ("body", "query", "path", "header") else "body"
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or where, where


def _field_message(err: Mapping[str, Any], lang: Lang) -> str:
    """What is wrong with one field, from pydantic's error type and context."""
    key = f"request_error.{err.get('type', '')}"
    if has(key, lang):
        context = {k: v for k, v in (err.get("ctx") or {}).items() if k != "error"}
        if isinstance(context.get("expected"), str):
            # pydantic's "'a', 'b' or 'c'": the choices, listed the catalogue's way
            choices = context["expected"].replace(" or ", ", ").split(", ")
            context["expected"] = join(choices, lang)
        return t(key, lang, **context)
    # A type the catalogue does not know: pydantic's own sentence is English.
    return str(err.get("msg", "")) if lang == "en" else t("request_error.invalid", lang)


def validation_problem(exc: RequestValidationError, lang: Lang) -> dict[str, Any]:
    errors = []
    for err in exc.errors():
        field, where = _field_of(err.get("loc", ()))
        errors.append({"field": field, "in": where, "message": _field_message(err, lang)})
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    detail = t("error.invalid-request-fields", lang, count=len(errors), fields=fields)
    return problem_body(
        "invalid-request",
        lang,
        detail,
        field=errors[0]["field"] if errors else None,
        errors=errors,
    )


def install(app: FastAPI) -> None:
    """Register every exception handler on the app."""
    log = structlog.get_logger("api")

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        lang = choose_language(request)
        body = problem_body(
            exc.code,
            lang,
            exc.detail(lang),
            status=exc.status,
            instance=request.url.path,
            **exc.extensions,
        )
        return problem_response(body, exc.headers)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        exc = concealed(exc, request)
        body = domain_problem(exc, choose_language(request), _directory(request))
        body["instance"] = request.url.path
        return problem_response(body)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        body = validation_problem(exc, choose_language(request))
        body["instance"] = request.url.path
        return problem_response(body)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        lang = choose_language(request)
        code = {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}
        problem = code.get(exc.status_code, "invalid-request")
        # Starlette answers an unparseable body with 400; like any malformed request it is a 422.
        status = 422 if exc.status_code == 400 else exc.status_code
        detail = str(exc.detail) if lang == "en" else t(f"error.{problem}", lang)
        body = problem_body(problem, lang, detail, status=status, instance=request.url.path)
        return problem_response(body, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error_type=type(exc).__name__)
        lang = choose_language(request)
        request_id = getattr(request.state, "request_id", None)
        detail = t("error.internal-error", lang)
        body = problem_body("internal-error", lang, detail, request_id=request_id)
        return problem_response(body)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
