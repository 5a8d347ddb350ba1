"""Open311 GeoReport v2 endpoints, JSON and XML, against the spec's own example documents.

Each response is compared field by field with the specification's example for that
endpoint (``tests/support/open311.py`` cites and holds them), then its values are checked
against what closeloop recorded. SQLite event store, the real app factory, in-process ASGI.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from domain.model import Channel, Role, Status
from tests.conftest import OPERATOR, department
from tests.support.api import ApiHarness, sqlite_api
from tests.support.open311 import (
    CREATED_JSON,
    CREATED_XML,
    DEFINITION_JSON,
    DEFINITION_XML,
    DISCOVERY_JSON,
    DISCOVERY_XML,
    ERRORS_JSON,
    ERRORS_XML,
    POST_EXAMPLE_FIELDS,
    REQUESTS_JSON,
    REQUESTS_XML,
    SERVICES_JSON,
    SERVICES_XML,
    SPEC_CONTENT_TYPE,
    assert_json_like,
    assert_xml_like,
    form_body,
    personal_values,
    spec_json,
    spec_like_fields,
    spec_xml,
)

BASE = "/open311/v2"
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")


def as_json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def as_xml(response: httpx.Response, status: int = 200) -> ElementTree.Element:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.content)


def spec_error(response: httpx.Response, status: int, fmt: str = "json") -> list[str]:
    """An error in the spec's format with this HTTP status; answers the descriptions."""
    if fmt == "xml":
        root = as_xml(response, status)
        assert_xml_like(root, spec_xml(ERRORS_XML))
        codes = [int(e.findtext("code") or 0) for e in root]
        descriptions = [e.findtext("description") or "" for e in root]
    else:
        body = as_json(response, status)
        assert_json_like(body, spec_json(ERRORS_JSON))
        codes = [e["code"] for e in body]
        descriptions = [e["description"] for e in body]
    assert codes and all(code == status for code in codes)
    assert all(descriptions)
    return descriptions


async def file_request(
    api: ApiHarness, fields: list[tuple[str, str]], fmt: str = "json"
) -> httpx.Response:
    return await api.client.post(
        f"{BASE}/requests.{fmt}",
        content=form_body(fields).encode("utf-8"),
        headers={"Content-Type": SPEC_CONTENT_TYPE},
    )


async def filed(
    api: ApiHarness, role: str = "open311", name: str = "fixmystreet", **kw: Any
) -> str:
    key = api.token(role, name=name)
    body = as_json(await file_request(api, spec_like_fields(key, **kw)), 201)
    number: str = body[0]["service_request_id"]
    return number


def key(api: ApiHarness, name: str = "fixmystreet") -> dict[str, str]:
    return {"api_key": api.token("open311", name=name)}


# ------------------------------------------------------------------ discovery


async def test_discovery_matches_the_spec_example(api: ApiHarness) -> None:
    body = as_json(await api.client.get(f"{BASE}/discovery.json"))
    assert_json_like(body, spec_json(DISCOVERY_JSON))
    (endpoint,) = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    # The configured public base URL (here create_app's default), never the request's Host.
    assert endpoint["url"] == "http://127.0.0.1:8000/open311/v2"
    forged = await api.client.get(f"{BASE}/discovery.json", headers={"Host": "evil.example"})
    assert as_json(forged)["endpoints"][0]["url"] == endpoint["url"]
    assert endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]

    root = as_xml(await api.client.get(f"{BASE}/discovery.xml"))
    assert_xml_like(root, spec_xml(DISCOVERY_XML))
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]


# ------------------------------------------------------------------- services


async def test_service_list_matches_the_spec_example(api: ApiHarness) -> None:
    body = as_json(await api.client.get(f"{BASE}/services.json"))
    assert_json_like(body, spec_json(SERVICES_JSON))
    leaves = api.app.policies.categories.leaves()
    assert [s["service_code"] for s in body] == [leaf.code for leaf in leaves]
    by_code = {s["service_code"]: s for s in body}
    assert by_code["HS02"]["service_name"] == "电梯故障停运"
    assert by_code["HS02"]["group"] == "房屋与设施"
    assert by_code["HS02"]["metadata"] is True
    assert by_code["PM03"]["metadata"] is False
    assert by_code["EN02"]["metadata"] is True
    assert {s["type"] for s in body} == {"realtime"}
    assert "elevator" in by_code["HS02"]["keywords"].split(", ")

    english = as_json(await api.client.get(f"{BASE}/services.json", params={"lang": "en"}))
    assert {s["service_code"]: s for s in english}["HS02"]["group"] == (
        "Housing and building facilities"
    )

    root = as_xml(await api.client.get(f"{BASE}/services.xml"))
    assert_xml_like(root, spec_xml(SERVICES_XML))
    assert [s.findtext("service_code") for s in root] == [leaf.code for leaf in leaves]
    hs02 = next(s for s in root if s.findtext("service_code") == "HS02")
    assert hs02.findtext("metadata") == "true" and hs02.findtext("type") == "realtime"


