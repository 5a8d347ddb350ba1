"""``/workbench``: the pages operators, departments and supervisors do their work in.

Server-rendered templates (``api/templates/workbench/``) carry the words (catalogue
section ``workbench``) and the action forms; plain JS modules (``api/static/workbench/``)
read and write through the same ``/v1`` routes integrators use, with the bearer token kept
in localStorage as the dashboard keeps it. Nothing acts through a private route: the only
route of its own, the routing suggestion, reads the domain's routing policy.

Pages: ``/workbench`` (the queues of the signed-in role), ``/workbench/intake`` (a new
grievance, during a call) and ``/workbench/grievances/{id}`` (one grievance: case number,
status, deadlines, history, and the forms of what the caller may do now).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from api.catalogue import department_name, localized_name, section, t
from api.dashboard import _StaticFiles
from api.deps import AppDep, Staff
from api.i18n import Lang, choose_language
from api.pages import environment
from api.routers.common import problems
from domain.grievance import DISPATCH_CENTRE
from domain.model import Action, Location

router = APIRouter(tags=["workbench"])

#: Stricter than the API's default (``api.middleware``, which adds the other security
#: headers): no frames or workers at all; images may be the blobs the page reads attachments
#: into (fetched with the token, never linked).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}


@dataclass(frozen=True)
class Field:
    """One input of an action form. ``kind`` decides the widget and how its value is sent;
    ``options`` names the catalogue section a ``select`` lists."""

    name: str
    kind: str
    options: str = ""
    required: bool = True


@dataclass(frozen=True)
class Form:
    """The form of one command; its route and roles are read off the app's routes. The
    page shows the forms in this order and puts the focus in the first one shown, so the
    next step of the usual path comes first (dispatch before a reclassification)."""

    action: Action
    fields: tuple[Field, ...] = ()


REASON = Field("reason", "text", required=False)
FILE = (Field("file", "file"), Field("note", "text", required=False))
FORMS = (
    Form(
        Action.DISPATCH,
        (
            Field("lead", "department", required=False),
            Field("assisting", "departments", required=False),
            REASON,
        ),
    ),
    Form(
        Action.CLASSIFY,
        (Field("category", "category"), Field("urgency", "select", "urgency", False)),
    ),
    Form(
        Action.ANSWER_AT_INTAKE,
        (Field("articles", "articles", required=False), Field("answer", "textarea")),
    ),
    Form(
        Action.ARBITRATE,
        (
            Field("assignment_id", "assignment"),
            Field("decision", "select", "decision"),
            Field("department", "department", required=False),
            REASON,
        ),
    ),
    Form(
        Action.RECORD_FEEDBACK,
        (
            Field("contacted", "bool"),
            Field("resolved", "bool", required=False),
            Field("satisfaction", "select", "satisfaction", False),
            Field("comment", "textarea", required=False),
        ),
    ),
    Form(Action.SIGN_FOR),
    Form(Action.REPORT_IN),
    Form(Action.RESOLVE, (Field("account", "textarea"),)),
    Form(Action.COMPLETE_PART, (Field("account", "textarea"),)),
    Form(Action.REPORT_PROGRESS, (Field("note", "textarea"),)),
    Form(
        Action.REQUEST_EXTENSION, (Field("new_deadline", "datetime"), Field("reason", "textarea"))
    ),
    Form(Action.RETURN, (Field("reason", "textarea"),)),
    Form(Action.ATTACH_TO_ASSIGNMENT, FILE),
    Form(
        Action.DECIDE_EXTENSION,
        (
            Field("assignment_id", "assignment"),
            Field("granted", "bool"),
            Field("new_deadline", "datetime", required=False),
            REASON,
        ),
    ),
    Form(Action.SUMMON, (Field("departments", "departments"), Field("reason", "textarea"))),
    Form(
        Action.ESCALATE,
        (
            Field("level", "select", "escalation_level"),
            Field("reason", "textarea"),
            Field("assignment_id", "assignment", required=False),
        ),
    ),
    Form(Action.ATTACH, FILE),
    Form(Action.REJECT, (Field("reason", "textarea"),)),
    Form(Action.WITHDRAW, (Field("reason", "textarea"),)),
)


def command_routes(app: FastAPI) -> dict[str, dict[str, Any]]:
    """Each command's ``POST`` path and roles, read off the API's OpenAPI document (the
    contract integrators read)."""
    found: dict[str, dict[str, Any]] = {}
    for path, operations in app.openapi()["paths"].items():
        post = operations.get("post") or {}
        if "x-action" in post:
            found[post["x-action"]] = {"path": path, "roles": post["x-roles"]}
    return found


def _boot(request: Request, app: Any, lang: Lang) -> dict[str, Any]:
    """What the scripts need: words, terms, names of things, the command routes, the clock."""
    policies = app.policies
    directory = policies.directory
    now: datetime = app.clock()
    offset = now.astimezone(policies.calendar.tz).strftime("%z")  # +0800
    return {
        "lang": lang,
        "timezone": policies.calendar.timezone,
        "utc_offset": f"{offset[:3]}:{offset[3:]}",
        "now": now.isoformat(),
        "strings": section("workbench", lang),
        "terms": {
            name: section(name, lang)
            for name in (
                "status",
                "action",
                "assignment_state",
                "deadline_kind",
                "channel",
                "urgency",
                "satisfaction",
                "decision",
                "event",
                "escalation_level",
                "outcome",
                "time_unit",
                "request_type",
                "word",
            )
        }
        | {"role": section("assignment_role", lang) | section("role", lang)},
        "departments": {
            DISPATCH_CENTRE: department_name(DISPATCH_CENTRE, lang, directory),
            **{code: department_name(code, lang, directory) for code in directory.departments},
        },
        "categories": [
            {
                "code": top.code,
                "name": localized_name(top, lang),
                "children": [
                    {"code": leaf.code, "name": localized_name(leaf, lang)}
                    for leaf in policies.categories.children(top.code)
                ],
            }
            for top in policies.categories.top
        ],
        "commands": command_routes(request.app),
    }


def _page(request: Request, app: Any, template: str, **context: Any) -> HTMLResponse:
    lang = choose_language(request)
    name = template.removesuffix(".html")
    boot = _boot(request, app, lang)
    page = (
        environment()
        .get_template(f"workbench/{template}")
        .render(
            html_lang="en" if lang == "en" else "zh-CN",
            lang=lang,
            page=name,
            boot=boot,
            forms=FORMS,
            # What a form may name: departments, not the dispatch centre (which owns deadlines).
            departments={k: v for k, v in boot["departments"].items() if k != DISPATCH_CENTRE},
            section=section,
            title=" · ".join((t("workbench.title", lang), t(f"workbench.title_{name}", lang))),
            **context,
        )
    )
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get("/workbench", response_class=HTMLResponse, include_in_schema=False)
def queues(request: Request, app: AppDep) -> HTMLResponse:
    """The signed-in role's queues (Simplified Chinese; ``?lang=en`` for English)."""
    return _page(request, app, "queues.html")


