"""Free text can no longer change any structured field (hypothesis).

A service asks for one attribute of every GeoReport v2 datatype. Its free-text values and
the description are drawn from fragments that broke the old text block: line and paragraph
separators (U+2028/U+2029), newlines, the ``【Open311】`` marker and lines such as
``media_url: javascript:…`` or ``lat: 91.5``. Whatever is drawn, a filing is refused
(400, nothing recorded) or recorded with exactly the structured data that was sent (the
event's ``intake``, and what reads return), and the citizen's text as given.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.open311.catalog import Catalog, load_data, parse_w3c
from tests.conftest import FakeClock
from tests.support.api import build_services, sqlite_env

BASE = "/open311/v2"
SERVICE = "UM08"
POINT = ("39.9931", "116.3489")
MEDIA = "https://img.example.cn/a.jpg"
FRAGMENTS = [
    "\u2028",
    "\u2029",
    "\n",
    "\r\n",
    "\x85",
    "【Open311】",
    "media_url: javascript:alert(1)",
    "lat: 91.5",
    "long: -200",
    "service_code: PU02",
    "address_id: xyl-01",
    "attribute[n] 数: 1",
    ": ",
    "、",
    "（",
    "）",
    "路灯不亮",
    " ",
]
FUZZ_SET = [
    {"code": "s", "datatype": "string", "required": False, "description": "字符串"},
    {"code": "t", "datatype": "text", "required": False, "description": "文本"},
    {"code": "n", "datatype": "number", "required": False, "description": "数字"},
    {"code": "d", "datatype": "datetime", "required": False, "description": "时间"},
    {
        "code": "one",
        "datatype": "singlevaluelist",
        "required": False,
        "description": "单选",
        "values": [{"key": "a", "name": "甲"}, {"key": "b", "name": "乙"}],
    },
    {
        "code": "many",
        "datatype": "multivaluelist",
        "required": False,
        "description": "多选",
        "values": [{"key": "x", "name": "子"}, {"key": "y", "name": "丑"}],
    },
]

hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=8).map(
    "".join
)
values = st.fixed_dictionaries(
    {},
    optional={
        "s": hostile,
        "t": hostile,
        "n": st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr), hostile),
        "d": st.one_of(st.just("2026-11-23T15:00:00+08:00"), hostile),
        "one": st.one_of(st.sampled_from(["a", "b"]), hostile),
        "many": st.lists(st.one_of(st.sampled_from(["x", "y"]), hostile), max_size=3),
    },
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    env = sqlite_env(tmp_path)
    app = create_app(lambda: build_services(env, tmp_path, FakeClock()))
    with TestClient(app) as test_client:
        services = app.state.services
        data = copy.deepcopy(load_data())
        data["attribute_sets"]["fuzz"] = FUZZ_SET
        data["services"][SERVICE] = {"attributes": ["fuzz"], "keywords": []}
        policies = services.app.policies
        app.state.open311_catalog = (policies, Catalog.build(policies, data))
        test_client.headers["X-Key"] = services.tokens.create("open311", name="fuzz")[1]
        yield test_client


def _expected(attributes: dict[str, Any]) -> dict[str, Any]:
    """The typed values a filing of these attributes must record (parse_form strips)."""
    typed: dict[str, Any] = {}
    for code, raw in attributes.items():
        given = [v.strip() for v in (raw if isinstance(raw, list) else [raw]) if v.strip()]
        if not given:
            continue
        if code == "many":
            typed[code] = given
        elif code == "n":
            typed[code] = float(given[0])
        elif code == "d":
            moment = parse_w3c(given[0])
            assert moment is not None
            typed[code] = moment.astimezone(UTC).isoformat()
        else:
            typed[code] = given[0]
    return typed


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(description=hostile, attributes=values)
def test_free_text_never_changes_a_structured_field(
    client: TestClient, description: str, attributes: dict[str, Any]
) -> None:
    key = client.headers["X-Key"]
    fields: list[tuple[str, str]] = [
        ("api_key", key),
        ("service_code", SERVICE),
        ("lat", POINT[0]),
        ("long", POINT[1]),
        ("phone", "13812345678"),
        ("description", description),
        ("media_url", MEDIA),
    ]
    for code, raw in attributes.items():
        if isinstance(raw, list):
            fields += [(f"attribute[{code}][]", v) for v in raw]
        else:
            fields.append((f"attribute[{code}]", raw))
    app = client.app.state.services.app  # type: ignore[attr-defined]
    before = len(list(app.iter_events()))
    response = client.post(
        f"{BASE}/requests.json",
        content=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in (201, 400), response.text
    event(f"status {response.status_code}")
    if response.status_code == 400:
        assert len(list(app.iter_events())) == before  # refused: nothing recorded
        return
    number = response.json()[0]["service_request_id"]
    grievance = app.get_by_number(number)
    assert grievance.text == unicodedata.normalize("NFC", description).strip()
    assert grievance.intake["service_code"] == SERVICE
    assert grievance.intake["point"] == {"lat": float(POINT[0]), "long": float(POINT[1])}
    assert grievance.intake["media"] == [MEDIA]
    assert grievance.intake["address_id"] is None
    assert grievance.intake["attributes"] == _expected(attributes)
    for params in ({"api_key": key, "extensions": "true"}, {}):
        (read,) = client.get(f"{BASE}/requests/{number}.json", params=params).json()
        assert read["service_code"] == SERVICE
        assert read["media_url"] in (MEDIA, None) and read["address_id"] is None
        assert read["lat"] is not None and abs(read["lat"] - float(POINT[0])) < 1e-3
        assert abs(read["long"] - float(POINT[1])) < 1e-3
    assert read["description"] is None  # the public read
