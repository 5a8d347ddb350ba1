"""Audit over HTTP (issue 6): history, case file, state as of five instants, who was late,
tamper evidence on SQLite and PostgreSQL, 三率 as of a past instant, and the case file's
workflow section against the real Temporal dev server."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.encoders import jsonable_encoder

from api.views import grievance_public
from closeloop.settings import Settings
from closeloop.temporal import LazyClient
from domain.integrity import chain_digest, event_data
from tests.conftest import OPERATOR, FakeClock, backend_env, department
from tests.support.api import ApiHarness, api_harness, sqlite_env
from tests.support.audit import Story, event_types, tamper_postgres, tamper_sqlite, walk_story
from tests.support.domain import dispatched_case, resolved_case, work_through
from workflows.history import history_reader

STORY_TYPES = [
    "Received",
    "Classified",
    "Dispatched",
    "Returned",
    "Arbitrated",
    "Urged",
    "Escalated",
    "SignedFor",
    "ExtensionRequested",
    "ExtensionGranted",
    "Resolved",
    "FeedbackRecorded",
    "Reopened",
    "SignedFor",
    "Resolved",
    "FeedbackRecorded",
    "Closed",
]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with api_harness(sqlite_env(tmp_path), tmp_path, FakeClock()) as harness:
        yield harness


@pytest.fixture
async def story(api: ApiHarness) -> Story:
    return walk_story(api.app, api.clock)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


# ------------------------------------------------------------------- history


async def test_history_lists_every_event_with_its_chain_and_masks_for_supervisors(
    api: ApiHarness, story: Story
) -> None:
    path = f"/v1/audit/grievances/{story.id}/events"
    events = (await api.get(path, "supervisor")).json()["events"]
    assert event_types(events) == STORY_TYPES
    assert [e["version"] for e in events] == list(range(1, len(STORY_TYPES) + 1))
    previous = "0" * 64
    for stored, shown in zip(api.app.history(story.id), events, strict=True):
        # the hash the API shows is the one that chains the stored event to the previous
        assert shown["chain_hash"] == chain_digest(
            previous,
            shown["type"],
            shown["version"],
            stored.timestamp,
            event_data(vars(stored)),
        )
        assert "chain_hash" not in shown["data"]
        previous = shown["chain_hash"]
    escalated = events[STORY_TYPES.index("Escalated")]
    assert escalated["principal"] == "closeloop-workflow" or escalated["role"] == "system"
    assert escalated["data"]["level"] == 1 and escalated["data"]["department"] == "hd.housing"
    assert escalated["at"] == (story.sign_for_due + timedelta(minutes=1)).isoformat().replace(
        "+00:00", "Z"
    )
    assert escalated["reason"] == "逾期未签收"
    received = events[0]["data"]
    assert received["citizen_phone"] == "138****5678" and received["citizen_name"] == "张**"

    as_operator = (await api.get(path, "operator")).json()["events"][0]["data"]
    assert as_operator["citizen_phone"] == "13812345678"
    assert (await api.get(path, "department", "hd.housing")).status_code == 403


async def test_case_file_tells_the_story_in_chinese_and_english(
    api: ApiHarness, story: Story
) -> None:
    path = f"/v1/audit/grievances/{story.id}/casefile"
    response = await api.get(path, "supervisor")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    number = story.case.g.number
    assert f"诉求案卷 {number}" in page and 'lang="zh-CN"' in page
    assert "@media print" in page and not re.search(r"""(src|href)=["']?https?:""", page)
    assert "13812345678" not in page and "张秀英" not in page and "138****5678" in page
    assert "哈希链完整" in page

    deadlines = section(page, "deadlines")
    # the late sign-for: who, by how long, and what followed
    late_row = row_with(deadlines, "签收时限", "hd.housing", "逾期完成")
    assert "45m" in late_row and "催办" in late_row and "一级：街道领导" in late_row
    assert "已退单" in row_with(deadlines, "签收时限", "st.xueyuanlu")
    resolve_row = row_with(deadlines, "办结时限", "hd.housing", "同意延期")
    assert local(story.resolve_due) in resolve_row  # the original due date, before the extension
    assert deadlines.count("回访时限") == 2

    urges = section(page, "urges")
    assert "催办" in urges and "督办" in urges and "一级：街道领导" in urges
    assert urges.count("hd.housing") == 2 and "逾期未签收" in urges
    extensions = section(page, "extensions")
    assert "延期申请" in extensions and "同意延期" in extensions and "需业主表决" in extensions
    feedback = section(page, "feedback")
    assert "不满意" in feedback and "楼道仍有电动车充电" in feedback and "满意" in feedback
    timeline = section(page, "timeline")
    for label in ("受理", "派单", "退单", "仲裁", "签收", "办结", "回访", "重办", "归档"):
        assert label in timeline, label
    workflow = section(page, "workflow")
    assert f"grievance-{story.id}" in workflow and "未配置 Temporal" in workflow

    english = (await api.get(path, "operator", params={"lang": "en"})).text
    assert f"Grievance case file {number}" in english and 'lang="en"' in english
    assert "met late" in section(english, "deadlines")
    assert "level 1: street leader" in section(english, "urges")
    assert "13812345678" in english  # operators see the citizen's phone


