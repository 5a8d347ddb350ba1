"""Open311 GeoReport v2 under ``/open311/v2``: discovery, services, service definitions, and
service requests (file one, read one, list), in JSON and XML, errors in the spec's format.

Keys: ``api_key`` is a closeloop bearer token (``closeloop token create``), given as the
``api_key`` form field or query parameter, as ``Authorization: Bearer <key>``, or as the
password of HTTP Basic auth (``https://open311:<key>@host/open311/v2``). Filing needs one
(the roles the domain lets receive a grievance: operator, supervisor or open311); a
missing or wrong key is 403, as the spec says.

Reads need no key, as GeoReport v2 says: anyone reads the public fields of the requests
filed through Open311 (``api.open311.views``). A key is optional; a wrong one is still 403.
The dispatch centre's keys (operator, supervisor) also see the other channels' grievances;
the description, the typed address, exact coordinates, media and attributes go only to
the client that filed the request (ownership is the token's client id, never its name)
and to operators. One request is read from the event store (fresh); the list comes from
the ``open311_requests`` read model, its filters in SQL, one query per page (``page``,
``page_size`` ≤ 1000).

Filing is one command: 受理 with the request's structured data (``domain.intake``) and,
for a key whose role may classify (梳理, the dispatch centre's), the service code as its
category, saved atomically. An ``open311`` key may not classify, so its request waits in
受理 with the code it asked for, which reads return until the dispatch centre classifies it.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import structlog
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.catalogue import describe, t
from api.deps import (
    Principal,
    Read,
    Services,
    command_id_for,
    role_names,
    roles_of,
)
from api.i18n import Lang, choose_language
from api.open311.catalog import Catalog, parse_w3c
from api.open311.intake import (
    MAX_DESCRIPTION,
    SINGLE_FIELDS,
    Form,
    check_attributes,
    check_media_url,
    citizen_name,
    coordinates,
    parse_form,
    typed_attributes,
)
from api.open311.media import Media, attach_media, check_media, read_multipart
from api.open311.places import locate
from api.open311.render import Format, Open311Error, error, render, render_error
from api.open311.views import request_view, service_notice
from api.schemas import FIRST_YEAR, LAST_YEAR, sane_year
from domain.errors import (
    DomainError,
    GrievanceNotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from domain.intake import Intake
from domain.model import Action, Channel, Role, clean_phone
from domain.rules import may
from projections.open311 import MAX_PAGE, MAX_PAGES, latest_note, request_record

router = APIRouter(prefix="/open311/v2", tags=["open311"])
log = structlog.get_logger("api.open311")

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ("json", "xml")
MAX_IDS = 200  # service_request_id values in one list call
WINDOW = timedelta(days=90)
FILERS = roles_of(Action.RECEIVE)
# Keys whose role reads beyond the public view: the dispatch centre (every channel) and
# Open311 clients (their own requests' private fields).
READERS = roles_of(Read.SERVICE_REQUESTS)
STAFF = READERS - {Role.OPEN311}


FormatParam = Annotated[
    str, Path(description="json or xml", json_schema_extra={"enum": list(FORMATS)})
]
QueryText = Annotated[str | None, Query()]

_ERRORS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}
_WHY = {
    400: "Missing or invalid fields (every problem listed)",
    403: "Missing or invalid api_key, or a role that may not do this",
    404: "Unknown format, service_code, jurisdiction_id or service_request_id",
}


def _doc(ok: int, *codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: JSON or XML by the path's suffix; errors in the spec's format."""
    both = {"application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}}
    responses: dict[int | str, dict[str, Any]] = {ok: {"description": "OK", "content": both}}
    for code in codes:
        responses[code] = {
            "description": _WHY[code],
            "content": {
                "application/json": {"schema": _ERRORS_SCHEMA},
                "text/xml": {"schema": {"type": "string"}},
            },
        }
    return responses


_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": {name: {"type": "string"} for name in SINGLE_FIELDS},
    "additionalProperties": {"type": "string"},
    "description": "Extra fields as attribute[CODE]=value (attribute[CODE][]=v for lists).",
}


# The same form as multipart/form-data, with a ``media`` file (a photo or document).
_MULTIPART_SCHEMA: dict[str, Any] = {
    **_FORM_SCHEMA,
    "properties": {
        **_FORM_SCHEMA["properties"],
        "media": {"type": "string", "format": "binary"},
    },
}


