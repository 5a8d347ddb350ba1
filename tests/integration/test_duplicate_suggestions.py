"""Duplicate suggestions through HTTP, on SQLite and PostgreSQL: the read model keeps each
grievance's place, the route scores the open ones alike, explains them in Chinese and
English, and its merge link is the one call that merges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from api.catalogue import category_name
from domain.intake import Intake
from tests.conftest import OPERATOR, FakeClock, make_grievance, make_location
from tests.support.api import ApiHarness


@pytest.fixture
def api(backend_api: ApiHarness) -> ApiHarness:
    return backend_api  # SQLite and PostgreSQL (tests/integration/conftest.py)


def filed(api: ApiHarness, category: str | None = "PM03", **location: Any) -> str:
    gid = make_grievance(api.app, location=make_location(**location))
    if category is not None:
        api.app.classify_grievance(gid, OPERATOR, category=category)
    return str(gid)


def at_point(api: ApiHarness, lat: float, long: float, community: str) -> str:
    """An Open311-style filing with coordinates and no grid."""
    gid = make_grievance(
        api.app,
        location=make_location(community=community, grid=None),
        intake=Intake(service_code="PM03", lat=lat, long=long),
    )
    return str(gid)


async def similar(api: ApiHarness, gid: str, lang: str = "zh") -> dict[str, Any]:
    r = await api.get(f"/v1/grievances/{gid}/similar", "operator", params={"lang": lang})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_suggestions_are_scored_explained_and_merge_in_one_call(
    api: ApiHarness, clock: FakeClock
) -> None:
    too_old = filed(api)
    clock.advance(days=4)
    first = filed(api)
    other_category = filed(api, category="UM04")
    closed = filed(api)
    api.app.withdraw_grievance(UUID(closed), OPERATOR, reason="诉求人撤回")
    elsewhere = filed(api, community="xyl-02", grid="xyl-02-g1")
    clock.advance(hours=1)
    unclassified = filed(api, category=None, grid="xyl-01-g2")
    clock.advance(hours=1)
    probe = filed(api)
    api.catch_up()

    answer = await similar(api, probe)
    ids = [i["grievance_id"] for i in answer["items"]]
    assert ids == [first, unclassified]
    assert not {too_old, other_category, closed, elsewhere} & set(ids)
    best = answer["items"][0]
    assert [r["code"] for r in best["reasons"]] == ["same-grid", "same-category", "hours-earlier"]
    assert best["reasons"][2]["params"] == {"hours": 2}
    pm03 = category_name("PM03", "zh")
    assert best["explanation"] == f"同一网格（xyl-01-g1）、同一类别（{pm03}）、早于本件 2 小时受理"
    assert best["score"] > answer["items"][1]["score"] >= answer["min_score"]
    assert answer["window_hours"] == 72 and answer["radius_metres"] == 50
    english = await similar(api, probe, "en")
    assert english["items"][0]["explanation"].startswith("same grid (xyl-01-g1), same category (")
    assert english["items"][0]["explanation"].endswith("received 2 h before this one")
    assert english["items"][1]["reasons"][0]["text"] == "same community (xyl-01)"

    merge = best["merge"]
    assert merge == {
        "method": "POST",
        "href": f"/v1/grievances/{probe}/merge",
        "body": {"into": first},
    }
    r = await api.post(merge["href"], "operator", {**merge["body"], "reason": "同一问题"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "merged"
    api.catch_up()
    # Merged: no longer suggested to anyone, and its primary sees only the other one.
    assert [i["grievance_id"] for i in (await similar(api, first))["items"]] == [unclassified]


async def test_a_draft_gets_suggestions_while_it_is_typed(
    api: ApiHarness, clock: FakeClock
) -> None:
    near = at_point(api, 39.9903, 116.35, community="xyl-02")
    far = at_point(api, 39.9920, 116.35, community="xyl-03")
    clock.advance(minutes=30)
    api.catch_up()
    params = {"lat": 39.99, "long": 116.35, "category": "PM03", "community": "xyl-01"}
    r = await api.get("/v1/grievances/similar", "operator", params=params)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["grievance_id"] is None
    assert [i["grievance_id"] for i in answer["items"]] == [near]
    item = answer["items"][0]
    assert item["reasons"][0] == {
        "code": "within-distance",
        "params": {"metres": 33},
        "text": "相距约 33 米",
    }
    assert item["reasons"][1]["code"] == "category-unknown"
    assert item["reasons"][2]["text"] == "早于本件 30 分钟受理"
    assert item["merge"] is None  # nothing to merge until the draft is filed
    assert far not in {i["grievance_id"] for i in answer["items"]}
    # Later on, the same place is outside the window.
    later = {**params, "at": (clock.now + timedelta(days=4)).isoformat()}
    r = await api.get("/v1/grievances/similar", "operator", params=later)
    assert r.status_code == 200 and r.json()["items"] == []


async def test_a_grievance_not_projected_yet_is_compared_from_its_events(
    api: ApiHarness, clock: FakeClock
) -> None:
    first = filed(api)
    api.catch_up()
    clock.advance(minutes=5)
    probe = filed(api)  # the projector has not seen it
    assert [i["grievance_id"] for i in (await similar(api, probe))["items"]] == [first]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "PM03"}, "grid"),
        ({"lat": 39.99}, "long"),
        ({"grid": "xyl-01-g1", "category": "NOPE"}, "category"),
        ({"grid": "xyl-01-g1", "lat": 91, "long": 0}, "lat"),
        ({"grid": "xyl-01-g1", "at": "2026-11-23T10:00:00"}, "at"),
    ],
)
async def test_bad_drafts_are_422_naming_the_field(
    api: ApiHarness, params: dict[str, Any], field: str
) -> None:
    r = await api.get("/v1/grievances/similar", "operator", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    named = {problem.get("field")} | {e.get("field") for e in problem.get("errors", [])}
    assert any(field in str(n) for n in named), problem


async def test_only_staff_may_ask_and_unknown_grievances_are_404(api: ApiHarness) -> None:
    gid = filed(api)
    r = await api.get(f"/v1/grievances/{gid}/similar", "department", department="cm.xyl-01")
    assert r.status_code == 403
    r = await api.get(f"/v1/grievances/{UUID(int=1)}/similar", "supervisor")
    assert r.status_code == 404