async def test_case_file_says_so_when_temporal_is_unreachable(
    api: ApiHarness, story: Story
) -> None:
    async def down(workflow_id: str) -> list[dict[str, Any]] | None:
        raise ConnectionRefusedError("temporal is down")

    api.services.workflow_history = down
    page = (await api.get(f"/v1/audit/grievances/{story.id}/casefile", "supervisor")).text
    assert 'id="workflow-unavailable"' in page and "无法连接 Temporal" in page
    assert "逾期完成" in page  # the rest of the file is still there

    # the real reader, pointed at a port nobody listens on, fails the same way
    api.services.workflow_history = history_reader(
        LazyClient(Settings(temporal_address=f"127.0.0.1:{free_port()}")), timeout=2.0
    )
    response = await api.get(f"/v1/audit/grievances/{story.id}/casefile", "supervisor")
    assert response.status_code == 200 and "无法连接 Temporal" in response.text


async def test_unknown_grievance_is_404_everywhere(api: ApiHarness) -> None:
    gid = uuid4()
    for tail in ("events", "state", "lateness", "casefile"):
        problem(
            await api.get(f"/v1/audit/grievances/{gid}/{tail}", "supervisor"),
            404,
            "grievance-not-found",
        )
    problem(await api.get("/v1/audit/verify", "supervisor", params={"grievance": str(gid)}),
            404, "grievance-not-found")  # fmt: skip


# --------------------------------------------------------------- time travel


async def test_state_as_of_five_instants_equals_what_was_recorded_then(
    api: ApiHarness, story: Story
) -> None:
    assert len(story.moments) == 5
    path = f"/v1/audit/grievances/{story.id}/state"
    for moment, recorded in story.moments:
        body = (await api.get(path, "supervisor", params={"as_of": moment.isoformat()})).json()
        expected = grievance_public(recorded, unmasked=False, lang="zh")
        assert body["version"] == recorded.version
        assert body["grievance"] == jsonable_encoder(expected)
        by_version = (
            await api.get(path, "supervisor", params={"version": recorded.version})
        ).json()
        assert by_version["grievance"] == body["grievance"]
    statuses = [
        (await api.get(path, "supervisor", params={"as_of": m.isoformat()})).json()["grievance"][
            "status"
        ]
        for m, _ in story.moments
    ]
    assert statuses == ["dispatched", "returned", "dispatched", "resolved", "closed"]