@router.get("/workbench/intake", response_class=HTMLResponse, include_in_schema=False)
def intake(request: Request, app: AppDep) -> HTMLResponse:
    """A new grievance, taken during a call."""
    return _page(request, app, "intake.html")


@router.get(
    "/workbench/grievances/{grievance_id}", response_class=HTMLResponse, include_in_schema=False
)
def grievance(grievance_id: UUID, request: Request, app: AppDep) -> HTMLResponse:
    """One grievance: what it is, its deadlines and history, and what may be done now."""
    return _page(request, app, "grievance.html", grievance_id=str(grievance_id))


class RoutingSuggestion(BaseModel):
    """Where the routing rules would dispatch a classified grievance (``rule`` names why)."""

    lead: str
    assisting: list[str]
    rule: str


@router.get(
    "/workbench/data/grievances/{grievance_id}/routing",
    response_model=RoutingSuggestion,
    responses=problems(401, 403, 404, 422),
)
def routing_suggestion(grievance_id: UUID, app: AppDep, who: Staff) -> RoutingSuggestion:
    """The routing rules' lead and assisting departments for this grievance (read only)."""
    g = app.get_grievance(grievance_id)
    if g.category is None:
        return RoutingSuggestion(lead="", assisting=[], rule="")
    policies = app.policies
    route = policies.routing.route(
        policies.categories.leaf(g.category), Location.from_dict(g.location), policies.directory
    )
    return RoutingSuggestion(lead=route.lead, assisting=list(route.assisting), rule=route.rule)


def install(app: FastAPI) -> None:
    """The pages, the routing suggestion and the scripts and styles."""
    app.include_router(router)
    static = _StaticFiles(packages=[("api", "static/workbench")])
    app.mount("/workbench/static", static, name="workbench-static")
