"""The one place that turns errors into HTTP statuses and RFC 9457 ``application/problem+json``.

| error | status |
| --- | --- |
| ``ValidationError`` (the field is named) | 422 |
| ``NegativeListError`` (the dispatch itself is not permitted: its content, not the state) | 422 |
| ``IllegalTransitionError`` / ``AssignmentStateError`` (current status, allowed actions) | 409 |
| ``ConcurrentWriteError`` / ``CommandIdReusedError`` | 409 |
| ``StaleVersionError`` (``If-Match``) | 412 |
| ``NotAssignedError`` / ``PermissionDeniedError`` | 403 |
| ``GrievanceNotFoundError`` / ``UnknownAssignmentError`` | 404 |
| request validation (every field listed) | 422 |
| anything unexpected | 500, with the request id and nothing else |

``title`` and ``detail`` are Simplified Chinese unless the caller asked for English
(``?lang=en`` or ``Accept-Language: en``); ``code`` is a stable English identifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.i18n import Lang, action_label, choose_language, status_label
from domain.errors import (
    AssignmentStateError,
    CommandIdReusedError,
    ConcurrentWriteError,
    DomainError,
    GrievanceNotFoundError,
    IllegalTransitionError,
    NegativeListError,
    NotAssignedError,
    PermissionDeniedError,
    StaleVersionError,
    UnknownAssignmentError,
    ValidationError,
)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://closeloop.invalid/problems/"

ASSIGNMENT_STATE_LABELS = {
    "dispatched": "待签收",
    "signed_for": "已签收",
    "returned": "已退单",
    "completed": "已完成",
    "resolved": "已办结",
    "reported_in": "已报到",
    "superseded": "已被替代",
    "cancelled": "已取消",
}

# code -> (status, Chinese title, English title)
TITLES: dict[str, tuple[int, str, str]] = {
    "invalid-command": (422, "请求数据不正确", "Invalid request data"),
    "invalid-request": (422, "请求格式不正确", "Malformed request"),
    "negative-list": (422, "派单违反社区负面清单", "Dispatch forbidden by the negative list"),
    "illegal-transition": (409, "当前状态不允许此操作", "Not allowed in the current status"),
    "illegal-assignment-transition": (
        409,
        "派单当前状态不允许此操作",
        "Not allowed in the assignment's current state",
    ),
    "concurrent-write": (409, "数据已被他人修改", "Changed by someone else"),
    "command-id-reused": (409, "命令编号已被其他操作使用", "Command id already used"),
    "stale-version": (412, "版本已过期", "Version is stale"),
    "not-assigned": (403, "不是本单位的派单", "Not your department's assignment"),
    "permission-denied": (403, "无权执行此操作", "Permission denied"),
    "forbidden": (403, "无权访问", "Forbidden"),
    "unauthorized": (401, "未认证", "Not authenticated"),
    "grievance-not-found": (404, "诉求不存在", "Grievance not found"),
    "unknown-assignment": (404, "派单不存在", "Assignment not found"),
    "not-found": (404, "资源不存在", "Not found"),
    "method-not-allowed": (405, "不支持此请求方法", "Method not allowed"),
    "idempotency-key-reused": (
        422,
        "幂等键已用于另一请求",
        "Idempotency key was used for a different request",
    ),
    "payload-too-large": (413, "请求体过大", "Request body too large"),
    "precondition-invalid": (422, "If-Match 格式不正确", "Invalid If-Match header"),
    "not-ready": (503, "服务尚未就绪", "Service not ready"),
    "internal-error": (500, "服务器内部错误", "Internal server error"),
}


class ProblemError(Exception):
    """An error the API itself raises (auth, idempotency, preconditions): rendered like the rest."""

    def __init__(
        self,
        code: str,
        detail_zh: str,
        detail_en: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail_en)
        self.code = code
        self.status = status or TITLES[code][0]
        self.detail_zh = detail_zh
        self.detail_en = detail_en
        self.headers = headers or {}
        self.extensions = extensions


def problem_body(
    code: str,
    lang: Lang,
    detail: str,
    *,
    status: int | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    default_status, title_zh, title_en = TITLES.get(code, (500, "错误", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title_en if lang == "en" else title_zh,
        "status": status or default_status,
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


def _allowed(allowed: Sequence[str], lang: Lang) -> str:
    if not allowed:
        return "nothing" if lang == "en" else "无"
    sep = ", " if lang == "en" else "、"
    return sep.join(action_label(a, lang) for a in allowed)


def domain_problem(exc: DomainError, lang: Lang) -> dict[str, Any]:
    """Status, code and localised detail for one domain error."""
    message = exc.message
    zh = lang == "zh"
    if isinstance(exc, AssignmentStateError):
        state = ASSIGNMENT_STATE_LABELS.get(exc.assignment_state, exc.assignment_state)
        detail = (
            f"派单 {exc.assignment_id} 当前为「{state}」（诉求状态「"
            f"{status_label(exc.status, lang)}」），不能执行「{action_label(exc.action, lang)}」；"
            f"当前可执行：{_allowed(exc.allowed, lang)}。"
            if zh
            else f"{message}; allowed now: {_allowed(exc.allowed, lang)}"
        )
        return problem_body(
            exc.code,
            lang,
            detail,
            current_status=exc.status,
            assignment_id=exc.assignment_id,
            assignment_state=exc.assignment_state,
            allowed_actions=exc.allowed,
        )
    if isinstance(exc, IllegalTransitionError):
        detail = (
            f"诉求当前状态为「{status_label(exc.status, lang)}」，不能执行"
            f"「{action_label(exc.action, lang)}」；当前允许：{_allowed(exc.allowed, lang)}。"
            if zh
            else message
        )
        return problem_body(
            exc.code, lang, detail, current_status=exc.status, allowed_actions=exc.allowed
        )
    if isinstance(exc, ValidationError):
        field = exc.field
        detail = (
            (f"字段「{field}」不正确：{message}" if field else f"请求数据不正确：{message}")
            if zh
            else message
        )
        errors = [{"field": field, "message": message}] if field else None
        return problem_body("invalid-command", lang, detail, field=field, errors=errors)
    zh_prefix: dict[type[DomainError], str] = {
        NegativeListError: "该派单违反社区工作事项负面清单",
        ConcurrentWriteError: "该诉求刚被其他操作修改，请重新读取后再试",
        CommandIdReusedError: "该命令编号已用于另一项操作",
        StaleVersionError: "诉求版本已变化（If-Match 不匹配），请重新读取后再试",
        NotAssignedError: "该派单不属于本单位",
        PermissionDeniedError: "当前角色无权执行此操作",
        GrievanceNotFoundError: "找不到该诉求",
        UnknownAssignmentError: "找不到该派单",
    }
    for kind, prefix in zh_prefix.items():
        if isinstance(exc, kind):
            detail = f"{prefix}（{message}）" if zh else message
            return problem_body(kind.code, lang, detail)
    return problem_body("invalid-command", lang, f"请求未被接受（{message}）" if zh else message)


def _field_of(loc: Sequence[Any]) -> tuple[str, str]:
    parts = [str(p) for p in loc]
    where = parts[0] if parts and parts[0] in ("body", "query", "path", "header") else "body"
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or where, where


def validation_problem(exc: RequestValidationError, lang: Lang) -> dict[str, Any]:
    errors = []
    for err in exc.errors():
        field, where = _field_of(err.get("loc", ()))
        errors.append({"field": field, "in": where, "message": str(err.get("msg", ""))})
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    detail = (
        f"Invalid request: {fields}" if lang == "en" else f"请求有 {len(errors)} 处不正确：{fields}"
    )
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
            exc.detail_en if lang == "en" else exc.detail_zh,
            status=exc.status,
            instance=request.url.path,
            **exc.extensions,
        )
        return problem_response(body, exc.headers)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        body = domain_problem(exc, choose_language(request))
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
        detail = str(exc.detail) if lang == "en" else TITLES[problem][1]
        body = problem_body(problem, lang, detail, status=status, instance=request.url.path)
        return problem_response(body, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error_type=type(exc).__name__)
        lang = choose_language(request)
        request_id = getattr(request.state, "request_id", None)
        detail = (
            "An unexpected error occurred; quote the request id when reporting it."
            if lang == "en"
            else "发生意外错误，请联系管理员并提供请求编号。"
        )
        body = problem_body("internal-error", lang, detail, request_id=request_id)
        return problem_response(body)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
