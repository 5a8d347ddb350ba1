"""The Open311 list from its read model (``projections.open311``): filters in SQL, bounded
pages, one SQL query per page and no event-store read, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from projections.open311 import Open311RequestsView
from projections.queries import ReadModels
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, make_grievance
from tests.support.api import ApiHarness, api_harness, sqlite_env
from tests.support.open311 import SPEC_CONTENT_TYPE, form_body, spec_like_fields
from tests.support.projections import postgres_env

BASE = "/open311/v2"
NO_ATTRIBUTES = {"attribute[since]": None, "attribute[households]": None}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return sqlite_env(tmp_path)
    schema: str = request.getfixturevalue("pg_schema")
    return postgres_env(schema)


@pytest.fixture
async def api(env: dict[str, str], tmp_path: Path, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    async with api_harness(env, tmp_path, clock) as harness:
        yield harness


async def _file(api: ApiHarness, name: str = "fixmystreet", **fields: str | None) -> str:
    key = api.token("open311", name=name)
    response = await api.client.post(
        f"{BASE}/requests.json",
        content=form_body(spec_like_fields(key, **fields)).encode(),
        headers={"Content-Type": SPEC_CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    number: str = response.json()[0]["service_request_id"]
    return number


class Counted:
    """Counts the read models' SQL queries; any event-store read fails the test."""

    def __init__(self, api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queries: list[str] = []
        read_models: ReadModels = api.services.read_models
        original: Callable[..., list[dict[str, Any]]] = read_models._query

        def query(text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            self.queries.append(text)
            return original(text, params)

        def no_store(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the list read the event store")

        monkeypatch.setattr(read_models, "_query", query)
        monkeypatch.setattr(api.app.events, "get", no_store)
        monkeypatch.setattr(api.app.repository, "get", no_store)

    def take(self) -> list[str]:
        taken, self.queries = self.queries, []
        return taken


async def test_the_list_is_one_sql_query_per_page_with_its_filters_in_sql(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers: list[str] = []
    for i in range(12):
        api.clock.advance(minutes=1)
        code = {"service_code": "UM08", **NO_ATTRIBUTES} if i % 3 == 0 else {}
        numbers.append(await _file(api, name="fixmystreet" if i % 2 else "seeclickfix", **code))
    api.clock.advance(minutes=1)
    hotline = api.app.get_grievance(make_grievance(api.app)).number
    rejected = api.app.get_by_number(numbers[4]).id
    api.app.reject_grievance(rejected, OPERATOR, reason="非本市管辖范围")
    api.catch_up()
    counted = Counted(api, monkeypatch)
    newest_first = numbers[::-1]

    async def page(**params: str) -> list[str]:
        response = await api.client.get(f"{BASE}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    assert await page() == newest_first
    assert len(counted.take()) == 1
    pages = [await page(page_size="5", page=str(n)) for n in (1, 2, 3, 4)]
    assert pages == [newest_first[0:5], newest_first[5:10], newest_first[10:], []]
    assert len(counted.take()) == 4
    lights = [n for i, n in enumerate(numbers) if i % 3 == 0][::-1]
    assert await page(service_code="UM08") == lights
    assert await page(service_code="UM08", status="closed") == []
    assert await page(status="closed") == [numbers[4]]
    assert (
        await page(status="open", service_code="PU02", page_size="3")
        == [n for n in newest_first if n not in lights and n != numbers[4]][:3]
    )
    assert len(counted.take()) == 4
    # Only the dispatch centre lists other channels; still one query.
    operator = {"api_key": api.token("operator")}
    assert await page(**operator) == [hotline, *newest_first]
    assert len(counted.take()) == 1
    # By case numbers: one query for those projected.
    assert await page(service_request_id=f"{numbers[1]},{hotline},{numbers[2]}") == [
        numbers[1],
        numbers[2],
    ]
    assert len(counted.take()) == 1


async def test_rows_keep_the_public_note_and_the_open311_text_only(
    api: ApiHarness,
) -> None:
    number = await _file(api)
    gid = api.app.get_by_number(number).id
    api.app.classify_grievance(gid, OPERATOR, category="PU02")
    api.catch_up()
    api.app.dispatch_grievance(gid, OPERATOR)
    api.catch_up()
    api.clock.advance(minutes=5)
    api.app.urge(gid, SUPERVISOR, kind="resolve", assignment_id=f"{gid}.1", reason="请抓紧")
    api.catch_up()  # an urge is internal: the note stays the dispatch's
    (row,) = await _list(api.client)
    assert row["status_notes"] == "已派至供电公司办理"
    assert row["agency_responsible"] == "供电公司" and row["expected_datetime"]
    fresh = (await api.client.get(f"{BASE}/requests/{number}.json")).json()[0]
    assert fresh == row  # the read model shows what the event store shows
    stored = api.services.read_models.open311_by_number([number])[number]
    assert stored["description"] == "整栋楼停电两个小时了，电梯也停了"
    assert Open311RequestsView.projection_name == "open311_requests"


async def _list(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"{BASE}/requests.json", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found
