"""Structured intake data: what a channel knows about a grievance besides the citizen's text.

An Open311 client files a service code, typed attributes, a point, media references and
an external address id; the dispatch centre needs them as data, not as prose. They
travel on the ``Received`` event as ``intake`` (plain types only, see
``domain.grievance``), next to the citizen's text, which is stored exactly as given:

``{"service_code": "PU02", "attributes": {"households": 120.0, "since":
"2026-11-23T07:00:00+00:00", "time_of_day": ["evening"]}, "point": {"lat": 39.99,
"long": 116.35}, "media": ["https://…"], "address_id": "xyl-01", "client_id": "…",
"placed_by": "address_string"}``

Attribute values are typed by the service definition the channel checked them
against: a number is a float, a datetime an ISO 8601 instant in UTC, a multi-valued
list a list of keys, anything else a string. ``placed_by`` says how the channel found the
place (``PLACED_BY``); ``unresolved``: nothing matched, the grievance waits in the
district's catch-all queue (兜底) for the dispatch centre to place it.

Grievances received before this shape existed carry their details as a block after the
text (``【Open311】``); ``legacy_intake`` parses such a block once, for the event's
upcaster. No other code reads the text for data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ValidationError
from domain.model import Actor

MAX_CODE = 64
MAX_VALUE = 1000
MAX_ATTRIBUTES = 50
MAX_MEDIA = 10
MAX_URL = 500
_URL = re.compile(rf"^https?://[^\s\x00-\x1f\x7f\u2028\u2029]{{1,{MAX_URL}}}$")
_CODE = re.compile(r"^[^\s\[\]\x00-\x1f\x7f\u2028\u2029]{1,64}$")

AttributeValue = str | float | list[str]
PLACED_BY = ("address_id", "address_string", "point", "unresolved")


@dataclass(frozen=True, kw_only=True)
class Intake:
    """A channel's structured details of one grievance (all optional but the service code)."""

    service_code: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    lat: float | None = None
    long: float | None = None
    media: tuple[str, ...] = ()
    address_id: str | None = None
    client_id: str | None = None
    placed_by: str | None = None


def _code(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError("not-text", field=name)
    if not _CODE.match(value):
        raise ValidationError("text-too-long" if len(value) > MAX_CODE else "required", field=name)
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError("not-text", field=name)
    if len(value) > MAX_VALUE:
        raise ValidationError("text-too-long", field=name, max_len=MAX_VALUE)
    return value


def _number(value: float, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("not-one-of", field=name, value=str(value), allowed=["number"])
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationError("out-of-range", field=name, value=str(value), min=low, max=high)
    return number


def _attribute(code: str, value: object) -> AttributeValue:
    name = f"intake.attributes.{code}"
    if isinstance(value, list | tuple):
        return [_text(v, name) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value, name, -math.inf, math.inf)
    return _text(value, name)


def clean_intake(intake: Intake | None) -> dict[str, Any] | None:
    """The event's ``intake`` data, checked (every value's type, range and length)."""
    if intake is None:
        return None
    if len(intake.attributes) > MAX_ATTRIBUTES:
        raise ValidationError("text-too-long", field="intake.attributes", max_len=MAX_ATTRIBUTES)
    point = None
    if intake.lat is not None or intake.long is not None:
        if intake.lat is None or intake.long is None:
            raise ValidationError("required", field="intake.point")
        point = {
            "lat": _number(intake.lat, "intake.lat", -90, 90),
            "long": _number(intake.long, "intake.long", -180, 180),
        }
    if len(intake.media) > MAX_MEDIA:
        raise ValidationError("text-too-long", field="intake.media", max_len=MAX_MEDIA)
    for url in intake.media:
        if not isinstance(url, str) or not _URL.match(url):
            raise ValidationError(
                "not-one-of", field="intake.media", value=str(url)[:50], allowed=["http", "https"]
            )
    address_id = intake.address_id
    client_id = intake.client_id
    if intake.placed_by is not None and intake.placed_by not in PLACED_BY:
        raise ValidationError(
            "not-one-of", field="intake.placed_by", value=intake.placed_by, allowed=PLACED_BY
        )
    return {
        "service_code": _code(intake.service_code, "intake.service_code"),
        "attributes": {
            _code(code, "intake.attributes"): _attribute(code, value)
            for code, value in intake.attributes.items()
        },
        "point": point,
        "media": list(intake.media),
        "address_id": None if address_id is None else _code(address_id, "intake.address_id"),
        "client_id": None if client_id is None else _code(client_id, "intake.client_id"),
        "placed_by": intake.placed_by,
    }


def filed_by(intake: Mapping[str, Any] | None, received_by: str, actor: Actor) -> bool:
    """Whether ``actor``'s client filed a grievance: by the client id its intake data
    records; one without (filed under /v1, or before client ids) by the principal's name."""
    client = (intake or {}).get("client_id")
    return client == actor.client if client else received_by == actor.principal


# --------------------------------------------------------- before structured intake

LEGACY_MARKER = "【Open311】"
_LEGACY_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\] [^:]*: (.*)$")
_LEGACY_LABEL = re.compile(r"（[^（）]*(?:（[^（）]*）[^（）]*)*）$")


def _legacy_number(found: Mapping[str, str], key: str) -> float | None:
    try:
        number = float(found[key])
    except (KeyError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _legacy_values(shown: str) -> AttributeValue:
    """``v1（label）、v2（label）`` back to the keys (a label may hold brackets itself)."""
    values = [_LEGACY_LABEL.sub("", part) for part in shown.split("、")]
    return values if len(values) > 1 else values[0]


def legacy_intake(channel: str, text: str) -> tuple[str, dict[str, Any] | None]:
    """An Open311 grievance's text written before ``intake`` existed: its description and
    the block's details. Only the last marker counts, as the old reader did; a grievance
    of another channel keeps its text whatever it holds."""
    head, marker, block = text.rpartition(LEGACY_MARKER)
    if channel != "open311" or not marker:
        return text, None
    found: dict[str, str] = {}
    attributes: dict[str, AttributeValue] = {}
    for line in block.splitlines():
        matched = _LEGACY_ATTRIBUTE.match(line)
        if matched:
            attributes[matched.group(1)] = _legacy_values(matched.group(2).strip())
            continue
        key, sep, value = line.partition(": ")
        if sep and key in ("service_code", "lat", "long", "address_id", "media_url"):
            found[key] = value.strip()
    lat, lon = _legacy_number(found, "lat"), _legacy_number(found, "long")
    point = None
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        point = {"lat": lat, "long": lon}
    media = found.get("media_url")
    intake = {
        "service_code": found.get("service_code", "").split("（")[0],
        "attributes": attributes,
        "point": point,
        "media": [media] if media and _URL.match(media) else [],
        "address_id": found.get("address_id"),
        "client_id": None,  # filed under a token's name, which is not an identity
        "placed_by": None,  # not recorded then
    }
    return head.strip(), intake