async def test_service_definition_matches_the_spec_example(api: ApiHarness) -> None:
    body = as_json(await api.client.get(f"{BASE}/services/HS02.json"))
    assert_json_like(body, spec_json(DEFINITION_JSON))
    assert body["service_code"] == "HS02"
    codes = [a["code"] for a in body["attributes"]]
    assert codes == ["building", "unit", "elevator_state"]
    assert [a["order"] for a in body["attributes"]] == [1, 2, 3]
    state = body["attributes"][2]
    assert state["datatype"] == "singlevaluelist" and state["required"] is True
    assert [v["key"] for v in state["values"]] == ["stopped", "faulty", "doors"]

    noise = as_json(await api.client.get(f"{BASE}/services/EN02.json"))
    assert noise["attributes"][0]["datatype"] == "multivaluelist"

    root = as_xml(await api.client.get(f"{BASE}/services/HS02.xml"))
    assert_xml_like(root, spec_xml(DEFINITION_XML))
    assert [a.findtext("code") for a in root.iter("attribute")] == codes
    assert [v.findtext("key") for v in root.iter("value")] == ["stopped", "faulty", "doors"]

    plain = as_json(await api.client.get(f"{BASE}/services/PM03.json"))
    assert plain == {"service_code": "PM03", "attributes": []}

    spec_error(await api.client.get(f"{BASE}/services/XX99.json"), 404)
    spec_error(await api.client.get(f"{BASE}/services/XX99.xml"), 404, "xml")
    spec_error(
        await api.client.get(f"{BASE}/services.json", params={"jurisdiction_id": "sfgov.org"}),
        404,
    )


# -------------------------------------------------------------------- POST


def test_our_form_has_the_spec_examples_fields() -> None:
    ours = [name for name, _ in spec_like_fields("k")]
    assert [n for n in ours if not n.startswith("attribute[")] == [
        n for n in POST_EXAMPLE_FIELDS if not n.startswith("attribute[")
    ]
    assert sum(n.startswith("attribute[") for n in ours) == 2
    assert form_body([("attribute[since]", "a b/c")]) == "attribute[since]=a+b%2Fc"


async def test_post_request_form_encoded_as_the_spec_shows(api: ApiHarness) -> None:
    api_key = api.token("open311", name="fixmystreet")
    body = as_json(await file_request(api, spec_like_fields(api_key)), 201)
    assert_json_like(body, spec_json(CREATED_JSON))
    (created,) = body
    number = created["service_request_id"]
    assert re.fullmatch(r"20261123\d{6}", number)
    assert created["account_id"] is None
    assert "1 个工作日" in created["service_notice"]

    grievance = api.app.get_by_number(number)
    assert grievance.channel == Channel.OPEN311.value
    assert grievance.received_by == "fixmystreet"
    assert grievance.status is Status.RECEIVED  # an open311 key may not classify
    assert grievance.citizen_name == "张秀英" and grievance.citizen_phone == "13812345678"
    # The community named in the address, then the grid nearest the point inside it.
    assert grievance.location == {
        "district": "haidian",
        "street": "xueyuanlu",
        "community": "xyl-01",
        "grid": "xyl-01-g2",
        "address": "学院路石油大院社区 3号楼",
    }
    # The citizen's text exactly as given; the Open311 details are data beside it.
    assert grievance.text == "整栋楼停电两个小时了，电梯也停了"
    client_id = api.services.tokens.authenticate(api_key).client_id  # type: ignore[union-attr]
    assert grievance.intake == {
        "service_code": "PU02",
        "attributes": {"since": "2026-11-23T07:00:00+00:00", "households": 120.0},
        "point": {"lat": 39.9931, "long": 116.3489},
        "media": ["http://img.example.cn/outage/2212426634.jpg"],
        "address_id": None,
        "client_id": client_id,
        "placed_by": "address_string",
    }
    events = list(api.app.events.get(grievance.id))
    assert events[0].role == Role.OPEN311.value and events[0].principal == "fixmystreet"
    assert len(events) == 1

    root = as_xml(await file_request(api, spec_like_fields(api_key), "xml"), 201)
    assert_xml_like(root, spec_xml(CREATED_XML))
    second = root.findtext("request/service_request_id")
    assert second and second != number
    assert root.find("request/account_id") is not None