async def test_open_and_overdue_deadlines_at_an_instant(api: ApiHarness, story: Story) -> None:
    path = f"/v1/audit/grievances/{story.id}/state"
    moment, _ = story.moments[2]  # just after the escalation, before the late sign-for
    body = (await api.get(path, "supervisor", params={"as_of": moment.isoformat()})).json()
    deadlines = {(d["kind"], d["assignment_id"]): d for d in body["deadlines"]}
    sign_for = deadlines[("sign_for", story.lead)]
    assert sign_for["overdue"] and 60 <= sign_for["overdue_by_seconds"] < 120
    assert sign_for["department"] == "hd.housing"
    assert not deadlines[("resolve", story.lead)]["overdue"]

    first = (await api.get(path, "supervisor", params={"version": 3})).json()
    assert [(d["kind"], d["overdue"]) for d in first["deadlines"]] == [
        ("sign_for", False),
        ("resolve", False),
    ]
    final = await api.get(path, "supervisor", params={"as_of": story.moments[4][0].isoformat()})
    assert final.json()["deadlines"] == []


async def test_bad_instants_and_versions_are_problems(api: ApiHarness, story: Story) -> None:
    path = f"/v1/audit/grievances/{story.id}/state"
    naive = await api.get(path, "supervisor", params={"as_of": "2026-11-23T09:30:00"})
    problem(naive, 422, "invalid-request")
    both = await api.get(path, "supervisor", params={"as_of": "2026-11-23T09:30:00Z", "version": 2})
    problem(both, 422, "invalid-request")
    too_far = await api.get(path, "supervisor", params={"version": len(STORY_TYPES) + 1})
    assert problem(too_far, 422, "invalid-request")["field"] == "version"
    problem(await api.get(path, "supervisor", params={"version": 0}), 422, "invalid-request")
    before = await api.get(path, "supervisor", params={"as_of": "2020-01-01T00:00:00+08:00"})
    problem(before, 404, "grievance-not-found")


# -------------------------------------------------------------- who was late


async def test_who_was_late_on_one_grievance_and_for_a_department(
    api: ApiHarness, story: Story
) -> None:
    body = (await api.get(f"/v1/audit/grievances/{story.id}/lateness", "supervisor")).json()
    records = {(r["kind"], r["assignment_id"]): r for r in body["deadlines"]}
    late = records[("sign_for", story.lead)]
    assert late["outcome"] == "met_late" and late["missed"]
    assert late["late_by_seconds"] == 45 * 60 and late["late_by"] == "45m"
    assert [(f["action"], f["level"]) for f in late["follow_ups"]] == [
        ("urged", None),
        ("escalated", 1),
    ]
    resolve = records[("resolve", story.lead)]
    assert [f["action"] for f in resolve["follow_ups"]] == [
        "extension_requested",
        "extension_granted",
    ]
    assert resolve["original_due"] is not None and not resolve["missed"]
    assert records[("sign_for", story.first)]["outcome"] == "returned"

    path = "/v1/audit/departments/hd.housing/lateness"
    period = {"from": "2026-11-01", "to": "2026-12-31"}
    housing = (await api.get(path, "supervisor", params=period)).json()
    assert [(r["kind"], r["assignment_id"], r["late_by"]) for r in housing["missed"]] == [
        ("sign_for", story.lead, "45m")
    ]
    later = {"from": "2027-01-01T00:00:00+08:00", "to": "2027-02-01T00:00:00+08:00"}
    assert (await api.get(path, "operator", params=later)).json()["missed"] == []
    street = "/v1/audit/departments/st.xueyuanlu/lateness"
    assert (await api.get(street, "supervisor", params=period)).json()["missed"] == []
    bad = await api.get(path, "supervisor", params={"from": "yesterday"})
    assert problem(bad, 422, "invalid-request")["field"] == "from"
    naive = await api.get(path, "supervisor", params={"to": "2026-12-01T00:00:00"})
    assert problem(naive, 422, "invalid-request")["field"] == "to"
    backwards = await api.get(path, "supervisor", params={"from": "2026-12-31", "to": "2026-11-01"})
    problem(backwards, 422, "invalid-request")
    unknown = await api.get("/v1/audit/departments/nope/lateness", "supervisor")
    assert problem(unknown, 422, "invalid-command")["field"] == "department"


