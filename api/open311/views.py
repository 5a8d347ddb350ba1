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

from api.catalogue import has, label, t
from api.i18n import Lang
from api.open311.catalog import Catalog
from api.open311.intake import parse_text
from domain.grievance import Grievance
from domain.model import FINAL_STATUSES, AssignmentRole, Channel
from domain.policies import Policies


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
    unit = label("time_unit", window.unit, lang)
    return t("open311.service-notice", lang, amount=amount, unit=unit)


def status_notes(g: Grievance, events: Sequence[Any], policies: Policies, lang: Lang) -> str | None:
    """The latest public update, newest event first."""
    directory = policies.directory
    for event in reversed(events):
        kind = type(event).__name__
        if kind == "ProgressReported":
            return str(event.note)
        if kind == "Resolved":
            return str(event.account)
        if kind == "Closed":
            key = f"open311.note-closed-{event.outcome}"
            return t(key if has(key, lang) else "open311.note-closed", lang)
        if kind == "Rejected":
            return t("open311.note-rejected", lang, reason=event.reason)
        if kind == "Merged":
            return t("open311.note-merged", lang, number=event.into_number)
        if kind in ("Withdrawn", "Reopened", "ExtensionGranted"):
            note = {"Withdrawn": "withdrawn", "Reopened": "reopened"}.get(kind, "extension-granted")
            return t(f"open311.note-{note}", lang)
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
            note = "signed-for" if kind == "SignedFor" else "dispatched"
            department = assignment.department
            return t(f"open311.note-{note}", lang, department=department, directory=directory)
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
