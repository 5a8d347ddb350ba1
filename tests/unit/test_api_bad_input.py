"""Bad input never reaches a 5xx (issue 15): dates at the edges of ``datetime``'s range on
every date/instant query parameter of the OpenAPI document, NUL in a static file path, and
control characters in Open311 inputs and in its XML."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import pytest

from api.catalogue import t
from api.open311.render import to_xml
from tests.support.api import ApiHarness, sqlite_api

EDGE_VALUES = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59.999999",
]

ROLES = ("supervisor", "operator")


def _is_date_like(schema: dict[str, Any]) -> bool:
    options = [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]
    return any(o.get("format") in ("date", "date-time") for o in options)


def _date_parameters(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, name) of every GET query parameter that is a date or instant, either by its
    schema or by its name (the Open311 and audit routes take them as text)."""
    found = []
    for path, item in document["paths"].items():
        for parameter in item.get("get", {}).get("parameters", []):
            if parameter["in"] != "query":
                continue
            name = parameter["name"]
            named = name in ("from", "to", "start_date", "end_date", "as_of")
            if named or _is_date_like(parameter.get("schema", {})):
                found.append((path, name))
    return found


def _concrete(path: str) -> str:
    return (
        path.replace("{grievance_id}", "00000000-0000-4000-8000-000000000000")
        .replace("{code}", "D01")
        .replace("{fmt}", "json")
        .replace("{department}", "D01")
    )


async def test_the_api_has_the_date_parameters_the_issue_names(api: ApiHarness) -> None:
    document = (await api.client.get("/openapi.json")).json()
    found = set(_date_parameters(document))
    assert ("/v1/audit/departments/{code}/lateness", "from") in found
    assert ("/open311/v2/requests.{fmt}", "start_date") in found
    assert len(found) >= 8, found


@pytest.mark.parametrize("value", EDGE_VALUES)
async def test_edge_dates_on_every_date_parameter_are_refused_not_500(
    api: ApiHarness, value: str
) -> None:
    document = (await api.client.get("/openapi.json")).json()
    failures = []
    for path, name in _date_parameters(document):
        url = f"{_concrete(path)}?{name}={quote(value)}"
        statuses = []
        for role in ROLES:
            response = await api.get(url, role)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append((url, role, response.status_code, response.text[:200]))
        if not any(s in (400, 404, 422) for s in statuses):
            failures.append((url, "any", statuses, "no refusal"))
    assert not failures, failures


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/v1/audit/departments/D01/lateness?from=", "0001-01-01"),
        ("/v1/audit/departments/D01/lateness?to=", "9999-12-31T23:59:59-12:00"),
        ("/v1/audit/departments/D01/lateness?from=", "0001-01-01T00:00:00+14:00"),
    ],
)
async def test_department_lateness_names_the_years(api: ApiHarness, path: str, value: str) -> None:
    response = await api.get(path + quote(value), "supervisor")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "1970" in response.json()["detail"] and "2200" in response.json()["detail"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00"])
async def test_open311_request_list_refuses_edge_dates_in_its_format(
    api: ApiHarness, value: str
) -> None:
    for fmt in ("json", "xml"):
        for name in ("start_date", "end_date"):
            url = f"/open311/v2/requests.{fmt}?{name}={quote(value)}"
            response = await api.get(url, "supervisor")
            assert response.status_code == 400, response.text
            if fmt == "xml":
                ElementTree.fromstring(response.content)
            else:
                assert response.json()[0]["code"] == 400


@pytest.mark.parametrize("path", ["/dashboard/static/a%00b.js", "/dashboard/static/%00"])
async def test_nul_in_a_static_path_is_not_found(api: ApiHarness, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code in (400, 404), response.text


@pytest.mark.parametrize(
    "url",
    [
        "/open311/v2/services/PM%0003.xml",
        "/open311/v2/services/PM%0103.json",
        "/open311/v2/requests.xml?service_code=PM%0003",
        "/open311/v2/requests.xml?status=open%00",
        "/open311/v2/requests/1%00.xml",
    ],
)
async def test_open311_refuses_control_characters(api: ApiHarness, url: str) -> None:
    response = await api.get(url, "supervisor")
    assert response.status_code == 400, response.text
    if url.split("?")[0].endswith(".xml"):
        root = ElementTree.fromstring(response.content)
        assert root.tag == "errors"
        assert "\x00" not in response.text


def test_the_xml_renderer_never_emits_what_xml_forbids() -> None:
    document = to_xml(
        "errors", [{"code": 400, "description": "a\x00b\x01c\x1f\ufffe\ud800 ok\t\n"}]
    )
    root = ElementTree.fromstring(document)
    text = root[0].find("description")
    assert text is not None and text.text is not None
    assert text.text.startswith("a\ufffdb\ufffdc\ufffd")
    assert text.text.endswith(" ok\t\n")


async def test_static_files_answer_not_found_for_a_nul_in_the_decoded_path() -> None:
    """What a real server hands the app: ``%00`` already decoded into the ASGI path."""
    from starlette.exceptions import HTTPException

    from api.dashboard import _StaticFiles

    static = _StaticFiles(packages=[("api", "static")])
    assert static.lookup_path("a\x00b.js") == ("", None)
    scope = {"type": "http", "method": "GET", "path": "/a\x00b.js", "root_path": ""}
    scope |= {"headers": [], "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError(message)

    with pytest.raises(HTTPException) as refused:
        await static(scope, receive, send)
    assert refused.value.status_code == 404


@pytest.mark.parametrize(
    ("path", "first", "last", "field"),
    [
        ("/v1/kpis", "date_from", "date_to", "date_from"),
        ("/v1/audit/departments/hd.housing/lateness", "from", "to", "from"),
    ],
)
async def test_period_reversed_or_too_long_is_422(
    api: ApiHarness, path: str, first: str, last: str, field: str
) -> None:
    reversed_ = await api.get(path, "supervisor", params={first: "2026-03-05", last: "2026-03-01"})
    too_long = await api.get(path, "supervisor", params={first: "2000-01-01", last: "2026-01-01"})
    for response, message in ((reversed_, "period-reversed"), (too_long, "period-too-long")):
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "invalid-request", body
        assert body["field"] == field, body
        assert body["detail"] == t(f"error.{message}", "zh", start=first, end=last), body


__all__ = ["sqlite_api"]  # the ``api`` fixture
