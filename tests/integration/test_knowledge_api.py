"""The knowledge base and answers at intake over HTTP, on SQLite and PostgreSQL: who may
write, approve, retire and search; an answer closes the grievance; /v1/kpis counts 直办率."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import FakeClock
from tests.support.api import ApiHarness, api_harness, grievance_body
from tests.support.projections import postgres_env, sqlite_env

ARTICLE = {
    "title": "住宅电梯维修费用由谁承担",
    "body": "住宅电梯的维修、更新费用由业主共同承担，可申请使用住宅专项维修资金。",
    "keywords": ["电梯", "维修资金"],
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[ApiHarness]:
    if request.param == "sqlite":
        env = sqlite_env(tmp_path)
    else:
        env = postgres_env(request.getfixturevalue("pg_schema"))
    async with api_harness(env, tmp_path, clock) as harness:
        yield harness


async def published(api: ApiHarness, body: dict[str, Any] = ARTICLE) -> str:
    r = await api.post("/v1/knowledge/articles", "operator", body)
    assert r.status_code == 201, r.text
    article_id: str = r.json()["id"]
    r = await api.post(f"/v1/knowledge/articles/{article_id}/approve", "supervisor")
    assert r.status_code == 200, r.text
    return article_id


async def test_articles_through_the_api(api: ApiHarness) -> None:
    r = await api.post("/v1/knowledge/articles", "operator", ARTICLE)
    assert r.status_code == 201, r.text
    created = r.json()
    aid = created["id"]
    assert r.headers["location"] == f"/v1/knowledge/articles/{aid}"
    assert (created["status"], created["revision"], r.headers["etag"]) == ("draft", 1, '"1"')

    # Operators write; supervisors approve and retire; departments and Open311 neither.
    assert (await api.post(f"/v1/knowledge/articles/{aid}/approve", "operator")).status_code == 403
    r = await api.post("/v1/knowledge/articles", "department", ARTICLE, department="hd.urban")
    assert r.status_code == 403
    assert (
        await api.get("/v1/knowledge/search", "open311", params={"q": "电梯"})
    ).status_code == 403

    r = await api.post(f"/v1/knowledge/articles/{aid}/approve", "supervisor", {"revision": 1})
    assert (r.status_code, r.json()["status"]) == (200, "published")
    r = await api.post(
        f"/v1/knowledge/articles/{aid}/revise", "operator", {**ARTICLE, "body": "新口径"}
    )
    assert (r.status_code, r.json()["revision"], r.json()["published_revision"]) == (200, 2, 1)
    r = await api.get(f"/v1/knowledge/articles/{aid}", "operator")
    article = r.json()
    assert (article["published_revision"], article["waiting_revision"]) == (1, 2)
    assert [rev["body"] for rev in article["revisions"]] == [ARTICLE["body"], "新口径"]

    # Supervisors find what waits for their approval in the list (from the read model).
    api.catch_up()
    r = await api.get("/v1/knowledge/articles", "supervisor", params={"waiting": "true"})
    waiting = r.json()["items"]
    assert [(a["id"], a["waiting_revision"], a["published_revision"]) for a in waiting] == [
        (aid, 2, 1)
    ]
    r = await api.get("/v1/knowledge/articles", "operator", params={"status": "published"})
    assert [a["title"] for a in r.json()["items"]] == [ARTICLE["title"]]
    r = await api.get("/v1/knowledge/articles", "operator", params={"status": "gone"})
    assert r.status_code == 422

    # Approving a revision that is not the waiting one: 409 naming the status.
    r = await api.post(f"/v1/knowledge/articles/{aid}/approve", "supervisor", {"revision": 1})
    assert (r.status_code, r.json()["code"]) == (409, "illegal-article-transition")
    assert "没有等待审核的修订版本" in r.json()["detail"]
    r = await api.post(f"/v1/knowledge/articles/{aid}/retire", "supervisor", {"reason": "废止"})
    assert (r.status_code, r.json()["status"]) == (200, "retired")
    r = await api.post(f"/v1/knowledge/articles/{aid}/revise", "operator", ARTICLE)
    assert (r.status_code, r.json()["current_status"]) == (409, "retired")

    # Bad input is a 422, an unknown article a 404, a stale If-Match a 412.
    r = await api.post("/v1/knowledge/articles", "operator", {"title": "", "body": "x"})
    assert r.status_code == 422
    r = await api.post("/v1/knowledge/articles", "operator", {**ARTICLE, "category": "NOPE"})
    assert r.status_code == 422
    missing = "00000000-0000-0000-0000-000000000007"
    assert (await api.get(f"/v1/knowledge/articles/{missing}", "operator")).status_code == 404
    other = await published(api)
    r = await api.post(
        f"/v1/knowledge/articles/{other}/retire", "supervisor", None, **{"If-Match": '"1"'}
    )
    assert r.status_code == 412


async def test_an_idempotent_article_write(api: ApiHarness) -> None:
    key = {"Idempotency-Key": "kb-write-1"}
    first = await api.post("/v1/knowledge/articles", "operator", ARTICLE, **key)
    again = await api.post("/v1/knowledge/articles", "operator", ARTICLE, **key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert api.app.get_article(UUID(first.json()["id"])).version == 1


async def test_search_in_chinese(api: ApiHarness) -> None:
    lift = await published(api)
    water = await published(
        api,
        {
            "title": "计划停水通知查询",
            "body": "停水时间以自来水公司公告为准。",
            "keywords": ["停水"],
        },
    )
    api.catch_up()
    r = await api.get("/v1/knowledge/search", "operator", params={"q": "电梯维修费用"})
    assert r.status_code == 200, r.text
    hits = r.json()["items"]
    assert [h["id"] for h in hits] == [lift]
    assert hits[0]["revision"] == 1 and hits[0]["score"] > 0
    r = await api.get("/v1/knowledge/search", "supervisor", params={"q": "停水"})
    assert [h["id"] for h in r.json()["items"]] == [water]
    r = await api.get("/v1/knowledge/search", "operator", params={"q": ""})
    assert r.status_code == 422


async def test_answer_at_intake_closes_it_and_counts_in_the_kpis(api: ApiHarness) -> None:
    lift = await published(api)
    r = await api.post(
        "/v1/grievances",
        "operator",
        {**grievance_body(), "request_type": "consultation", "text": "电梯维修费用谁出？"},
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    r = await api.post(
        f"/v1/grievances/{gid}/answer",
        "operator",
        {"answer": "可申请使用住宅专项维修资金。", "articles": [{"article_id": lift}]},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["version"]) == ("closed", 3)
    g = (await api.get(f"/v1/grievances/{gid}", "operator")).json()
    assert (g["request_type"], g["outcome"], g["assignments"]) == (
        "consultation",
        "answered_at_intake",
        [],
    )
    assert g["intake_answer"]["articles"] == [
        {"article_id": lift, "revision": 1, "title": ARTICLE["title"]}
    ]
    # Again: 409, it is closed. A department may not answer.
    r = await api.post(f"/v1/grievances/{gid}/answer", "operator", {"answer": "x"})
    assert (r.status_code, r.json()["current_status"]) == (409, "closed")
    other = (await api.new_grievance(request_type="complaint"))["id"]
    r = await api.post(
        f"/v1/grievances/{other}/answer", "department", {"answer": "x"}, department="hd.urban"
    )
    assert r.status_code == 403
    r = await api.post(
        f"/v1/grievances/{other}/answer",
        "operator",
        {"answer": "x", "articles": [{"article_id": "00000000-0000-0000-0000-000000000009"}]},
    )
    assert (r.status_code, r.json()["field"]) == (422, "articles")
    r = await api.post("/v1/grievances", "operator", {**grievance_body(), "request_type": "x"})
    assert r.status_code == 422

    api.catch_up()
    kpis = (await api.get("/v1/kpis", "supervisor")).json()
    intake = kpis["intake"]
    assert (intake["received"], intake["answered_at_intake"], intake["direct_answer_rate"]) == (
        2,
        1,
        0.5,
    )
    by_type = {row["request_type"]: row["direct_answer_rate"] for row in intake["by_request_type"]}
    assert by_type == {"complaint": 0.0, "consultation": 1.0}
