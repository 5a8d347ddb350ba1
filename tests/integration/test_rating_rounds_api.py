"""Quarterly rating rounds through HTTP on SQLite and PostgreSQL: the default pairs come
from the quarter's assignments and summonses, a street scores, a supervisor closes and
publishes, and a rated department sees only its own line, without raters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OPERATOR, department, make_grievance
from tests.support.api import ApiHarness

STREET = "st.xueyuanlu"
SCORES = {"responsiveness": 90, "cooperation": 70, "effectiveness": 80}


@pytest.fixture
def api(backend_api: ApiHarness) -> ApiHarness:
    return backend_api


def worked_with_the_street(api: ApiHarness) -> None:
    """学院路 works with enforcement (UM01: it assists), fire (SF02: it leads, fire assists)
    and urban management (summoned by the street on the SF02 grievance)."""
    app = api.app
    for category in ("UM01", "SF02"):
        gid = make_grievance(app)
        app.classify_grievance(gid, OPERATOR, category=category)
        app.dispatch_grievance(gid, OPERATOR)
    app.summon_departments(gid, department(STREET), departments=["hd.urban"], reason="联合处置")
    api.catch_up()


async def test_a_round_from_open_to_published_seen_by_each(api: ApiHarness) -> None:
    worked_with_the_street(api)
    r = await api.post(
        "/v1/rating-rounds",
        "supervisor",
        {"quarter": "2026-Q4", "deadline": "2027-01-15T18:00:00+08:00"},
    )
    assert r.status_code == 200, r.text
    opened: dict[str, Any] = r.json()
    assert opened["raters"] == {STREET: ["hd.enforcement", "hd.fire", "hd.urban"]}
    rid = opened["id"]
    r = await api.post(
        f"/v1/rating-rounds/{rid}/scores",
        "department",
        {"department": "hd.urban", "scores": SCORES, "comment": "到场及时"},
        STREET,
    )
    assert r.status_code == 200 and r.json()["submitted"] == {STREET: ["hd.urban"]}, r.text
    r = await api.post(
        f"/v1/rating-rounds/{rid}/scores",
        "department",
        {"department": "hd.urban", "scores": SCORES},
        "hd.urban",
    )
    assert r.status_code == 422, r.text  # a bureau does not rate itself
    r = await api.post(f"/v1/rating-rounds/{rid}/publish", "supervisor", {})
    assert r.status_code == 409 and r.json()["code"] == "round-state", r.text
    assert "尚未截止" in r.json()["detail"]
    for step in ("close", "publish"):
        r = await api.post(f"/v1/rating-rounds/{rid}/{step}", "supervisor", {})
        assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/rating-rounds/{rid}/scores?lang=en",
        "department",
        {"department": "hd.fire", "scores": SCORES},
        STREET,
    )
    assert r.status_code == 409 and "is closed" in r.json()["detail"], r.text

    everything = (await api.get(f"/v1/rating-rounds/{rid}", "supervisor")).json()
    assert everything["status"] == "published"
    assert everything["submitted"] == {STREET: ["hd.urban"]}
    own = (await api.get(f"/v1/rating-rounds/{rid}", "department", "hd.urban")).json()
    assert own["raters"] == {} and own["submitted"] == {}
    assert own["results"] == [
        {
            "department": "hd.urban",
            "raters": 1,
            "items": {k: float(v) for k, v in SCORES.items()},
            "score": 80.0,
            "comments": [{"comment": "到场及时"}],
        }
    ]
    assert STREET not in repr(own)
    nothing = (await api.get(f"/v1/rating-rounds/{rid}", "department", "hd.water")).json()
    assert nothing["results"] is None
    r = await api.get("/v1/rating-rounds/00000000-0000-0000-0000-000000000000", "supervisor")
    assert r.status_code == 404


async def test_a_quarter_nobody_worked_in_needs_explicit_pairs(api: ApiHarness) -> None:
    body: dict[str, Any] = {"quarter": "2025-Q1", "deadline": "2027-01-15T18:00:00+08:00"}
    r = await api.post("/v1/rating-rounds", "supervisor", body)
    assert r.status_code == 422 and r.json()["field"] == "pairs", r.text
    body["pairs"] = {STREET: ["hd.water"]}
    r = await api.post("/v1/rating-rounds", "supervisor", body, **{"Idempotency-Key": "q1"})
    again = await api.post("/v1/rating-rounds", "supervisor", body, **{"Idempotency-Key": "q1"})
    assert r.status_code == again.status_code == 200 and r.json()["id"] == again.json()["id"]
