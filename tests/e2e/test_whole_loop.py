"""The whole loop against real processes: Temporal dev server, worker, relay, projector
and the API on a real port, started by the same supervisor as ``closeloop up``, with the
``drill`` SLA profile (deadlines in seconds) so urges and escalations fire by themselves.

Then a crash drill: the worker and the relay are SIGKILLed mid-flight and restarted;
nothing may be lost or applied twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack, running_stack, wait_for

pytestmark = [pytest.mark.temporal]

STREET = "st.xueyuanlu"
COMMUNITY = "cm.xyl-01"

GRIEVANCE = {
    "channel": "hotline",
    "citizen_name": "张秀英",
    "citizen_phone": "13812345678",
    "text": "石油大院3号楼楼道灯坏了两周，晚上老人上下楼很危险，请尽快维修。",
    "location": {
        "district": "haidian",
        "street": "xueyuanlu",
        "community": "xyl-01",
        "grid": "xyl-01-g1",
        "address": "石油大院3号楼2单元",
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir: Path = tmp_path_factory.mktemp("e2e-var")
    with running_stack(var_dir, "drill") as running:
        yield running


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    data: dict[str, Any] = response.json()
    return data


def file_and_dispatch(stack: Stack, lead: str = STREET, text: str | None = None) -> str:
    body = dict(GRIEVANCE, text=text or GRIEVANCE["text"])
    gid = str(ok(stack.post("/v1/grievances", "operator", body), 201)["id"])
    ok(stack.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"}))
    ok(stack.post(f"/v1/grievances/{gid}/dispatch", "operator", {"lead": lead, "assisting": []}))
    return gid


def lead_assignment(stack: Stack, gid: str) -> dict[str, Any]:
    state = stack.grievance(gid)
    current = [a for a in state["assignments"] if a["role"] == "lead" and a["allowed_actions"]]
    assert current, state
    return current[-1]


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def has_events(stack: Stack, gid: str, *types: str) -> list[dict[str, Any]] | None:
    events = stack.audit(gid)
    names = event_types(events)
    return events if all(t in names for t in types) else None


def sign_for_and_resolve(stack: Stack, gid: str, department: str = STREET) -> None:
    aid = lead_assignment(stack, gid)["id"]
    ok(stack.post(f"/v1/assignments/{aid}/sign-for", department))
    ok(
        stack.post(
            f"/v1/assignments/{aid}/resolve",
            department,
            {"account": "已更换楼道灯具，物业每周巡查。"},
        )
    )


def assert_applied_once(events: list[dict[str, Any]]) -> None:
    """No command applied twice, no version twice, and no deadline action taken twice.

    One command may record several events (feedback → FeedbackRecorded + Reopened), so
    a command id may repeat only within one run of consecutive versions.
    """
    runs = [
        e["command_id"]
        for i, e in enumerate(events)
        if i == 0 or e["command_id"] != events[i - 1]["command_id"]
    ]
    assert [c for c, n in Counter(runs).items() if n > 1] == [], runs
    versions = [e["version"] for e in events]
    assert versions == list(range(1, len(events) + 1))
    ladder = [
        (e["type"], e["data"].get("kind"), e["data"].get("assignment_id"), e["data"].get("level"))
        for e in events
        if e["type"] in ("Urged", "Escalated")
    ]
    assert [k for k, n in Counter(ladder).items() if n > 1] == [], ladder


def test_one_grievance_through_the_whole_loop(stack: Stack) -> None:
    gid = file_and_dispatch(stack)
    state = stack.grievance(gid)
    assert state["status"] == "dispatched"
    assert state["lead_department"] == STREET
    assert {d["kind"] for d in state["open_deadlines"]} == {"sign_for", "resolve"}

    # Nobody signs for: the workflow urges at half the window, then escalates (督办) at
    # the deadline, by itself, through the relay and the worker.
    events = wait_for(
        lambda: has_events(stack, gid, "Urged", "Escalated"),
        timeout=30,
        what="the workflow to urge and escalate",
        on_timeout=lambda: stack.logs("worker") + stack.logs("relay"),
    )
    urged = next(e for e in events if e["type"] == "Urged")
    escalated = next(e for e in events if e["type"] == "Escalated")
    assert urged["role"] == escalated["role"] == "system"
    assert urged["data"]["kind"] == "sign_for"
    assert escalated["data"]["level"] == 1
    assert urged["at"] < escalated["at"]
    assert stack.grievance(gid)["escalation_level"] >= 1

    # The department signs for and resolves; the citizen is not satisfied: 重办.
    sign_for_and_resolve(stack, gid)
    assert stack.grievance(gid)["status"] == "resolved"
    answer = ok(
        stack.post(
            f"/v1/grievances/{gid}/feedback",
            "operator",
            {"contacted": True, "resolved": False, "satisfaction": "unsatisfied"},
        )
    )
    assert answer["status"] == "dispatched"
    reopened = stack.grievance(gid)
    assert reopened["reopen_count"] == 1

    # Second round: done in time, satisfied, closed.
    sign_for_and_resolve(stack, gid)
    closed = ok(
        stack.post(
            f"/v1/grievances/{gid}/feedback",
            "operator",
            {"contacted": True, "resolved": True, "satisfaction": "satisfied", "comment": "满意"},
        )
    )
    assert closed["status"] == "closed"
    final = stack.grievance(gid)
    assert final["status"] == "closed"
    assert final["outcome"] == "satisfied"
    assert final["open_deadlines"] == []

    # The audit history, from the event store.
    events = stack.audit(gid)
    names = event_types(events)
    for expected in (
        "Received",
        "Classified",
        "Dispatched",
        "Urged",
        "Escalated",
        "SignedFor",
        "Resolved",
        "FeedbackRecorded",
        "Reopened",
        "Closed",
    ):
        assert expected in names, names
    assert names[:3] == ["Received", "Classified", "Dispatched"]
    assert names[-1] == "Closed"
    assert names.count("Resolved") == 2
    assert_applied_once(events)
    # As of the third version it was freshly dispatched; as of an instant too.
    then = ok(stack.get(f"/v1/audit/grievances/{gid}/state", "supervisor", version=3))
    assert then["grievance"]["status"] == "dispatched"
    dispatched_at = events[2]["timestamp"]
    then = ok(stack.get(f"/v1/audit/grievances/{gid}/state", "supervisor", as_of=dispatched_at))
    assert then["version"] == 3

    # The dashboard's data: lists and 三率 from the projections, once they caught up.
    def listed() -> dict[str, Any] | None:
        page = ok(stack.get("/v1/grievances", status="closed"))
        return next((i for i in page["items"] if str(i["id"]) == gid), None)

    row = wait_for(listed, timeout=15, what="the closed grievance in the read model")
    assert row["status"] == "closed"

    def street_kpis() -> dict[str, Any] | None:
        items = ok(stack.get("/v1/kpis", "supervisor", department=STREET))["items"]
        return next((i for i in items if i["department"] == STREET and i["resolved"] >= 2), None)

    kpi = wait_for(street_kpis, timeout=15, what="三率 for the street office")
    assert kpi["dispatched"] >= 2
    assert kpi["escalated"] >= 1
    assert kpi["unsatisfied"] >= 1 and kpi["satisfied"] >= 1

    # The dashboard page and its data endpoints (hotspots, weekly 三率 trend).
    page = stack.client.get("/dashboard")
    assert page.status_code == 200 and "<html" in page.text.lower()
    spots = ok(stack.get("/dashboard/data/hotspots", "supervisor"))["items"]
    spot = next(i for i in spots if i["category"] == "PM03" and i["community"] == "xyl-01")
    assert spot["grievances"] >= 1
    trend = ok(stack.get("/dashboard/data/trend", "supervisor", department=STREET))["items"]
    assert trend and trend[-1]["satisfaction_rate"] is not None
    ready = ok(stack.get("/readyz"))
    assert ready["ready"] is True


def test_worker_and_relay_killed_mid_flight_lose_nothing(stack: Stack) -> None:
    sup = stack.supervisor
    # Grievances nobody will sign for (their ladder must fire exactly once), and three
    # that will be worked on while the worker and relay are dead.
    idle = [file_and_dispatch(stack, text=f"第{i}次来电：楼道灯不亮。") for i in range(3)]
    worked = [file_and_dispatch(stack, text=f"第{i}次来电：门禁损坏。") for i in range(3)]
    # Mid-flight: the relay has seen some of it, the workflows hold timers.
    wait_for(
        lambda: all(has_events(stack, gid, "Urged") for gid in idle[:1]),
        timeout=20,
        what="the first urge before the crash",
    )
    # And a burst the relay has most likely not delivered yet when the crash comes.
    idle += [file_and_dispatch(stack, text=f"第{i}次来电：井盖缺失。") for i in range(3)]
    sup.kill("worker")
    sup.kill("relay")

    # Commands are still accepted while the orchestration is down.
    for gid in worked:
        sign_for_and_resolve(stack, gid)
    for gid in worked[:2]:
        ok(
            stack.post(
                f"/v1/grievances/{gid}/feedback",
                "operator",
                {"contacted": True, "resolved": True, "satisfaction": "satisfied"},
            )
        )
    assert stack.grievance(worked[0])["status"] == "closed"

    sup.restart("relay")
    sup.restart("worker")

    # Each idle grievance gets its urge and its escalation, once; the resolved one with no
    # feedback is closed by its feedback timer (no response), once.
    for gid in idle:
        wait_for(
            lambda gid=gid: has_events(stack, gid, "Urged", "Escalated"),
            timeout=30,
            what=f"the ladder of {gid} after the restart",
            on_timeout=lambda: stack.logs("worker") + stack.logs("relay"),
        )
    wait_for(
        lambda: stack.grievance(worked[2])["status"] == "closed",
        timeout=30,
        what="the feedback window to close the unanswered grievance",
        on_timeout=lambda: stack.logs("worker"),
    )
    assert stack.grievance(worked[2])["outcome"] == "no_response"

    for gid in idle + worked:
        events = stack.audit(gid)
        assert_applied_once(events)
        assert event_types(events).count("Closed") <= 1
        assert event_types(events).count("Dispatched") == 1
    for gid in idle:
        assert stack.grievance(gid)["status"] == "dispatched"
    for gid in worked:
        assert stack.grievance(gid)["status"] == "closed"

    # The relay caught up: its position reached the log's end, and the read models too.
    def caught_up() -> bool:
        ready = stack.get("/readyz").json()
        return bool(ready["ready"]) and ready["checks"]["projections"]["lag"] == 0

    wait_for(caught_up, timeout=15, what="projections to catch up")
    listed = {str(i["id"]) for i in ok(stack.get("/v1/grievances", limit=200))["items"]}
    assert set(idle + worked) <= listed


def test_the_whole_stack_stops_and_resumes_where_it_was(stack: Stack) -> None:
    """Like Ctrl-C and ``closeloop up`` again: Temporal state and the event store are in
    the var directory, so grievances are all there and timers still fire."""
    sup = stack.supervisor
    before = ok(stack.get("/v1/grievances", limit=200))["items"]
    gid = file_and_dispatch(stack, text="重启前受理：电梯停运。")
    # The workflow holds its timers (it has urged); stop before the deadline passes.
    wait_for(lambda: has_events(stack, gid, "Urged"), timeout=20, what="the urge")
    assert not has_events(stack, gid, "Escalated")
    specs = [child.spec for child in sup.children.values()]
    codes = sup.stop_all(timeout=10)
    assert all(code is not None for code in codes.values()), codes

    for spec in specs:
        sup.start(spec)
    # The sign-for deadline passed while everything was down: the timer fires on resume,
    # from Temporal's own persisted state (the relay already delivered that envelope).
    events = wait_for(
        lambda: has_events(stack, gid, "Escalated"),
        timeout=30,
        what="the escalation after the restart",
        on_timeout=lambda: stack.logs("worker") + stack.logs("temporal"),
    )
    assert_applied_once(events)
    after = {str(i["id"]) for i in ok(stack.get("/v1/grievances", limit=200))["items"]}
    assert {str(i["id"]) for i in before} <= after
    assert gid in after or wait_for(
        lambda: gid in {str(i["id"]) for i in ok(stack.get("/v1/grievances", limit=200))["items"]},
        timeout=15,
        what="the new grievance in the read model",
    )
