"""A grievance as a GeoReport v2 service request, never with personal data.

Rendered from ``projections.open311.request_record`` (the read model's row, or the same
record built from the event store for one request), for one of two readers:

- **public** (no key, or a key that is neither the filing client's nor the dispatch
  centre's): ``status``, the service, ``agency_responsible``, ``status_notes`` written for
  the public, the requested/updated/expected datetimes, the address to street/community
  level (names from the places data, not what the citizen typed) and the coordinates
  rounded to 3 decimals (about 100 m). ``description``, ``address_id`` and ``media_url``
  are null.
- **private** (the client that filed it, by its client id, and operators): the
  description as the citizen gave it, the address as typed, exact coordinates,
  ``address_id``, ``media_url`` and, asked with ``extensions=true``, the extension field
  ``attributes`` (``[{code, value}]``, typed as filed).

- ``service_request_id`` is the grievance's case number (readable over the phone).
- ``status``: ``closed`` once the loop is over (closed, rejected, merged, withdrawn);
  ``open`` before, including 办结 while the citizen's 回访 is pending.
- ``status_notes``: the latest public update (``projections.open311.public_note``).
- ``agency_responsible``: the lead department's name; ``expected_datetime``: its current
  resolve deadline (moved by granted extensions).
- ``service_code``: the category once classified, before that the code the client asked for.
Name, phone and e-mail are never part of a response.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from api.catalogue import has, label, t
from api.i18n import Lang
from api.open311.catalog import Catalog
from domain.policies import Policies

PUBLIC_DECIMALS = 3  # coordinates for everyone: about 100 m


def w3c(moment: datetime | str | None, tz: tzinfo) -> str | None:
    """W3C datetime in the city's zone, with its offset (the spec requires the zone)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
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


def note_text(note: dict[str, Any] | None, policies: Policies, lang: Lang) -> str | None:
    """A public note in words: its text as written, or its catalogue key's words."""
    if note is None:
        return None
    if "text" in note:
        return str(note["text"])
    key = note["key"] if has(note["key"], lang) else note.get("fallback", note["key"])
    return t(key, lang, directory=policies.directory, **note.get("params", {}))


def _place_names(policies: Policies, location: dict[str, Any]) -> str | None:
    """District, street and community names (never the grid, never the typed address)."""
    directory = policies.directory
    street = directory.streets.get(location.get("street") or "")
    community = directory.communities.get(location.get("community") or "")
    names = (
        directory.districts.get(location.get("district") or ""),
        street[1] if street else None,
        community[1] if community else None,
    )
    return "".join(n for n in names if n) or None


def request_view(
    record: dict[str, Any],
    catalog: Catalog,
    policies: Policies,
    lang: Lang,
    *,
    private: bool,
    extensions: bool = False,
) -> dict[str, Any]:
    """One ``request`` of ``service_requests``, in the spec's field order."""
    tz = policies.calendar.tz
    code = record["service_code"]
    service = catalog.services.get(code or "")
    point = record["point"] or {}
    lat, lon = point.get("lat"), point.get("long")
    if not private and lat is not None and lon is not None:
        lat, lon = round(lat, PUBLIC_DECIMALS), round(lon, PUBLIC_DECIMALS)
    typed = record["location"].get("address") if private else None
    body: dict[str, Any] = {
        "service_request_id": record["number"],
        "status": "closed" if record["closed"] else "open",
        "status_notes": note_text(record["note"], policies, lang),
        "service_name": service.name(lang) if service else None,
        "service_code": code,
        "description": (record["description"] or None) if private else None,
        "agency_responsible": _department_name(policies, record["lead_department"], lang),
        "service_notice": service_notice(policies, code, lang),
        "requested_datetime": w3c(record["requested"], tz),
        "updated_datetime": w3c(record["updated"] or record["requested"], tz),
        "expected_datetime": w3c(record["expected"], tz),
        "address": typed or _place_names(policies, record["location"]),
        "address_id": record["address_id"] if private else None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": (record["media"] or [None])[0] if private else None,
    }
    if private and extensions:
        body["attributes"] = [
            {"code": code, "value": value} for code, value in record["attributes"].items()
        ]
    return body
