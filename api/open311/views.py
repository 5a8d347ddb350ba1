"""A grievance as a GeoReport v2 service request, never with personal data.

- ``service_request_id`` is the grievance's case number (readable over the phone).
- ``status``: ``closed`` once the loop is over (closed, rejected, merged, withdrawn);
  ``open`` before, including 办结 while the citizen's 回访 is pending.
- ``status_notes``: the latest *public* update: a department's progress note, the
  resolution's account, the outcome, rejection, merge, withdrawal, reopening, dispatch or
  sign-for. Returns, escalations, urges and feedback comments are internal.
- ``agency_responsible``: the lead department's name; ``expected_datetime``: its current
  resolve deadline (moved by granted extensions).
- ``service_code``: the category once classified, before that the code the client asked for.
- ``description``, ``lat``/``long``, ``address_id``, ``media_url``: only for requests filed
  through Open311 (read back from the text block ``intake`` writes). Name, phone and
  e-mail are never part of a response.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from api.i18n import Lang
from api.open311.catalog import Catalog
from api.open311.intake import parse_text
from domain.grievance import Grievance
from domain.model import FINAL_STATUSES, AssignmentRole, Channel
from domain.policies import Policies

OUTCOME_NOTES = {
    "satisfied": ("已办结，市民满意", "Resolved; the citizen is satisfied"),
    "basically_satisfied": ("已办结，市民基本满意", "Resolved; the citizen is mostly satisfied"),
    "no_response": ("已办结归档（回访未能联系到市民）", "Closed (callback unanswered)"),
    "closed_by_supervisor": ("已由督办部门审核归档", "Closed after supervisory review"),
}

_UNITS = {
    "working_days": ("个工作日", "working days"),
    "working_hours": ("个工作小时", "working hours"),
    "days": ("天", "days"),
    "hours": ("小时", "hours"),
    "minutes": ("分钟", "minutes"),
    "seconds": ("秒", "seconds"),
}


def w3c(moment: datetime | None, tz: tzinfo) -> str | None:
    """W3C datetime in the city's zone, with its offset (the spec requires the zone)."""
    if moment is None:
        return None
    return moment.astimezone(tz).isoformat(timespec="seconds")


def _department_name(policies: Policies, code: str | None, lang: Lang) -> str | None:
    if code is None:
        return None
    department = policies.directory.departments.get(code)
    if department is None:
        return code
    return department.name_en if lang == "en" and department.name_en else department.name


def service_notice(policies: Policies, category: str | None, lang: Lang) -> str | None:
    """What happens next, from the category's SLA class (the standard resolve window)."""
    leaf = policies.categories.by_code.get(category or "")
    if leaf is None or leaf.sla_class is None:
        return None
    windows = policies.sla.profile.classes.get(leaf.sla_class)
    if windows is None:
        return None
    window = windows.resolve
    amount = int(window.amount) if window.amount == int(window.amount) else window.amount
    zh_unit, en_unit = _UNITS.get(window.unit, (window.unit, window.unit))
    if lang == "en":
        return (
            f"The dispatch centre sends it to the department in charge, which must resolve it "
            f"within {amount} {en_unit}; the citizen is called back afterwards."
        )
    return f"接诉即办中心将派至承办单位办理，须在派单后 {amount} {zh_unit}内办结，办结后电话回访。"


def status_notes(g: Grievance, events: Sequence[Any], policies: Policies, lang: Lang) -> str | None:
    """The latest public update, newest event first."""
    en = lang == "en"
    for event in reversed(events):
        kind = type(event).__name__
        if kind == "ProgressReported":
            return str(event.note)
        if kind == "Resolved":
            return str(event.account)
        if kind == "Closed":
            zh, eng = OUTCOME_NOTES.get(event.outcome, ("已归档", "Closed"))
            return eng if en else zh
        if kind == "Rejected":
            return f"Not accepted: {event.reason}" if en else f"不予受理：{event.reason}"
        if kind == "Merged":
            number = event.into_number
            return f"Duplicate of {number}" if en else f"重复诉求，已并入 {number} 办理"
        if kind == "Withdrawn":
            return "Withdrawn at the citizen's request" if en else "已按市民要求撤件"
        if kind == "Reopened":
            return (
                "Reopened after the citizen's feedback"
                if en
                else "市民对办理结果不满意，已重新办理"
            )
        if kind == "ExtensionGranted":
            return "The department was given more time" if en else "承办单位已获批延长办理期限"
        if kind in ("SignedFor", "Dispatched"):
            aid = (
                event.assignment_id
                if kind == "SignedFor"
                else next(
                    (a["assignment_id"] for a in event.assignments if a["role"] == "lead"), None
                )
            )
            assignment = g.assignments.get(aid or "")
            if assignment is None or assignment.role is not AssignmentRole.LEAD:
                continue
            name = _department_name(policies, assignment.department, lang)
            if kind == "SignedFor":
                return f"{name} has taken it on" if en else f"{name}已签收，正在办理"
            return f"Sent to {name}" if en else f"已派至{name}办理"
    return None


def request_public(
    g: Grievance, events: Sequence[Any], catalog: Catalog, policies: Policies, lang: Lang
) -> dict[str, Any]:
    """One ``request`` of ``service_requests``, in the spec's field order."""
    tz = policies.calendar.tz
    via_open311 = g.channel == Channel.OPEN311.value
    stored = parse_text(g.text) if via_open311 else None
    code = g.category or (stored.service_code if stored else None)
    service = catalog.services.get(code or "")
    lead = g.lead_assignment()
    last_at = getattr(events[-1], "at", None) if events else None
    directory = policies.directory
    location = g.location
    address = location.get("address") or "".join(
        name
        for name in (
            directory.districts.get(location.get("district") or ""),
            (directory.streets.get(location.get("street") or "") or (None, ""))[1],
            (directory.communities.get(location.get("community") or "") or (None, ""))[1],
        )
        if name
    )
    return {
        "service_request_id": g.number,
        "status": "closed" if g.status in FINAL_STATUSES else "open",
        "status_notes": status_notes(g, events, policies, lang),
        "service_name": service.name(lang) if service else None,
        "service_code": code,
        "description": stored.description if stored else None,
        "agency_responsible": _department_name(policies, lead.department if lead else None, lang),
        "service_notice": service_notice(policies, code, lang),
        "requested_datetime": w3c(g.received_at, tz),
        "updated_datetime": w3c(last_at or g.received_at, tz),
        "expected_datetime": w3c(lead.resolve_deadline if lead else None, tz),
        "address": address or None,
        "address_id": stored.address_id if stored else None,
        "zipcode": None,
        "lat": stored.lat if stored else None,
        "long": stored.lon if stored else None,
        "media_url": stored.media_url if stored else None,
    }