# ----------------------------------------------------------- tamper evidence


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_verify_names_exactly_the_edited_event(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = backend_env(backend, tmp_path, request)
    async with api_harness(env, tmp_path, FakeClock()) as api:
        victim = resolved_case(api.app, "PM01")
        bystander = resolved_case(api.app, "SF02")
        dispatched_case(api.app, "PM02")
        clean = (await api.get("/v1/audit/verify", "supervisor")).json()
        assert clean == {
            "intact": True,
            "grievances_checked": 3,
            "broken": [],
            "objects_checked": 0,
            "bad_objects": [],
        }

        version = next(
            e.originator_version
            for e in api.app.history(victim.id)
            if type(e).__name__ == "Resolved"
        )
        stored_hash = api.app.history(victim.id)[version - 1].chain_hash
        if backend == "sqlite":
            tamper_sqlite(env["SQLITE_DBNAME"], victim.id, version, "已现场处理", "未处理")
        else:
            tamper_postgres(env["POSTGRES_SCHEMA"], victim.id, version, "已现场处理", "未处理")

        report = (await api.get("/v1/audit/verify", "operator")).json()
        assert report["intact"] is False and report["grievances_checked"] == 3
        [link] = report["broken"]
        assert (link["grievance_id"], link["version"], link["event_type"]) == (
            str(victim.id),
            version,
            "Resolved",
        )
        assert link["found"] == stored_hash and link["expected"] != stored_hash
        assert re.fullmatch(r"[0-9a-f]{64}", link["expected"])

        one = (
            await api.get("/v1/audit/verify", "supervisor", params={"grievance": str(victim.id)})
        ).json()
        assert one["intact"] is False and one["broken"] == [link]
        other = (
            await api.get("/v1/audit/verify", "supervisor", params={"grievance": str(bystander.id)})
        ).json()
        assert other == {
            "intact": True,
            "grievances_checked": 1,
            "broken": [],
            "objects_checked": 0,
            "bad_objects": [],
        }
        page = (await api.get(f"/v1/audit/grievances/{victim.id}/casefile", "supervisor")).text
        assert "哈希链断裂" in page and f"v{version} Resolved" in page


async def test_an_event_that_no_longer_decodes_is_named_by_verify(api: ApiHarness) -> None:
    victim = resolved_case(api.app, "PM01")
    path = api.env["SQLITE_DBNAME"]
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=3",
            (b'{"not json', victim.id.hex),
        )
    report = (await api.get("/v1/audit/verify", "supervisor")).json()
    [link] = report["broken"]
    assert (link["grievance_id"], link["version"], link["event_type"]) == (
        str(victim.id),
        3,
        "Dispatched",
    )
    assert link["reason"] == "undecodable"
    one = await api.get("/v1/audit/verify", "supervisor", params={"grievance": str(victim.id)})
    assert one.json()["broken"] == [link]
    events = await api.get(f"/v1/audit/grievances/{victim.id}/events", "supervisor")
    assert "/v1/audit/verify" in problem(events, 500, "internal-error")["detail"]


# ------------------------------------------------------------------- 三率 as of


