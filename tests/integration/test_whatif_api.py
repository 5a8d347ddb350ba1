"""POST /v1/what-if on SQLite and PostgreSQL: the hand-computed period of
``tests/unit/test_whatif.py`` through HTTP, side by side, in Chinese and English, and
nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock, backend_env
from tests.support.api import ApiHarness, api_harness
from tests.unit.test_whatif import ENF, MONDAY_0900, PROPOSAL, hand_period

BODY = {"date_from": "2026-11-23", "date_to": "2026-11-23", "sla": PROPOSAL}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    env = backend_env(request.param, tmp_path, request)
    async with api_harness(env, tmp_path, FakeClock(MONDAY_0900)) as harness:
        yield harness


def tally(item: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("met", "missed", "pending", "dispatched", "signed_for_in_time", "response_rate")
    return tuple(item[k] for k in keys)


async def test_the_hand_computed_period_side_by_side(api: ApiHarness) -> None:
    hand_period(api.app, api.clock)
    written = api.app.recorder.max_notification_id()
    r = await api.post("/v1/what-if", "supervisor", BODY)
    assert r.status_code == 200, r.text
    answer = r.json()
    rows = {i["department"]: i for i in answer["items"]}
    assert list(rows) == [ENF, "hd.fire", "hd.market"]
    assert tally(rows[ENF]["now"]) == (4, 1, 1, 3, 2, 0.6667)
    assert tally(rows[ENF]["proposed"]) == (2, 4, 0, 3, 1, 0.3333)
    assert tally(rows["hd.fire"]["now"]) == tally(rows["hd.fire"]["proposed"])
    assert tally(answer["total"]["now"])[:5] == (7, 2, 1, 5, 3)
    assert answer["sla_profile"] == "standard"
    assert rows[ENF]["name"] and rows[ENF]["name"] != ENF
    assert api.app.recorder.max_notification_id() == written

    english = (await api.post("/v1/what-if?lang=en", "supervisor", BODY)).json()
    assert english["items"][0]["name"] != rows[ENF]["name"]
    same = await api.post("/v1/what-if", "supervisor", {**BODY, "sla": None})
    assert all(tally(i["now"]) == tally(i["proposed"]) for i in same.json()["items"])
    rules = [{"category": "UM", "street": "xueyuanlu", "lead": "street"}]
    routed = await api.post("/v1/what-if", "supervisor", {**BODY, "routing": {"rules": rules}})
    assert routed.status_code == 200, routed.text
    moved = routed.json()["routing"]
    assert (moved["by_rules"], moved["moved"], moved["by_operator"]) == (4, 3, 0)
    leads = {i["department"]: (i["now"], i["proposed"]) for i in moved["items"]}
    assert leads == {ENF: (3, 0), "hd.market": (1, 1), "st.xueyuanlu": (0, 3)}
    assert answer.get("routing") is None
    demo = await api.post("/v1/what-if", "supervisor", {**BODY, "sla_profile": "demo", "sla": {}})
    assert demo.status_code == 200 and demo.json()["sla_profile"] == "demo"
    # The demo profile's minutes-long windows: every UM04 deadline of the day is missed.
    assert tally({**demo.json()["items"][0]["proposed"]})[:3] == (0, 6, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "sla": {"classes": {"B": {"sign_for": {"weeks": 1}}}}}, "weeks"),
        ({**BODY, "sla": {"classes": {"B": {"sign_for": {"hours": 1, "minutes": 5}}}}}, "sign_for"),
        ({**BODY, "sla": {"classes": {"B": {"sign_for": {"working_days": 400}}}}}, "sign_for"),
        ({**BODY, "sla_profile": "nope"}, "sla_profile"),
        ({**BODY, "date_from": "2026-11-24"}, "date_from"),
        ({**BODY, "sla": {"classes": {"Z": {"sign_for": {"hours": 1}}}}}, "resolve"),
        ({**BODY, "calendar": {"working_hours": [{"start": "18:00", "end": "09:00"}]}}, "calendar"),
        ({**BODY, "calendar": {"timezone": "UTC"}}, "timezone"),
        ({**BODY, "routing": {"rules": [{"category": "UM", "lead": "hd.nowhere"}]}}, "routing"),
        ({**BODY, "routing": {"rules": [{"category": "XX", "lead": "street"}]}}, "routing"),
        ({**BODY, "calendar": {"weekend": [0, 1, 2, 3, 4, 5, 6]}}, "weekend"),
        ({**BODY, "calendar": {"weekend": [5, 5]}}, "weekend"),
        (  # working hours are local times: an offset was a 500 (TypeError), now a 422
            {**BODY, "calendar": {"working_hours": [{"start": "09:00+08:00", "end": "17:00"}]}},
            "working_hours",
        ),
    ],
)
async def test_bad_proposals_are_422_naming_the_field(
    api: ApiHarness, body: dict[str, Any], field: str
) -> None:
    r = await api.post("/v1/what-if", "supervisor", body)
    assert r.status_code == 422, r.text
    problem = r.json()
    named = [problem.get("field")] + [str(e) for e in problem.get("errors", [])]
    assert any(field in str(n) for n in named), problem


async def test_only_supervisors_may_ask(api: ApiHarness) -> None:
    r = await api.post("/v1/what-if", "operator", BODY)
    assert r.status_code == 403
