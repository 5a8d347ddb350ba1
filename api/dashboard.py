"""``GET /dashboard``: the page supervisors, operators and departments look at.

The page is static HTML + JS (Chart.js vendored into ``api/static/vendor`` by
``make``; nothing comes from a CDN). It reads the same JSON the API serves
(``/v1/kpis``, ``/v1/grievances``, ``/v1/callbacks``, ``/v1/assignments``) with the
bearer token the user pastes (kept in localStorage) or passes as ``?token=``, plus
the dashboard-only routes below, which read the same read models.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict

from api.deps import AnyPrincipal, AppDep, ReadModelsDep, Staff, Supervisor
from api.i18n import STATUS_LABELS, choose_language
from api.problems import ProblemError
from api.routers.common import READ_PROBLEMS, problems, read_model_call
from domain.grievance import DISPATCH_CENTRE
from projections.views import week_start

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = APIRouter(tags=["dashboard"])

STRINGS: dict[str, tuple[str, str]] = {
    "title": ("接诉即办 · 闭环看板", "12345 grievance loop · dashboard"),
    "token": ("访问令牌", "Access token"),
    "save": ("保存", "Save"),
    "forget": ("清除", "Forget"),
    "refresh": ("刷新", "Refresh"),
    "updated": ("更新于", "Updated"),
    "auto": ("每 30 秒自动刷新", "refreshes every 30 s"),
    "signed_in_as": ("当前身份", "Signed in as"),
    "need_token": ("请粘贴访问令牌后查看数据。", "Paste an access token to see the data."),
    "bad_token": ("令牌无效或已吊销。", "The token is invalid or revoked."),
    "failed": ("加载失败", "Failed to load"),
    "none": ("暂无", "None"),
    "tab_supervisor": ("督办考核", "Supervision"),
    "tab_operator": ("派单回访", "Dispatch & callbacks"),
    "tab_department": ("承办单位", "Departments"),
    "kpis": ("三率（近 30 天）", "The three rates (last 30 days)"),
    "department": ("承办单位", "Department"),
    "dispatched": ("派单", "Dispatched"),
    "signed_for_in_time": ("按时签收", "Signed for in time"),
    "response_rate": ("响应率", "Response rate"),
    "feedback_received": ("回访", "Callbacks reached"),
    "resolution_rate": ("解决率", "Resolution rate"),
    "satisfaction_rate": ("满意率", "Satisfaction rate"),
    "returned": ("退单", "Returned"),
    "overdue": ("超时", "Overdue"),
    "escalated": ("督办", "Escalated"),
    "trend": ("每周趋势", "Weekly trend"),
    "week": ("周", "Week"),
    "overdue_list": ("超时工单", "Overdue grievances"),
    "number": ("工单号", "Case number"),
    "status": ("状态", "Status"),
    "category": ("类别", "Category"),
    "lead": ("主办单位", "Lead department"),
    "owner": ("责任单位", "Responsible"),
    "deadline": ("期限", "Deadline"),
    "level": ("督办级别", "Escalation level"),
    "hotspots": ("热点问题（近 8 周）", "Hotspots (last 8 weeks)"),
    "place": ("地点", "Place"),
    "count": ("件数", "Grievances"),
    "intake": ("待梳理 / 待派单", "Intake: to classify or dispatch"),
    "redispatch": ("退单待仲裁", "Returned: to re-dispatch"),
    "callbacks": ("待回访", "Callbacks due"),
    "window_ends": ("回访截止", "Window ends"),
    "attempts": ("未接通", "Unanswered calls"),
    "received_at": ("受理时间", "Received"),
    "queue": ("本单位待办", "Our queue"),
    "department_code": ("单位编码", "Department code"),
    "show": ("查看", "Show"),
    "role": ("角色", "Role"),
    "state": ("办理状态", "State"),
    "due": ("下一期限", "Next deadline"),
    "yes": ("是", "yes"),
    "lang_switch": ("English", "中文"),
}

TERMS: dict[str, tuple[str, str]] = {
    "sign_for": ("签收", "sign for"),
    "resolve": ("办结", "resolve"),
    "report_in": ("报到", "report in"),
    "redispatch": ("重新派单", "re-dispatch"),
    "feedback": ("回访", "callback"),
    "lead": ("主办", "lead"),
    "assisting": ("协办", "assisting"),
    "summoned": ("吹哨报到", "summoned"),
    "signed_for": ("已签收", "signed for"),
    "operator": ("接线员", "operator"),
    "supervisor": ("督办", "supervisor"),
    "department": ("承办单位", "department"),
    "open311": ("Open311", "Open311"),
    "system": ("系统", "system"),
}


def _pick(table: dict[str, tuple[str, str]], lang: str) -> dict[str, str]:
    return {key: en if lang == "en" else zh for key, (zh, en) in table.items()}


def _boot(app: Any, lang: str) -> dict[str, Any]:
    policies = app.policies
    name = "name_en" if lang == "en" else "name"
    directory = policies.directory
    places = {code: label for code, (_district, label) in directory.streets.items()} | {
        code: label for code, (_street, label) in directory.communities.items()
    }
    return {
        "lang": lang,
        "timezone": policies.calendar.timezone,
        "strings": _pick(STRINGS, lang),
        "terms": {**_pick(TERMS, lang), **_pick(STATUS_LABELS, lang)},
        "departments": {
            DISPATCH_CENTRE: "Dispatch centre" if lang == "en" else "派单中心",
            **{
                code: getattr(dept, name) or dept.name
                for code, dept in directory.departments.items()
            },
        },
        "categories": {
            code: getattr(cat, name) or cat.name
            for code, cat in policies.categories.by_code.items()
        },
        "places": places,
    }


class WhoAmI(BaseModel):
    name: str
    role: str
    department: str | None = None


class WeekKpis(BaseModel):
    """Counts and 三率 of one local week (Monday to Sunday)."""

    model_config = ConfigDict(extra="allow")

    week_start: str
    week_end: str
    response_rate: float | None = None
    resolution_rate: float | None = None
    satisfaction_rate: float | None = None


class TrendPublic(BaseModel):
    weeks: int
    department: str | None = None
    items: list[WeekKpis]


class Hotspot(BaseModel):
    model_config = ConfigDict(extra="allow")

    category: str
    district: str
    street: str
    community: str
    grievances: int
    by_week: dict[str, int]


class HotspotsPublic(BaseModel):
    weeks: int
    since: str
    items: list[Hotspot]


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(request: Request, app: AppDep) -> HTMLResponse:
    """The dashboard page (Simplified Chinese; ``?lang=en`` for English)."""
    lang = choose_language(request)
    boot = json.dumps(_boot(app, lang), ensure_ascii=False).replace("</", "<\\/")
    page = (STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    page = page.replace("__LANG__", "en" if lang == "en" else "zh-CN")
    page = page.replace("__TITLE__", STRINGS["title"][1 if lang == "en" else 0])
    page = page.replace("__BOOT__", boot)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/static/{path:path}", include_in_schema=False)
def static_file(path: str) -> FileResponse:
    """The page's JS, CSS and the vendored chart library."""
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise ProblemError("not-found", f"没有文件 {path}", f"no such file: {path}")
    return FileResponse(target, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/data/me", response_model=WhoAmI, responses=problems(401))
def whoami(who: AnyPrincipal) -> WhoAmI:
    """Who the token belongs to, so the page shows only the panels it may read."""
    return WhoAmI(name=who.name, role=who.role.value, department=who.department)


@router.get("/dashboard/data/trend", response_model=TrendPublic, responses=READ_PROBLEMS)
def trend(
    app: AppDep,
    read_models: ReadModelsDep,
    who: Supervisor,
    weeks: Annotated[int, Query(ge=1, le=52)] = 8,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> TrendPublic:
    """三率 per local week, oldest first (all departments, or one)."""
    items = read_model_call(
        read_models.kpi_trend,
        weeks=weeks,
        department=department,
        now=app.clock(),
    )
    return TrendPublic(
        weeks=weeks, department=department, items=[WeekKpis.model_validate(i) for i in items]
    )


@router.get("/dashboard/data/hotspots", response_model=HotspotsPublic, responses=READ_PROBLEMS)
def hotspots(
    app: AppDep,
    read_models: ReadModelsDep,
    who: Staff,
    weeks: Annotated[int, Query(ge=1, le=52)] = 8,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HotspotsPublic:
    """Top category × place counts over the last weeks (repeated complaints stand out)."""
    items = read_model_call(
        read_models.hotspots,
        weeks=weeks,
        limit=limit,
        now=app.clock(),
    )
    today = app.clock().astimezone(app.policies.calendar.tz).date()
    since = week_start(today) - timedelta(weeks=weeks - 1)
    return HotspotsPublic(
        weeks=weeks,
        since=since.isoformat(),
        items=[Hotspot.model_validate(i) for i in items],
    )
