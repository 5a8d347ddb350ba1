"""POST Service Request: the form the spec defines, checked, and turned into grievance text.

Fields: ``api_key``, ``jurisdiction_id``, ``service_code``, ``lat``/``long`` or
``address_string`` or ``address_id``, ``description``, ``first_name``, ``last_name``,
``phone``, ``email``, ``device_id``, ``account_id``, ``media_url`` and
``attribute[CODE]=value`` (``attribute[CODE][]=v1&attribute[CODE][]=v2`` for a
multivaluelist).

What closeloop keeps, and where (the event store stays the one source of truth):
- the grievance's text is the description followed by an ``【Open311】`` block with the
  requested service code, the attributes (with their labels, for the operator), the
  coordinates, ``address_id`` and ``media_url``; reads parse the block back.
- ``phone`` is required: every 12345 grievance is called back (回访) and the domain needs a
  valid number. ``first_name``/``last_name`` become the citizen's name (family name first
  when written in Chinese), or 匿名市民 when absent.
- ``email``, ``device_id`` and ``account_id`` are not stored (the grievance has no place
  for them, and nothing of them is ever returned).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from api.i18n import Lang
from api.open311.catalog import Attribute, Service, parse_w3c
from api.open311.render import Open311Error, error

MARKER = "【Open311】"
MAX_DESCRIPTION = 4000  # the spec's limit, and the domain's for the whole text
ANONYMOUS = "匿名市民"
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
_URL = re.compile(r"^https?://[^\s]{1,500}$")
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
            float(values[0])
        except ValueError:
            return _t(lang, f"{label} 须为数字", f"{label} must be a number")
    elif attr.datatype == "datetime":
        if parse_w3c(values[0]) is None:
            return _t(
                lang,
                f"{label} 须为带时区的 ISO 8601 时间",
                f"{label} must be an ISO 8601 datetime with its zone",
            )
    elif attr.datatype == "string" and ("\n" in values[0] or len(values[0]) > 200):
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


def compose_text(
    description: str | None,
    service: Service,
    form: Form,
    where: Coordinates | None,
    media_url: str | None,
) -> str:
    """The grievance text: the citizen's description, then the Open311 block."""
    lines = [MARKER, f"service_code: {service.code}（{service.leaf.name}）"]
    for attr in service.attributes:
        values = form.attributes.get(attr.code)
        if not values:
            continue
        shown = [
            f"{v}（{found.name}）" if (found := attr.value(v)) is not None else v for v in values
        ]
        lines.append(f"attribute[{attr.code}] {attr.description}: {'、'.join(shown)}")
    if where is not None:
        lines.append(f"lat: {where.lat}")
        lines.append(f"long: {where.lon}")
    if form.get("address_id"):
        lines.append(f"address_id: {form.get('address_id')}")
    if media_url:
        lines.append(f"media_url: {media_url}")
    block = "\n".join(lines)
    return f"{description}\n\n{block}" if description else block


@dataclass(frozen=True)
class StoredRequest:
    """What the text of an Open311 grievance carries besides the description."""

    description: str | None
    service_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    address_id: str | None = None
    media_url: str | None = None


def parse_text(text: str) -> StoredRequest:
    """Split a grievance text written by ``compose_text`` back into its parts."""
    head, marker, block = text.rpartition(MARKER)
    if not marker:
        return StoredRequest(text or None)
    found: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("service_code", "lat", "long", "address_id", "media_url"):
            found[key] = value.strip()

    def number(key: str) -> float | None:
        try:
            return float(found[key]) if key in found else None
        except ValueError:
            return None

    code = found.get("service_code", "").split("（")[0] or None
    return StoredRequest(
        description=head.strip() or None,
        service_code=code,
        lat=number("lat"),
        lon=number("long"),
        address_id=found.get("address_id"),
        media_url=found.get("media_url"),
    )
