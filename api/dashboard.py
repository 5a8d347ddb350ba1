"""``GET /dashboard``: the page supervisors, operators and departments look at.

The page is a template (``api/templates/dashboard.html``) whose words come from the
catalogue, plus static JS and CSS (Chart.js vendored into ``api/static/vendor``; nothing
comes from a CDN). It reads the same JSON the API serves
(``/v1/kpis``, ``/v1/grievances``, ``/v1/callbacks``, ``/v1/assignments``) with the
bearer token the user pastes (kept in localStorage) or passes as ``?token=``, plus
the dashboard-only routes below, which read the same read models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from api.catalogue import department_name, localized_name, section, t
from api.deps import AnyPrincipal, AppDep, ReadModelsDep, Staff, Supervisor
from api.i18n import Lang, choose_language
from api.pages import environment
from api.routers.common import READ_PROBLEMS, problems, read_model_call
from domain.grievance import DISPATCH_CENTRE
from projections.views import week_start

router = APIRouter(tags=["dashboard"])


def _boot(app: Any, lang: Lang) -> dict[str, Any]:
    """What the page's script needs: its words (from the catalogue) and the names of things."""
    policies = app.policies
    directory = policies.directory
    places = {code: name for code, (_district, name) in directory.streets.items()} | {
        code: name for code, (_street, name) in directory.communities.items()
    }
    return {
        "lang": lang,
        "timezone": policies.calendar.timezone,
        "strings": section("dashboard", lang),
        "terms": {
            "status": section("status", lang),
            "kind": section("deadline_kind", lang),
            "state": section("assignment_state", lang),
            "role": section("assignment_role", lang) | section("role", lang),
            "request_type": section("request_type", lang),
        },
        "departments": {
            DISPATCH_CENTRE: department_name(DISPATCH_CENTRE, lang, directory),
            **{code: department_name(code, lang, directory) for code in directory.departments},
        },
        "categories": {
            code: localized_name(cat, lang) for code, cat in policies.categories.by_code.items()
        },
        "places": places,
    }


class _StaticFiles(StaticFiles):
    """The page's files, revalidated on every load (a new release shows at once)."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        # A NUL (``%00``) can name no file; some os/Starlette versions raise ValueError on
        # it (a 500) instead of answering "not found".
        if "\x00" in path:
            return "", None
        return super().lookup_path(path)

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI) -> None:
    """The page's routes, and its JS, CSS and chart library as static files."""
    app.include_router(router)
    static = _StaticFiles(packages=[("api", "static")])
    app.mount("/dashboard/static", static, name="dashboard-static")


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
    page = (
        environment()
        .get_template("dashboard.html")
        .render(
            html_lang="en" if lang == "en" else "zh-CN",
            title=t("dashboard.title", lang),
            lang=lang,
            boot=_boot(app, lang),
        )
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/data/me", response_model=WhoAmI, responses=problems(401))
def whoami(who: AnyPrincipal) -> WhoAmI:
    """Who the token belongs to, so the page shows only the panels it may read."""
    return WhoAmI(name=who.name, role=who.role.value, department=who.department)


@dataclass
class Window:
    """The weeks to look back over (``?weeks=``, default 8) and where to read them."""

    app: AppDep
    read_models: ReadModelsDep
    weeks: Annotated[int, Query(ge=1, le=52)] = 8


WindowDep = Annotated[Window, Depends()]


@router.get("/dashboard/data/trend", response_model=TrendPublic, responses=READ_PROBLEMS)
def trend(
    window: WindowDep,
    who: Supervisor,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> TrendPublic:
    """三率 per local week, oldest first (all departments, or one)."""
    weeks, now = window.weeks, window.app.clock()
    items = read_model_call(
        window.read_models.kpi_trend, weeks=weeks, department=department, now=now
    )
    weekly = [WeekKpis.model_validate(i) for i in items]
    return TrendPublic(weeks=weeks, department=department, items=weekly)


@router.get("/dashboard/data/hotspots", response_model=HotspotsPublic, responses=READ_PROBLEMS)
def hotspots(
    window: WindowDep, who: Staff, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> HotspotsPublic:
    """Top category × place counts over the last weeks (repeated complaints stand out)."""
    weeks, now = window.weeks, window.app.clock()
    items = read_model_call(window.read_models.hotspots, weeks=weeks, limit=limit, now=now)
    today = now.astimezone(window.app.policies.calendar.tz).date()
    since = week_start(today) - timedelta(weeks=weeks - 1)
    spots = [Hotspot.model_validate(i) for i in items]
    return HotspotsPublic(weeks=weeks, since=since.isoformat(), items=spots)