async def test_kpis_as_of_a_date_equal_the_live_projection_for_a_closed_period(
    api: ApiHarness,
) -> None:
    clock, app = api.clock, api.app
    clock.now = datetime(2026, 11, 9, 1, 30, tzinfo=UTC)
    done = dispatched_case(app, "PM01")
    work_through(done)
    app.record_feedback(done.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    late = dispatched_case(app, "PM01")  # signed for only in December
    clock.advance(days=3)
    unhappy = dispatched_case(app, "SF02")
    work_through(unhappy)
    app.record_feedback(
        unhappy.id, OPERATOR, contacted=True, resolved=False, satisfaction="unsatisfied"
    )
    api.catch_up()
    november = {"date_from": "2026-11-01", "date_to": "2026-11-30"}
    published = (await api.get("/v1/kpis", "supervisor", params=november)).json()
    assert published["items"] and published["as_of"] is None
    cut = datetime.now(UTC)

    as_of_cut = (
        await api.get("/v1/kpis", "supervisor", params={**november, "as_of": cut.isoformat()})
    ).json()
    assert as_of_cut["as_of"] is not None
    assert as_of_cut["items"] == published["items"]
    street = next(i for i in as_of_cut["items"] if i["department"] == "st.xueyuanlu")
    # three dispatches and the reopening's re-dispatch; two signed for in time
    assert (street["dispatched"], street["signed_for_in_time"]) == (4, 2)
    assert street["response_rate"] == 0.5 and street["satisfaction_rate"] == 0.5

    # December: the late sign-for counts on November's dispatch day, and a new grievance
    clock.now = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    lead = late.aid()
    app.sign_for(lead, department(late.g.assignment(lead).department))
    dispatched_case(app, "PM01")
    api.catch_up()
    live_now = (await api.get("/v1/kpis", "supervisor", params=november)).json()
    assert live_now["items"] != published["items"]  # November's figure moved since
    still = (
        await api.get("/v1/kpis", "supervisor", params={**november, "as_of": cut.isoformat()})
    ).json()
    assert still["items"] == published["items"]
    replayed_now = (
        await api.get(
            "/v1/kpis",
            "supervisor",
            params={**november, "as_of": datetime.now(UTC).isoformat()},
        )
    ).json()
    assert replayed_now["items"] == live_now["items"]
    naive = await api.get("/v1/kpis", "supervisor", params={**november, "as_of": "2026-12-01"})
    problem(naive, 422, "invalid-request")


# ------------------------------------------------------------------ helpers


def section(page: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert match, key
    return match.group(1)


def row_with(html: str, *needles: str) -> str:
    rows = re.findall(r"<tr[^>]*>.*?</tr>", html, re.S)
    found = [r for r in rows if all(n in r for n in needles)]
    assert found, needles
    return found[0]


def local(moment: datetime) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------- workflow history link


class WallClock(FakeClock):
    """The real clock: the workflow's timers run on the dev server's wall time."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@pytest.mark.temporal
async def test_case_file_shows_the_timers_and_activities_of_a_real_run(tmp_path: Path) -> None:
    from tests.support.workflows import DevServer, eventually
    from tests.support.workflows import sqlite_env as drill_env
    from workflows.relay import Relay, tracking_recorder
    from workflows.worker import running_worker

    server = DevServer(tmp_path / "temporal.db")
    await server.start()
    try:
        env = drill_env(tmp_path / "events.sqlite", profile="drill")  # deadlines in seconds
        async with api_harness(env, tmp_path, WallClock()) as api:
            client = await server.connect()
            task_queue = f"tq-{uuid4().hex}"
            async with running_worker(
                client, api.app, task_queue=task_queue, workflow_failure_exception_types=[Exception]
            ):
                case = dispatched_case(api.app, "PM01")
                relay = Relay(api.app, tracking_recorder(env), client, task_queue=task_queue)
                await relay.run_once()

                def urged() -> bool:
                    return any(type(e).__name__ == "Urged" for e in api.app.history(case.id))

                await eventually(urged, timeout=15)
                api.services.workflow_history = history_reader(
                    LazyClient(Settings(temporal_address=server.address))
                )
                page = (
                    await api.get(f"/v1/audit/grievances/{case.id}/casefile", "supervisor")
                ).text
        workflow = section(page, "workflow")
        assert f"grievance-{case.id}" in workflow and "无法连接" not in workflow
        timer = row_with(workflow, 'class="wf-timer"', "已触发")
        assert "秒" in timer
        activity = row_with(workflow, 'class="wf-activity"', "(urge)", "已完成")
        assert "签收时限" in activity and f"grievance-{case.id}/urge/" in activity
        assert row_with(workflow, 'class="wf-signal"', "update v3")
        # the urge the activity recorded is in the event store's part of the file too
        assert "催办" in section(page, "urges")
    finally:
        server.stop()