async def test_an_operator_key_files_and_classifies(api: ApiHarness) -> None:
    number = await filed(api, role="operator", name="op-open311")
    grievance = api.app.get_by_number(number)
    assert grievance.status is Status.CLASSIFIED and grievance.category == "PU02"
    assert grievance.urgency == api.app.policies.categories.leaf("PU02").default_urgency
    # One command: the two events were saved together, in one notification batch.
    events = api.app.history(grievance.id)
    assert [type(e).__name__ for e in events] == ["Received", "Classified"]
    assert grievance.version == 2


async def test_open311_keys_follow_the_domains_roles(api: ApiHarness) -> None:
    """Who may file is who may receive a grievance; who classifies on filing, who may classify."""
    number = await filed(api, role="supervisor", name="sup-open311")
    grievance = api.app.get_by_number(number)
    assert grievance.status is Status.CLASSIFIED and grievance.category == "PU02"
    dept_key = api.token("department", "st.xueyuanlu")
    response = await api.client.post(
        f"{BASE}/requests.json?lang=en",
        content=form_body(spec_like_fields(dept_key)),
        headers={"Content-Type": SPEC_CONTENT_TYPE},
    )
    words = spec_error(response, 403)[0]
    for role in ("department", "operator", "supervisor", "Open311 client"):
        assert role in words, words