# GET requests: public, a key optional.
READ_REQUESTS: dict[str, Any] = {"responses": _doc(200, 400, 403, 404)}


def _t(lang: Lang, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _format(fmt: str) -> Format:
    if fmt not in FORMATS:
        raise error(404, f"unknown format {fmt!r}: use .json or .xml")
    return "json" if fmt == "json" else "xml"


def _refuse_controls(request: Request, lang: Lang) -> None:
    """No path or query value may carry a control character (NUL, escapes, ...): none has a
    meaning in Open311, and XML 1.0 cannot carry most of them back."""
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        if isinstance(value, str) and any(_is_control(c) for c in value):
            raise error(
                400,
                _t(lang, f"{name} 含控制字符", f"{name} contains control characters"),
            )


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _answer(
    request: Request, fmt: str, build: Callable[[Format], Response], lang: Lang = "zh"
) -> Response:
    """Run one endpoint; every refusal is answered in the spec's error format."""
    chosen: Format = "xml" if fmt == "xml" else "json"
    try:
        _refuse_controls(request, lang)
        return build(_format(fmt))
    except Open311Error as exc:
        return render_error(exc, chosen)
    except DomainError as exc:
        return render_error(_domain_error(exc, lang), chosen)


def _domain_error(exc: DomainError, lang: Lang) -> Open311Error:
    """A refused command in the spec's format, in words from the catalogue."""
    words = describe(exc, lang)
    if isinstance(exc, GrievanceNotFoundError):
        return error(404, words)
    if isinstance(exc, PermissionDeniedError):
        return error(403, words)
    return error(400, words)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _catalog(request: Request) -> Catalog:
    """Built once per app from the application's policies and ``open311.json``."""
    services = _services(request)
    cached: tuple[Any, Catalog] | None = getattr(request.app.state, "open311_catalog", None)
    if cached is None or cached[0] is not services.app.policies:
        cached = (services.app.policies, Catalog.build(services.app.policies))
        request.app.state.open311_catalog = cached
    return cached[1]


def _check_jurisdiction(request: Request, catalog: Catalog, given: str | None) -> None:
    if not given:
        return
    served = {catalog.jurisdiction_id, *_services(request).app.policies.directory.districts}
    if given not in served:
        raise error(
            404,
            f"jurisdiction_id {given!r} not found; this endpoint serves "
            f"{catalog.jurisdiction_id!r}",
        )


def _checked_catalog(request: Request) -> Catalog:
    """The service catalog, once the query's ``jurisdiction_id`` (if any) was found ours."""
    catalog = _catalog(request)
    _check_jurisdiction(request, catalog, request.query_params.get("jurisdiction_id"))
    return catalog


def _key_from_headers(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


def _authenticate(
    request: Request, lang: Lang, allowed: frozenset[Role], key: str | None = None
) -> Principal:
    key = key or request.query_params.get("api_key") or _key_from_headers(request)
    if not key:
        raise error(403, _t(lang, "缺少 api_key", "api_key is required"))
    record = _services(request).tokens.authenticate(key)
    if record is None:
        raise error(403, _t(lang, "api_key 无效或已吊销", "Invalid api_key received"))
    principal = Principal.from_record(record)
    request.state.principal = principal.name
    request.state.role = principal.role.value
    if principal.role not in allowed:
        # the same words as the /v1 routes'
        words = t("error.role-forbidden", lang, role=principal.role, roles=role_names(allowed))
        raise error(403, words)
    return principal


def _reader(request: Request, lang: Lang) -> Principal | None:
    """Who reads: None without a key (the public) or with one that reads nothing more;
    a wrong key is 403."""
    if not (request.query_params.get("api_key") or _key_from_headers(request)):
        return None
    principal = _authenticate(request, lang, frozenset(Role))
    return principal if principal.role in READERS else None


def _sees(reader: Principal | None, record: dict[str, Any]) -> bool:
    """The public sees what came through Open311; the dispatch centre sees every channel."""
    staff = reader is not None and reader.role in STAFF
    return staff or record["channel"] == Channel.OPEN311.value


def _private(reader: Principal | None, record: dict[str, Any]) -> bool:
    """The description, attributes and exact place: for the filing client and operators."""
    if reader is None:
        return False
    if reader.role is Role.OPERATOR:
        return True
    return reader.role is Role.OPEN311 and record["client_id"] == reader.client_id


# ------------------------------------------------------------------ discovery


@router.get("/discovery.{fmt}", responses=_doc(200, 404))
def discovery(fmt: FormatParam, request: Request) -> Response:
    """Service discovery: where the GeoReport v2 endpoint is and which formats it speaks
    (from the configured public base URL, never from the request's ``Host``)."""

    def build(chosen: Format) -> Response:
        data = _catalog(request).data
        body = {
            "changeset": data["changeset"],
            "contact": data["contact"],
            "key_service": data["key_service"],
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": f"{request.app.state.public_base_url}{router.prefix}",
                    "changeset": data["changeset"],
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return render(body, chosen, "discovery")

    return _answer(request, fmt, build, choose_language(request))


# ------------------------------------------------------------------- services


@router.get("/services.{fmt}", name="open311_services", responses=_doc(200, 404))
def services_list(
    fmt: FormatParam, request: Request, jurisdiction_id: QueryText = None
) -> Response:
    """GET Service List: the category tree's leaves, grouped by their top category."""
    lang = choose_language(request)

    def build(chosen: Format) -> Response:
        catalog = _checked_catalog(request)
        body = [
            {
                "service_code": s.code,
                "service_name": s.name(lang),
                "description": f"{s.leaf.name} / {s.leaf.name_en}"
                if s.leaf.name_en
                else s.leaf.name,
                "metadata": bool(s.attributes),
                "type": "realtime",
                "keywords": ", ".join(s.keywords),
                "group": s.group(lang),
            }
            for s in catalog.services.values()
        ]
        return render(body, chosen, "services")

    return _answer(request, fmt, build, lang)


@router.get("/services/{service_code}.{fmt}", responses=_doc(200, 404))
def service_definition(
    service_code: str, fmt: FormatParam, request: Request, jurisdiction_id: QueryText = None
) -> Response:
    """GET Service Definition: the extra fields (attributes) a service asks for."""
    lang = choose_language(request)

    def build(chosen: Format) -> Response:
        catalog = _checked_catalog(request)
        service = catalog.services.get(service_code)
        if service is None:
            raise error(
                404,
                _t(
                    lang,
                    f"服务代码 {service_code} 不存在",
                    f"service_code {service_code} not found",
                ),
            )
        body = {
            "service_code": service.code,
            "attributes": [a.public(lang) for a in service.attributes],
        }
        return render(body, chosen, "service_definition")

    return _answer(request, fmt, build, lang)


# -------------------------------------------------------------------- requests


def _file_request(
    request: Request, form: Form, lang: Lang, media: Media | None = None
) -> dict[str, Any]:
    """POST Service Request, after the body was read: checks, then 受理 (and 梳理), and the
    uploaded ``media`` attached."""
    services = _services(request)
    app = services.app
    principal = _authenticate(request, lang, FILERS, key=form.get("api_key"))
    checked = check_media(services, media, lang)
    catalog = _catalog(request)
    _check_jurisdiction(request, catalog, form.get("jurisdiction_id"))
    code = form.get("service_code")
    if code is None:
        raise error(400, _t(lang, "缺少 service_code", "service_code was not provided"))
    service = catalog.services.get(code)
    if service is None:
        raise error(404, _t(lang, f"服务代码 {code} 不存在", f"service_code {code} not found"))
    where = coordinates(form, lang)
    address_string, address_id = form.get("address_string"), form.get("address_id")
    if where is None and address_string is None and address_id is None:
        raise error(
            400,
            _t(
                lang,
                "须提供位置：lat 与 long、address_string 或 address_id",
                "a location is required: lat & long, address_string or address_id",
            ),
        )
    check_attributes(service, form, lang)
    media_url = check_media_url(form, lang)
    phone = form.get("phone")
    if phone is None:
        raise error(
            400,
            _t(
                lang,
                "缺少 phone：每件诉求办结后都要电话回访市民",
                "phone is required: every grievance ends with a callback to the citizen",
            ),
        )
    try:
        phone = clean_phone(phone, "phone")
    except ValidationError as exc:
        raise error(400, describe(exc, lang)) from None
    description = form.get("description") or ""
    if len(description) > MAX_DESCRIPTION:
        raise error(
            400,
            _t(
                lang,
                f"description 过长：最多 {MAX_DESCRIPTION} 字",
                f"description too long: at most {MAX_DESCRIPTION} characters",
            ),
        )
    placed = locate(
        catalog,
        app.policies.directory,
        address_id=address_id,
        address_string=address_string,
        lat=where.lat if where else None,
        lon=where.lon if where else None,
        lang=lang,
    )
    intake = Intake(
        service_code=service.code,
        attributes=typed_attributes(service, form),
        lat=where.lat if where else None,
        long=where.lon if where else None,
        media=(media_url,) if media_url else (),
        address_id=address_id,
        client_id=principal.client_id,
        placed_by=placed.rule,
    )
    key = request.headers.get("idempotency-key")
    command_id = (
        command_id_for(principal, "POST", request.url.path, key.strip())
        if key and key.strip()
        else None
    )
    result = app.receive_grievance(
        principal.actor,
        channel=Channel.OPEN311.value,
        citizen_name=citizen_name(form),
        citizen_phone=phone,
        text=description,
        location=placed.location,
        intake=intake,
        # 梳理 in the same command when the key's role may: atomic with the filing.
        category=service.code if may(principal.role, Action.CLASSIFY) else None,
        command_id=command_id,
    )
    if checked is not None:
        attach_media(services, checked, result.grievance_id, principal.actor, command_id)
    log.info(
        "open311 request filed",
        number=result.number,
        service_code=service.code,
        placed_by=placed.rule,
        replayed=result.replayed,
    )
    return {
        "service_request_id": result.number,
        "service_notice": service_notice(app.policies, service.code, lang),
        "account_id": None,
    }


@router.post(
    "/requests.{fmt}",
    status_code=201,
    responses=_doc(201, 400, 403, 404),
    openapi_extra={
        "x-roles": role_names(FILERS),
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            },
        },
    },
)
async def create_request(fmt: FormatParam, request: Request) -> Response:
    """POST Service Request: form-encoded as the spec shows; files a grievance (channel open311)."""
    lang = choose_language(request)
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    media: Media | None = None
    if content_type == "multipart/form-data":  # with a ``media`` upload
        body, media = await read_multipart(request, _services(request).uploads)
        content_type = "application/x-www-form-urlencoded"

    def work() -> Response:
        def build(chosen: Format) -> Response:
            if content_type and content_type != "application/x-www-form-urlencoded":
                raise error(
                    400,
                    _t(
                        lang,
                        "请以 application/x-www-form-urlencoded 提交",
                        "send the request as application/x-www-form-urlencoded",
                    ),
                )
            created = _file_request(request, parse_form(body, lang), lang, media)
            return render([created], chosen, "service_requests", status=201)

        return _answer(request, fmt, build, lang)

    return await anyio.to_thread.run_sync(work)


def _fresh(request: Request, number: str) -> dict[str, Any] | None:
    """One request's record from the event store (what a read right after filing sees)."""
    app = _services(request).app
    if not number.isdigit() or len(number) > 32:
        return None
    try:
        grievance = app.get_by_number(number)
    except GrievanceNotFoundError:
        return None
    events = app.history(grievance.id)
    record = request_record(grievance, getattr(events[-1], "at", None) or grievance.received_at)
    record["description"] = grievance.text
    record["note"] = latest_note(grievance, events)
    return record


def _view(
    request: Request, record: dict[str, Any], reader: Principal | None, lang: Lang
) -> dict[str, Any]:
    policies = _services(request).app.policies
    private = _private(reader, record)
    extensions = request.query_params.get("extensions") == "true"
    return request_view(
        record, _catalog(request), policies, lang, private=private, extensions=extensions
    )


def _not_found(lang: Lang, number: str) -> Open311Error:
    return error(404, _t(lang, f"诉求 {number} 不存在", f"service_request_id {number} not found"))


@router.get("/requests/{service_request_id}.{fmt}", **READ_REQUESTS)
def get_request(
    service_request_id: str,
    fmt: FormatParam,
    request: Request,
    api_key: QueryText = None,
    jurisdiction_id: QueryText = None,
    extensions: QueryText = None,
) -> Response:
    """GET Service Request: one request's status, public fields unless the key may see more;
    404 if unknown or not through Open311 (to a reader outside the dispatch centre)."""
    lang = choose_language(request)

    def build(chosen: Format) -> Response:
        reader = _reader(request, lang)
        _checked_catalog(request)
        record = _fresh(request, service_request_id)
        if record is None or not _sees(reader, record):
            raise _not_found(lang, service_request_id)
        return render([_view(request, record, reader, lang)], chosen, "service_requests")

    return _answer(request, fmt, build, lang)


def _split(value: str | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


def _window(request: Request, lang: Lang) -> tuple[datetime, datetime]:
    params = request.query_params
    moments: dict[str, datetime | None] = {}
    for name in ("start_date", "end_date"):
        raw = (params.get(name) or "").strip()
        moments[name] = parse_w3c(raw) if raw else None
        if raw and moments[name] is None:
            raise error(
                400,
                _t(
                    lang,
                    f"{name} 须为带时区的 W3C 时间，例如 2010-01-01T00:00:00Z",
                    f"{name} must be a W3C datetime with its zone, e.g. 2010-01-01T00:00:00Z",
                ),
            )
        moment = moments[name]
        if moment is not None and not sane_year(moment):
            raise error(
                400,
                _t(
                    lang,
                    f"{name} 须在 {FIRST_YEAR} 年到 {LAST_YEAR} 年之间",
                    f"{name} must lie between the years {FIRST_YEAR} and {LAST_YEAR}",
                ),
            )
    start, end = moments["start_date"], moments["end_date"]
    if start is None and end is None:
        end = _services(request).app.clock()
    if start is None:
        assert end is not None
        start = end - WINDOW
    if end is None:
        end = start + WINDOW
    if end < start or end - start > WINDOW:
        raise error(
            400,
            _t(
                lang,
                "start_date 须早于 end_date，且跨度不超过 90 天",
                "start_date must precede end_date and the span may not exceed 90 days",
            ),
        )
    return start, end


def _positive(request: Request, name: str, default: int, top: int, lang: Lang) -> int:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise error(
            400, _t(lang, f"{name} 须为 1 到 {top} 的整数", f"{name} must be an integer 1–{top}")
        )
    return int(raw)


@router.get("/requests.{fmt}", **READ_REQUESTS)
def list_requests(
    fmt: FormatParam,
    request: Request,
    api_key: QueryText = None,
    jurisdiction_id: QueryText = None,
    service_request_id: QueryText = None,
    service_code: QueryText = None,
    start_date: QueryText = None,
    end_date: QueryText = None,
    status: QueryText = None,
    page: QueryText = None,
    page_size: QueryText = None,
    extensions: QueryText = None,
) -> Response:
    """GET Service Requests: by ids, or by service_code, start/end date (≤ 90 days) and
    status, newest first, ``page_size`` (≤ 1000, the default) at a time from ``page`` 1."""
    lang = choose_language(request)

    def build(chosen: Format) -> Response:
        reader = _reader(request, lang)
        catalog = _checked_catalog(request)
        params = request.query_params
        ids = _split(params.get("service_request_id"))
        if ids:
            if len(ids) > MAX_IDS:
                raise error(400, f"at most {MAX_IDS} service_request_id values per call")
            records = _by_number(request, ids)
        else:
            codes = _split(params.get("service_code"))
            unknown = [c for c in codes if c not in catalog.services]
            if unknown:
                raise error(400, f"unknown service_code: {', '.join(unknown)}")
            statuses = _split(params.get("status"))
            if any(s not in ("open", "closed") for s in statuses):
                raise error(
                    400, _t(lang, "status 只能是 open 或 closed", "status is open or closed")
                )
            start, end = _window(request, lang)
            staff = reader is not None and reader.role in STAFF
            records = _services(request).read_models.open311_requests(
                received_from=start,
                received_to=end + timedelta(microseconds=1),
                service_codes=codes,
                statuses=statuses,
                channel=None if staff else Channel.OPEN311.value,
                page=_positive(request, "page", 1, MAX_PAGES, lang),
                page_size=_positive(request, "page_size", MAX_PAGE, MAX_PAGE, lang),
            )
        items = [_view(request, r, reader, lang) for r in records if _sees(reader, r)]
        return render(items, chosen, "service_requests")

    return _answer(request, fmt, build, lang)


def _by_number(request: Request, numbers: list[str]) -> list[dict[str, Any]]:
    """From the read model in one query; the ones not projected yet from the event store."""
    found = _services(request).read_models.open311_by_number(numbers)
    records = [found.get(n) or _fresh(request, n) for n in numbers]
    return [r for r in records if r is not None]


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
def not_found(rest: str, request: Request) -> Response:
    """Anything else under /open311/v2 is a 404 in the spec's format."""
    fmt: Format = "xml" if rest.endswith(".xml") else "json"
    return render_error(error(404, f"no such Open311 resource: /open311/v2/{rest}"), fmt)
