"""Monthly rankings through HTTP on SQLite and PostgreSQL: the 三率 under the policy's
weights, the streets' summons ratings for bureaus (双考), units below the minimum apart,
and ``as_of`` reproducing a published ranking after a later correction."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.model import Action
from domain.ratings import OpenRound, RoundStep, ScoreDepartment
from tests.conftest import (
    OPERATOR,
    SUPERVISOR,
    FakeClock,
    backend_env,
    department,
    make_grievance,
)
from tests.support.api import ApiHarness, api_harness

STREET = department("st.xueyuanlu")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[ApiHarness]:
    policies = tmp_path / "policies"
    policies.mkdir()
    data = json.loads(
        resources.files("domain.policies").joinpath("assessment.json").read_text("utf-8")
    )
    data["rankings"]["minimum_cases"] = 2
    (policies / "assessment.json").write_text(json.dumps(data), encoding="utf-8")
    env = backend_env(request.param, tmp_path, request) | {"POLICY_DIR": str(policies)}
    async with api_harness(env, tmp_path, clock) as harness:
        yield harness


def dispatched(api: ApiHarness, category: str) -> tuple[UUID, str]:
    gid = make_grievance(api.app)
    api.app.classify_grievance(gid, OPERATOR, category=category)
    result = api.app.dispatch_grievance(gid, OPERATOR)
    return gid, result.extra["assignments"][0]


def by_department(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["department"]: line for line in lines}


async def ranking(api: ApiHarness, **params: str) -> dict[str, Any]:
    api.catch_up()
    r = await api.get("/v1/rankings", "supervisor", params={"period": "2026-11", **params})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_bureaus_ranked_on_three_rates_and_street_ratings_as_of_reproducible(
    api: ApiHarness,
) -> None:
    app = api.app
    urban = [dispatched(api, "UM08") for _ in range(2)]  # lead: hd.urban
    transport = [dispatched(api, "TR04") for _ in range(2)]  # lead: hd.transport
    dispatched(api, "UM07")  # hd.enforcement: one case, below the minimum of 2
    for _, aid in urban:
        app.sign_for(aid, department("hd.urban"))
    gid, aid = urban[0]
    app.resolve(aid, department("hd.urban"), account="已处理")
    app.record_feedback(gid, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    app.sign_for(transport[0][1], department("hd.transport"))  # the other never signed for
    # The street (lead of an SF02 grievance) summons the transport bureau and rates it.
    street_case, _ = dispatched(api, "SF02")
    (summoned,) = app.summon_departments(
        street_case, STREET, departments=["hd.transport"], reason="联合处置"
    ).extra["assignments"]
    app.report_in(summoned, department("hd.transport"))
    app.rate_summoned(street_case, STREET, assignment_id=summoned, rating="satisfied")

    published = await ranking(api, level="bureau")
    assert published["weights"] == {
        "response_rate": 0.3,
        "resolution_rate": 0.35,
        "satisfaction_rate": 0.35,
    }
    ranked = by_department(published["ranked"])
    assert [line["department"] for line in published["ranked"]] == ["hd.urban", "hd.transport"]
    assert (ranked["hd.urban"]["score"], ranked["hd.urban"]["rank"]) == (100.0, 1)
    # 响应率 1/2 alone (no callback reached a citizen): 50; street rating 满意 = 100;
    # 0.7 × 50 + 0.3 × 100 = 65.
    transport_line = ranked["hd.transport"]
    assert transport_line["response_rate"] == 0.5 and transport_line["resolution_rate"] is None
    assert (transport_line["three_rates_score"], transport_line["street_rating"]) == (50.0, 100.0)
    assert (transport_line["score"], transport_line["ratings"]) == (65.0, 1)
    apart = by_department(published["below_minimum"])
    assert apart["hd.enforcement"]["dispatched"] == 1 and apart["hd.enforcement"]["rank"] is None
    assert "hd.enforcement" not in ranked

    # A correction later: the live ranking changes, the published one (its as_of) does not.
    app.rate_summoned(
        street_case, STREET, assignment_id=summoned, rating="unsatisfied", reason="未到场"
    )
    live = by_department((await ranking(api, level="bureau"))["ranked"])
    assert (live["hd.transport"]["street_rating"], live["hd.transport"]["score"]) == (0.0, 35.0)
    again = await ranking(api, level="bureau", as_of=published["as_of"])
    assert again["ranked"] == published["ranked"]


async def test_streets_are_ranked_without_ratings_and_names_are_localised(
    api: ApiHarness,
) -> None:
    for _ in range(2):
        _, aid = dispatched(api, "SF02")  # lead: the street office of 学院路
        api.app.sign_for(aid, STREET)
    zh = await ranking(api, level="street")
    (line,) = zh["ranked"]
    assert line["department"] == "st.xueyuanlu" and line["street_rating"] is None
    assert zh["street_rating_weight"] == 0.0 and line["score"] == 100.0
    assert "学院路" in line["name"]
    en = await ranking(api, level="street", lang="en")
    assert en["ranked"][0]["name"] != line["name"]
    r = await api.get("/v1/rankings", "supervisor", params={"period": "2026-13"})
    assert r.status_code == 422
    # A department sees its own line only, among its own level whatever it asks for.
    r = await api.get(
        "/v1/rankings", "department", "hd.urban", params={"period": "2026-11", "level": "street"}
    )
    assert r.status_code == 200, r.text
    own = r.json()
    assert own["level"] == "bureau" and own["ranked"] == []
    assert [line["department"] for line in own["below_minimum"]] == ["hd.urban"]
    r = await api.get("/v1/rankings", "department", "st.xueyuanlu", params={"period": "2026-11"})
    assert [line["rank"] for line in r.json()["ranked"]] == [1]
    r = await api.get("/v1/rankings", "department", "cm.xyl-01", params={"period": "2026-11"})
    assert r.json()["ranked"] == r.json()["below_minimum"] == []


async def test_a_published_quarterly_round_joins_the_street_rating(api: ApiHarness) -> None:
    app = api.app
    transport = [dispatched(api, "TR04") for _ in range(2)]
    app.sign_for(transport[0][1], department("hd.transport"))  # 响应率 1/2: 50
    street_case, _ = dispatched(api, "SF02")
    (summoned,) = app.summon_departments(
        street_case, STREET, departments=["hd.transport"], reason="联合处置"
    ).extra["assignments"]
    app.report_in(summoned, department("hd.transport"))
    app.rate_summoned(street_case, STREET, assignment_id=summoned, rating="satisfied")  # 100
    before = await ranking(api, level="bureau")
    opened = app.handle_round(
        OpenRound(
            actor=SUPERVISOR,
            quarter="2026-Q4",
            deadline=datetime(2027, 1, 15, tzinfo=UTC),
            raters={"st.xueyuanlu": ["hd.transport"]},
        )
    )
    app.handle_round(
        ScoreDepartment(
            actor=STREET,
            round_id=opened.round_id,
            department="hd.transport",
            scores={"responsiveness": 90, "cooperation": 70, "effectiveness": 80},
        )
    )
    for action in (Action.CLOSE_ROUND, Action.PUBLISH_ROUND):
        app.handle_round(RoundStep(actor=SUPERVISOR, round_id=opened.round_id, action=action))
    line = by_department((await ranking(api, level="bureau"))["ranked"])["hd.transport"]
    # Street rating: half the summons ratings (100), half the round (80): 90;
    # score: 0.7 × 50 + 0.3 × 90 = 62.
    assert (line["round_score"], line["street_rating"], line["score"]) == (80.0, 90.0, 62.0)
    earlier = await ranking(api, level="bureau", as_of=before["as_of"])
    assert by_department(earlier["ranked"])["hd.transport"]["round_score"] is None
    assert earlier["ranked"] == before["ranked"]
