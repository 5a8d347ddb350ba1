"""POST Service Request: the form the spec defines, checked, and turned into intake data.

Fields: ``api_key``, ``jurisdiction_id``, ``service_code``, ``lat``/``long`` or
``address_string`` or ``address_id``, ``description``, ``first_name``, ``last_name``,
``phone``, ``email``, ``device_id``, ``account_id``, ``media_url`` and
``attribute[CODE]=value`` (``attribute[CODE][]=v1&attribute[CODE][]=v2`` for a
multivaluelist).

What closeloop keeps, and where (the event store stays the one source of truth):
- ``description`` is the grievance's text, exactly as given (Unicode NFC); the service
  code, the attributes as typed values (``typed_attributes``), the point, ``media_url``,
  ``address_id`` and the filing client's id are the ``Received`` event's ``intake`` data
  (``domain.intake``), never part of the text.
- ``phone`` is required: every 12345 grievance is called back (回访) and the domain needs a
  valid number. ``first_name``/``last_name`` become the citizen's name (family name first
  when written in Chinese), or 匿名市民 when absent.
- ``email``, ``device_id`` and ``account_id`` are not stored (the grievance has no place
  for them, and nothing of them is ever returned).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import parse_qsl

from api.i18n import Lang
from api.open311.catalog import Attribute, Service, parse_w3c
from api.open311.render import Open311Error, error
from domain.intake import AttributeValue

MAX_DESCRIPTION = 4000  # the spec's limit, and the domain's for the text
ANONYMOUS = "匿名市民"
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]{1,500}$")
_CJK = re.compile(r"[\u3400-\u9fff]")
SINGLE_FIELDS = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)


def _t(lang: Lang, zh: str, en: str) -> str:
    return en if lang == "en" else zh


@dataclass
class Form:
    """The decoded body: single fields (empty means absent, as the spec says) and attributes."""

    fields: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name, "").strip()
        return value or None


def parse_form(body: bytes, lang: Lang) -> Form:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise error(400, _t(lang, "请求体须为 UTF-8 编码", "the body must be UTF-8")) from None
    form = Form()
    for name, value in parse_qsl(text, keep_blank_values=True):
        match = _ATTRIBUTE.match(name)
        if match:
            if value.strip():
                form.attributes.setdefault(match.group(1), []).append(value.strip())
        elif name in SINGLE_FIELDS:
            form.fields[name] = unicodedata.normalize("NFC", value)
    return form


@dataclass(frozen=True)
class Coordinates:
    lat: float
    lon: float


def coordinates(form: Form, lang: Lang) -> Coordinates | None:
    lat, lon = form.get("lat"), form.get("long")
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise error(400, _t(lang, "lat 与 long 须同时提供", "lat and long must both be sent"))
    try:
        la, lo = float(lat), float(lon)
    except ValueError:
        raise error(
            400, _t(lang, "lat/long 须为数字（WGS84）", "lat/long must be WGS84 numbers")
        ) from None
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise error(400, _t(lang, "lat/long 超出范围", "lat/long out of range"))
    return Coordinates(la, lo)


def citizen_name(form: Form) -> str:
    first, last = form.get("first_name") or "", form.get("last_name") or ""
    name = f"{last}{first}" if _CJK.search(first + last) else f"{first} {last}".strip()
    return name[:50] or ANONYMOUS


def _one_line(value: str) -> bool:
    """No line break of any kind (``str.splitlines``: LF, CR, U+2028, U+2029, NEL …)."""
    return len(value.splitlines()) <= 1 and not value.endswith(("\n", "\r"))


def _check_value(attr: Attribute, values: list[str], lang: Lang) -> str | None:
    """An error description, or None when the values fit the attribute's datatype."""
    label = f"attribute[{attr.code}]"
    if attr.datatype != "multivaluelist" and len(values) > 1:
        return _t(lang, f"{label} 只能有一个值", f"{label} takes one value")
    if attr.datatype in ("singlevaluelist", "multivaluelist"):
        unknown = [v for v in values if attr.value(v) is None]
        if unknown:
            keys = ", ".join(v.key for v in attr.values)
            return _t(
                lang,
                f"{label} 的取值 {unknown} 不在可选项中（{keys}）",
                f"{label}: {unknown} not among {keys}",
            )
    elif attr.datatype == "number":
        try:
            number = float(values[0])
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return _t(lang, f"{label} 须为数字", f"{label} must be a number")
    elif attr.datatype == "datetime":
        if parse_w3c(values[0]) is None:
            return _t(
                lang,
                f"{label} 须为带时区的 ISO 8601 时间",
                f"{label} must be an ISO 8601 datetime with its zone",
            )
    elif attr.datatype == "string" and (not _one_line(values[0]) or len(values[0]) > 200):
        return _t(
            lang, f"{label} 须为不超过 200 字的单行文字", f"{label} must be one line, <= 200 chars"
        )
    elif len(values[0]) > 1000:
        return _t(lang, f"{label} 过长", f"{label} is too long")
    return None


def check_attributes(service: Service, form: Form, lang: Lang) -> None:
    """Every required attribute present, every value valid, no unknown codes (all errors)."""
    problems: list[tuple[int, str]] = []
    for code in form.attributes:
        if service.attribute(code) is None:
            problems.append(
                (
                    400,
                    _t(
                        lang,
                        f"服务 {service.code} 没有属性 attribute[{code}]",
                        f"service {service.code} has no attribute[{code}]",
                    ),
                )
            )
    for attr in service.attributes:
        values = form.attributes.get(attr.code)
        if not values:
            if attr.required:
                problems.append(
                    (
                        400,
                        _t(
                            lang,
                            f"缺少必填属性 attribute[{attr.code}]（{attr.description}）",
                            f"attribute[{attr.code}] is required ({attr.description_en})",
                        ),
                    )
                )
            continue
        problem = _check_value(attr, values, lang)
        if problem:
            problems.append((400, problem))
    if problems:
        raise Open311Error(400, *problems)


def check_media_url(form: Form, lang: Lang) -> str | None:
    url = form.get("media_url")
    if url is not None and not _URL.match(url):
        raise error(
            400, _t(lang, "media_url 须为 http(s) 链接", "media_url must be an http(s) URL")
        )
    return url


def typed_attributes(service: Service, form: Form) -> dict[str, AttributeValue]:
    """The checked attributes as typed values: a number is a float, a datetime its instant
    in UTC (ISO 8601), a multivaluelist a list of keys, anything else the text as given."""
    typed: dict[str, AttributeValue] = {}
    for attr in service.attributes:
        values = form.attributes.get(attr.code)
        if not values:
            continue
        if attr.datatype == "multivaluelist":
            typed[attr.code] = list(values)
        elif attr.datatype == "number":
            typed[attr.code] = float(values[0])
        elif attr.datatype == "datetime":
            moment = parse_w3c(values[0])
            assert moment is not None  # checked by check_attributes
            typed[attr.code] = moment.astimezone(UTC).isoformat()
        else:
            typed[attr.code] = values[0]
    return typed
