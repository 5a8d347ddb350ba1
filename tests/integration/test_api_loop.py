"""The whole loop through HTTP, on SQLite and on PostgreSQL: intake → classify → dispatch →
sign for → resolve → unsatisfied feedback → reopened → resolve → satisfied → closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock, backend_env
from tests.support.api import ApiHarness, api_harness, grievance_body

LEAD = "cm.xyl-01"


async def step(
    api: ApiHarness,
    path: str,
    role: str,
    body: dict[str, Any] | None,
    *,
    status: str,
    version: int,
    department: str | None = None,
    code: int = 200,
    based_on: int | None = None,
) -> dict[str, Any]:
    """One command, sent with If-Match on the version it builds on."""
    base = version - 1 if based_on is None else based_on
    r = await api.post(path, role, body, department, **{"If-Match": str(base)})
    assert r.status_code == code, r.text
    answer: dict[str, Any] = r.json()
    assert answer["status"] == status, answer
    assert answer["version"] == version, answer
    assert r.headers["etag"] == f'"{version}"'
    return answer


async def run_loop(api: ApiHarness) -> None:
    r = await api.post(
        "/v1/grievances", "operator", grievance_body(), **{"Idempotency-Key": "loop-intake"}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "received" and created["version"] == 1
    gid = created["id"]
    g = f"/v1/grievances/{gid}"

    await step(
        api, f"{g}/classify", "operator", {"category": "PM03"}, status="classified", version=2
    )
    dispatched = await step(api, f"{g}/dispatch", "operator", None, status="dispatched", version=3)
    first = dispatched["assignments"][0]
    await step(
        api,
        f"/v1/assignments/{first}/sign-for",
        "department",
        None,
        status="in_progress",
        version=4,
        department=LEAD,
    )
    await step(
        api,
        f"/v1/assignments/{first}/resolve",
        "department",
        {"account": "已修复单元门禁"},
        status="resolved",
        version=5,
        department=LEAD,
    )
    api.catch_up()
    queue = (await api.get("/v1/callbacks", "operator")).json()["items"]
    assert [i["grievance_id"] for i in queue] == [gid]
    assert queue[0]["citizen_phone"] == "13812345678"

    # unsatisfied: FeedbackRecorded + Reopened in one command
    await step(
        api,
        f"{g}/feedback",
        "operator",
        {
            "contacted": True,
            "resolved": False,
            "satisfaction": "unsatisfied",
            "comment": "门禁仍坏",
        },
        status="dispatched",
        version=7,
        based_on=5,
    )
    reopened = (await api.get(g, "operator")).json()
    assert reopened["reopen_count"] == 1
    second = next(
        a["id"] for a in reopened["assignments"] if a["round"] == 1 and a["role"] == "lead"
    )
    assert second != first and second.startswith(gid)
    assert next(a for a in reopened["assignments"] if a["id"] == second)["department"] == LEAD

    await step(
        api,
        f"/v1/assignments/{second}/sign-for",
        "department",
        {},
        status="in_progress",
        version=8,
        department=LEAD,
    )
    await step(
        api,
        f"/v1/assignments/{second}/resolve",
        "department",
        {"account": "更换门禁控制器"},
        status="resolved",
        version=9,
        department=LEAD,
    )
    # satisfied: FeedbackRecorded + Closed
    await step(
        api,
        f"{g}/feedback",
        "operator",
        {"contacted": True, "resolved": True, "satisfaction": "satisfied"},
        status="closed",
        version=11,
        based_on=9,
    )
    final = (await api.get(g, "supervisor")).json()
    assert final["status"] == "closed" and final["outcome"] == "satisfied"
    assert final["allowed_actions"] == [] and final["open_deadlines"] == []

    audit = (await api.get(f"/v1/audit/grievances/{gid}/events", "supervisor")).json()
    assert [e["type"] for e in audit["events"]] == [
        "Received",
        "Classified",
        "Dispatched",
        "SignedFor",
        "Resolved",
        "FeedbackRecorded",
        "Reopened",
        "SignedFor",
        "Resolved",
        "FeedbackRecorded",
        "Closed",
    ]
    assert [e["version"] for e in audit["events"]] == list(range(1, 12))
    roles = [e["role"] for e in audit["events"]]
    assert (
        roles
        == ["operator"] * 3
        + ["department"] * 2
        + ["operator"] * 2
        + ["department"] * 2
        + ["operator"] * 2
    )
    assert audit["events"][0]["data"]["citizen_phone"] == "138****5678"

    before_reopen = (
        await api.get(f"/v1/audit/grievances/{gid}/state", "supervisor", params={"version": 5})
    ).json()
    assert before_reopen["grievance"]["status"] == "resolved"

    # the replayed intake changes nothing
    again = await api.post(
        "/v1/grievances", "operator", grievance_body(), **{"Idempotency-Key": "loop-intake"}
    )
    assert again.status_code == 201 and again.json() == created

    api.catch_up()
    listed = (await api.get("/v1/grievances", "supervisor", params={"status": "closed"})).json()
    assert [i["id"] for i in listed["items"]] == [gid]
    assert (await api.get("/v1/callbacks", "operator")).json()["items"] == []
    kpis = (await api.get("/v1/kpis", "supervisor", params={"department": LEAD})).json()
    assert kpis["items"] and kpis["items"][0]["department"] == LEAD


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_whole_loop_through_http(
    backend: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    env = backend_env(backend, tmp_path, request)
    async with api_harness(env, tmp_path, clock) as api:
        await run_loop(api)
        if backend == "postgres":
            tables = {
                row[0]
                for row in api.services.tokens.db.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                    (env["POSTGRES_SCHEMA"],),
                )
            }
            assert {"api_tokens", "api_idempotency"} <= tables