async def test_idempotency_key_files_once(api: ApiHarness) -> None:
    fields = spec_like_fields(api.token("open311", name="fixmystreet"))
    headers = {"Content-Type": SPEC_CONTENT_TYPE, "Idempotency-Key": "fms-report-77"}
    first = await api.client.post(
        f"{BASE}/requests.json", content=form_body(fields), headers=headers
    )
    again = await api.client.post(
        f"{BASE}/requests.json", content=form_body(fields), headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


async def test_idempotency_keys_are_scoped_per_api_key(api: ApiHarness) -> None:
    """Two clients that happen to use the same Idempotency-Key file two requests."""
    headers = {"Content-Type": SPEC_CONTENT_TYPE, "Idempotency-Key": "report-1"}
    answers = []
    for name in ("fixmystreet", "seeclickfix"):
        fields = spec_like_fields(api.token("open311", name=name))
        answers.append(
            await api.client.post(
                f"{BASE}/requests.json", content=form_body(fields), headers=headers
            )
        )
    assert [a.status_code for a in answers] == [201, 201]
    numbers = [a.json()[0]["service_request_id"] for a in answers]
    assert numbers[0] != numbers[1]


async def test_post_errors_use_the_spec_format_and_status(api: ApiHarness) -> None:
    api_key = api.token("open311", name="fixmystreet")

    async def refused(status: int, fmt: str = "json", **overrides: str | None) -> list[str]:
        return spec_error(
            await file_request(api, spec_like_fields(api_key, **overrides), fmt), status, fmt
        )

    assert "api_key" in (await refused(403, api_key=None))[0]
    await refused(403, "xml", api_key="cl_nope_nope")
    dept_key = api.token("department", "st.xueyuanlu")
    spec_error(await file_request(api, spec_like_fields(dept_key)), 403)
    assert "service_code" in (await refused(400, service_code=None))[0]
    await refused(404, service_code="XX99")
    await refused(404, "xml", jurisdiction_id="sfgov.org")
    assert "address_string" in (await refused(400, lat=None, long=None, address_string=None))[0]
    await refused(400, long=None, address_string=None)
    await refused(400, lat="north", long="east")
    # San Francisco's coordinates from the spec's example are far outside Haidian.
    assert (
        "不在本区服务范围内"
        in (await refused(400, lat="37.76524078", long="-122.4212043", address_string=None))[0]
    )
    assert "phone" in (await refused(400, phone=None))[0]
    await refused(400, phone="111111111")  # the spec example's number is not a phone here
    await refused(400, media_url="javascript:alert(1)")
    await refused(400, address_id="nowhere")
    await refused(400, description="长" * 4001)
    # Every attribute problem is listed, each as its own error.
    problems = await refused(
        400,
        service_code="HS02",
        **{"attribute[since]": "x", "attribute[households]": None},
    )
    assert len(problems) == 3  # unknown since, missing building, missing elevator_state
    problems = await refused(
        400,
        service_code="EN02",
        **{
            "attribute[since]": None,
            "attribute[households]": None,
            "attribute[time_of_day]": "midnight",
        },
    )
    assert any("midnight" in p for p in problems)
    wrong_type = await api.client.post(
        f"{BASE}/requests.json",
        json={"api_key": api_key},
        headers={"Content-Type": "application/json"},
    )
    spec_error(wrong_type, 400)
    assert not list(api.app.iter_events())  # nothing was recorded by any refusal


async def test_multivaluelist_attributes_and_location_rules(api: ApiHarness) -> None:
    noise = {
        "service_code": "EN02",
        "attribute[since]": None,
        "attribute[households]": None,
    }
    body = form_body(
        [
            *spec_like_fields(api.token("open311", name="fixmystreet"), **noise),
            ("attribute[time_of_day][]", "evening"),
            ("attribute[time_of_day][]", "night"),
        ]
    )
    r = await api.client.post(
        f"{BASE}/requests.json", content=body, headers={"Content-Type": SPEC_CONTENT_TYPE}
    )
    grievance = api.app.get_by_number(as_json(r, 201)[0]["service_request_id"])
    assert grievance.intake is not None
    assert grievance.intake["attributes"] == {"time_of_day": ["evening", "night"]}
    assert grievance.text == "整栋楼停电两个小时了，电梯也停了"

    def placed(number: str) -> dict[str, Any]:
        return dict(api.app.get_by_number(number).location)

    # address_id: our own place code, exactly.
    at_grid = placed(await filed(api, address_id="zgc-02-g3", address_string=None))
    assert (at_grid["street"], at_grid["community"], at_grid["grid"]) == (
        "zhongguancun",
        "zgc-02",
        "zgc-02-g3",
    )
    # address_string naming a street (without its suffix) beats the coordinates.
    by_name = placed(await filed(api, address_string="清河 毛纺路 12 号"))
    assert (by_name["street"], by_name["community"]) == ("qinghe", None)
    # lat/long alone: the nearest grid centroid within its limit, else community, street.
    at_point = api.app.get_by_number(
        await filed(api, address_string=None, lat="40.0331", long="116.3269")
    )
    assert at_point.location["grid"] == "qh-01-g1" and at_point.location["address"] == ""
    assert at_point.intake is not None and at_point.intake["placed_by"] == "point"
    by_point = placed(await filed(api, address_string=None, lat="40.031", long="116.329"))
    assert (by_point["street"], by_point["community"]) == ("qinghe", "qh-01")
    far = placed(await filed(api, address_string=None, lat="40.06", long="116.33"))
    assert (far["street"], far["community"]) == ("qinghe", None)
    # A street by name, the point inside it: refined to its community's grid.
    refined = placed(await filed(api, address_string="清河 毛纺路", lat="40.0331", long="116.3269"))
    assert refined["grid"] == "qh-01-g1"
    # An address nothing matches, coordinates far away: the district's catch-all queue
    # (兜底), flagged for the dispatch centre.
    number = await filed(api, address_string="某某路 8 号", lat="31.23", long="121.47")
    fallback = api.app.get_by_number(number)
    assert fallback.location == {
        "district": "haidian",
        "street": None,
        "community": None,
        "grid": None,
        "address": "某某路 8 号",
    }
    assert fallback.intake is not None and fallback.intake["placed_by"] == "unresolved"
    # ... which the dispatch centre sees on the grievance.
    shown = await api.client.get(f"/v1/grievances/{fallback.id}", headers=api.auth("operator"))
    assert shown.json()["intake"]["placed_by"] == "unresolved"
    assert shown.json()["location"]["street"] is None


# --------------------------------------------------------------------- GET


async def test_get_request_matches_the_spec_example(api: ApiHarness) -> None:
    number = await filed(api)
    params = key(api)
    body = as_json(await api.client.get(f"{BASE}/requests/{number}.json", params=params))
    example = spec_json(REQUESTS_JSON)[:1]
    assert_json_like(body, example)
    (request,) = body
    assert request["service_request_id"] == number
    assert request["status"] == "open"
    assert request["status_notes"] is None
    assert request["service_code"] == "PU02" and request["service_name"] == "停电"
    assert request["description"] == "整栋楼停电两个小时了，电梯也停了"
    assert request["agency_responsible"] is None and request["expected_datetime"] is None
    assert W3C.match(request["requested_datetime"]) and W3C.match(request["updated_datetime"])
    assert datetime.fromisoformat(request["requested_datetime"]) == api.clock.now
    assert request["requested_datetime"].endswith("+08:00")
    assert request["address"] == "学院路石油大院社区 3号楼"
    assert (request["lat"], request["long"]) == (39.9931, 116.3489)
    assert request["media_url"] == "http://img.example.cn/outage/2212426634.jpg"
    assert request["zipcode"] is None and request["address_id"] is None

    xml = await api.client.get(f"{BASE}/requests/{number}.xml", params=params)
    root = as_xml(xml)
    example_root = spec_xml(REQUESTS_XML)
    example_root.remove(example_root[1])  # the spec's single-request example is the first one
    assert_xml_like(root, example_root)
    assert root.findtext("request/status") == "open"
    assert root.findtext("request/lat") == "39.9931"
    assert root.find("request/status_notes") is not None

    # Without a key (as GeoReport v2 reads): the public fields only.
    public = as_json(await api.client.get(f"{BASE}/requests/{number}.json"))
    assert_json_like(public, example)
    (seen,) = public
    assert seen["status"] == "open" and seen["service_code"] == "PU02"
    assert seen["description"] is None and seen["media_url"] is None
    assert seen["address"] == "海淀区学院路街道石油大院社区"  # street/community level
    assert (seen["lat"], seen["long"]) == (39.993, 116.349)
    assert seen["requested_datetime"] == request["requested_datetime"]
    public_xml = as_xml(await api.client.get(f"{BASE}/requests/{number}.xml"))
    assert_xml_like(public_xml, example_root)
    assert public_xml.findtext("request/description") == ""

    for response in (body, xml.text, public):
        text = (
            json.dumps(response, ensure_ascii=False) if not isinstance(response, str) else response
        )
        for value in personal_values():
            assert value not in text

    spec_error(await api.client.get(f"{BASE}/requests/1.json", params=params), 404)
    spec_error(await api.client.get(f"{BASE}/requests/1.json"), 404)
    spec_error(
        await api.client.get(f"{BASE}/requests/{number}.xml", params={"api_key": "x"}), 403, "xml"
    )


async def test_private_fields_go_to_the_filing_client_and_operators_only(
    api: ApiHarness,
) -> None:
    number = await filed(api)
    url = f"{BASE}/requests/{number}.json"

    async def description(**params: str) -> str | None:
        (request,) = as_json(await api.client.get(url, params=params))
        found: str | None = request["description"]
        return found

    mine = api.token("open311", name="fixmystreet")
    assert await description(api_key=mine) == "整栋楼停电两个小时了，电梯也停了"
    assert await description(api_key=api.token("operator")) is not None
    assert await description() is None
    assert await description(api_key=api.token("supervisor")) is None
    assert await description(api_key=api.token("department", "ent.power")) is None
    assert await description(api_key=api.token("open311", name="seeclickfix")) is None
    # Ownership is the client id: a token that only shares the name is another client,
    # a second key of the same client (closeloop token create --same-client) is not.
    _, second_key = api.services.tokens.create("open311", name="fixmystreet", same_client=True)
    assert await description(api_key=second_key) is not None
    _, rotated = api.services.tokens.create("open311", name="seeclickfix", same_client=True)
    assert await description(api_key=rotated) is None
    _, same_name = api.services.tokens.create("open311", name="fixmystreet")
    assert await description(api_key=same_name) is None
    # The same under /v1: the grievance is the filing client's, not its name's.
    gid = api.app.get_by_number(number).id

    async def v1(token: str) -> int:
        response = await api.client.get(
            f"/v1/grievances/{gid}", headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code

    assert (await v1(mine), await v1(second_key), await v1(same_name)) == (200, 200, 403)
    # The typed attributes, on request (extensions=true), for the same readers only.
    (extended,) = as_json(await api.client.get(url, params={"api_key": mine, "extensions": "true"}))
    assert extended["attributes"] == [
        {"code": "since", "value": "2026-11-23T07:00:00+00:00"},
        {"code": "households", "value": 120.0},
    ]
    (public,) = as_json(await api.client.get(url, params={"extensions": "true"}))
    assert "attributes" not in public
    root = as_xml(
        await api.client.get(
            url.replace(".json", ".xml"), params={"api_key": mine, "extensions": "true"}
        )
    )
    attributes = root.findall("request/attributes/attribute")
    assert [(a.findtext("code"), a.findtext("value")) for a in attributes] == [
        ("since", "2026-11-23T07:00:00+00:00"),
        ("households", "120.0"),
    ]


async def test_departments_see_the_citizens_text_without_any_open311_block(
    api: ApiHarness,
) -> None:
    number = await filed(api, role="operator", name="op-open311")  # filed and classified
    gid = api.app.get_by_number(number).id
    api.app.dispatch_grievance(gid, OPERATOR)
    response = await api.client.get(
        f"/v1/grievances/{gid}", headers=api.auth("department", "ent.power")
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "整栋楼停电两个小时了，电梯也停了"
    assert "Open311" not in response.text and "media_url" not in response.text


async def test_operator_reads_classified_dispatched_request(api: ApiHarness) -> None:
    number = await filed(api)
    gid = api.app.get_by_number(number).id
    api.app.classify_grievance(gid, OPERATOR, category="PU02")
    api.app.dispatch_grievance(gid, OPERATOR)
    (request,) = as_json(
        await api.client.get(
            f"{BASE}/requests/{number}.json", params={"api_key": api.token("operator")}
        )
    )
    lead = api.app.get_grievance(gid).lead_assignment()
    assert lead is not None
    assert request["agency_responsible"] == "供电公司"
    assert request["status_notes"] == "已派至供电公司办理"
    assert datetime.fromisoformat(request["expected_datetime"]) == lead.resolve_deadline
    english = as_json(
        await api.client.get(
            f"{BASE}/requests/{number}.json",
            params={"api_key": api.token("operator"), "lang": "en"},
        )
    )[0]
    assert english["agency_responsible"] == "Power Supply Company"
    assert english["service_name"] == "Power outage"
    api.app.sign_for(f"{gid}.1", department("ent.power"))
    (request,) = as_json(await api.client.get(f"{BASE}/requests/{number}.json", params=key(api)))
    assert request["status"] == "open" and request["status_notes"] == "供电公司已签收，正在办理"


async def test_list_requests_matches_the_spec_example_and_filters(api: ApiHarness) -> None:
    first = await filed(api)
    api.clock.advance(minutes=5)
    second = await filed(
        api, service_code="UM08", **{"attribute[since]": None, "attribute[households]": None}
    )
    api.clock.advance(minutes=5)
    other_client = await filed(api, name="seeclickfix")
    gid = api.app.get_by_number(first).id
    api.app.reject_grievance(gid, OPERATOR, reason="非本市管辖范围")
    api.catch_up()
    params = key(api)

    body = as_json(await api.client.get(f"{BASE}/requests.json", params=params))
    assert_json_like(body, spec_json(REQUESTS_JSON))
    # Newest first; every Open311 request, its private fields only to its own client.
    assert [r["service_request_id"] for r in body] == [other_client, second, first]
    assert body[2]["status"] == "closed"
    assert body[2]["status_notes"] == "不予受理：非本市管辖范围"
    assert [r["description"] is not None for r in body] == [False, True, True]
    assert body[0]["lat"] == 39.993 and body[1]["lat"] == 39.9931

    root = as_xml(await api.client.get(f"{BASE}/requests.xml", params=params))
    assert_xml_like(root, spec_xml(REQUESTS_XML))
    assert [r.findtext("service_request_id") for r in root] == [other_client, second, first]
    # No key at all: the same list, public fields only.
    public = as_json(await api.client.get(f"{BASE}/requests.json"))
    assert [r["service_request_id"] for r in public] == [other_client, second, first]
    assert all(r["description"] is None and r["media_url"] is None for r in public)

    async def ids(**query: str) -> list[str]:
        found = as_json(await api.client.get(f"{BASE}/requests.json", params={**params, **query}))
        return [r["service_request_id"] for r in found]

    assert await ids(status="open") == [other_client, second]
    assert await ids(status="closed") == [first]
    assert await ids(status="open,closed", service_code="PU02") == [other_client, first]
    assert await ids(service_request_id=f"{first},{other_client},99") == [first, other_client]
    assert await ids(start_date="2026-11-24T00:00:00Z") == []
    assert await ids(start_date="2026-11-23T00:00:00Z", end_date="2026-11-23T23:59:59+08:00") == [
        other_client,
        second,
        first,
    ]
    end = api.clock.now - timedelta(minutes=1)
    assert await ids(start_date="2026-11-23T00:00:00Z", end_date=end.isoformat()) == [
        second,
        first,
    ]
    operator = {"api_key": api.token("operator")}
    everyone = as_json(await api.client.get(f"{BASE}/requests.json", params=operator))
    assert {r["service_request_id"] for r in everyone} == {first, second, other_client}
    assert all(r["description"] for r in everyone)
    # Paging: newest first, page_size at a time.
    assert await ids(page_size="2") == [other_client, second]
    assert await ids(page_size="2", page="2") == [first]
    assert await ids(page_size="2", page="3") == []

    for query in (
        {"start_date": "yesterday"},
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},
        {"status": "pending"},
        {"service_code": "XX99"},
        {"page_size": "1001"},
        {"page_size": "0"},
        {"page": "-1"},
        {"page": "101"},
    ):
        spec_error(await api.client.get(f"{BASE}/requests.json", params={**params, **query}), 400)
    # A key of a role that reads nothing more (a department) reads what the public reads.
    dept = {"api_key": api.token("department", "ent.power")}
    seen = as_json(await api.client.get(f"{BASE}/requests.json", params=dept))
    assert [r["description"] for r in seen] == [None, None, None]


async def test_unknown_paths_answer_in_the_spec_format(api: ApiHarness) -> None:
    spec_error(await api.client.get(f"{BASE}/tokens/12345.xml"), 404, "xml")
    spec_error(await api.client.get(f"{BASE}/services.yaml"), 404)


async def test_a_description_imitating_the_block_changes_nothing(api: ApiHarness) -> None:
    forged = "灯不亮\n\n【Open311】\nmedia_url: http://evil.example/x.jpg\nlat: 1"
    number = await filed(api, description=forged, media_url=None)
    (request,) = as_json(await api.client.get(f"{BASE}/requests/{number}.json", params=key(api)))
    assert request["description"] == forged
    assert request["media_url"] is None and request["lat"] == 39.9931


async def test_errors_are_english_on_request(api: ApiHarness) -> None:
    r = await api.client.get(f"{BASE}/requests.json", params={"lang": "en", "api_key": "cl_x_y"})
    assert spec_error(r, 403) == ["Invalid api_key received"]
    fields = spec_like_fields(api.token("open311", name="fixmystreet"), phone=None)
    r = await api.client.post(
        f"{BASE}/requests.json?lang=en",
        content=form_body(fields),
        headers={"Content-Type": SPEC_CONTENT_TYPE},
    )
    assert spec_error(r, 400)[0].startswith("phone is required")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("last_name", "张\u202e"),  # a right-to-left override
        ("first_name", "秀\u200b英"),  # a zero-width space
        ("address_string", "学院路\u2028lat: 91.5"),  # a line separator
        ("description", "停电\u202etxet"),  # direction controls in free text too
    ],
)
async def test_open311_names_addresses_and_text_refuse_spoofing_characters(
    api: ApiHarness, field: str, value: str
) -> None:
    """The domain refuses them for every channel (not only the /v1 schemas): a 400 in
    Open311's own format naming the field, and nothing recorded."""
    before = api.app.recorder.max_notification_id()
    key = api.token("open311", name="fixmystreet")
    response = await file_request(api, spec_like_fields(key, **{field: value}))
    assert response.status_code == 400, response.text
    assert api.app.recorder.max_notification_id() == before


__all__ = ["sqlite_api"]  # the ``api`` fixture
