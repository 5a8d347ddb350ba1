"""The relay's batching, tracking, partitions and backoff, with a fake Temporal client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from domain.application import GrievanceApp
from tests.conftest import OPERATOR, department, make_grievance
from tests.support.workflows import FakeClient
from workflows.grievance import ladder
from workflows.messages import DeadlineInfo
from workflows.relay import Partition, Relay, tracking_recorder

MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def make_relay(app: GrievanceApp, client: FakeClient, **kwargs: Any) -> Relay:
    async def connect() -> Any:
        return client

    return Relay(app, tracking_recorder(MEMORY), connect, task_queue="tq", **kwargs)


def dispatched(app: GrievanceApp) -> tuple[UUID, str]:
    gid = make_grievance(app)
    app.classify_grievance(gid, OPERATOR, category="PM01")
    [lead] = app.dispatch_grievance(gid, OPERATOR).extra["assignments"]
    return gid, lead


async def test_events_of_one_grievance_are_coalesced_into_one_signal(
    memory_app: GrievanceApp,
) -> None:
    client = FakeClient()
    relay = make_relay(memory_app, client)
    gid, lead = dispatched(memory_app)
    assert await relay.run_once() == 4  # Received, Claimed, Classified, Dispatched
    [(workflow_id, update)] = client.calls
    assert workflow_id == f"grievance-{gid}"
    assert [(e.type, e.version) for e in update.events] == [("Received", 1), ("Dispatched", 3)]
    assert (update.version, update.status) == (3, "dispatched")
    g = memory_app.get_grievance(gid)
    a = g.assignment(lead)
    sla = memory_app.policies.sla
    sign = next(d for d in update.deadlines if d.kind == "sign_for")
    assert sign.due == a.sign_for_deadline and sign.department == "st.xueyuanlu"
    assert sign.urge_at == sla.urge_at(a.dispatched_at, a.sign_for_deadline)  # type: ignore[arg-type]
    assert sign.level2_at == sla.level2_at(a.sign_for_deadline)  # type: ignore[arg-type]
    assert [(x.assignment_id, x.role) for x in update.assignments] == [(lead, "lead")]
    assert relay.position() == memory_app.recorder.max_notification_id()
    assert await relay.run_once() == 0

    # Signing for is relayed; a progress note changes no deadline and is not.
    memory_app.sign_for(lead, department("st.xueyuanlu"))
    memory_app.report_progress(lead, department("st.xueyuanlu"), note="已到现场")
    await relay.run_once()
    assert [e.type for e in client.calls[-1][1].events] == ["SignedFor"]
    assert len(client.calls) == 2


async def test_a_workflow_starts_with_the_first_deadline_not_at_intake(
    memory_app: GrievanceApp,
) -> None:
    client = FakeClient()
    relay = make_relay(memory_app, client)
    gid = make_grievance(memory_app)
    memory_app.classify_grievance(gid, OPERATOR, category="PM01")
    await relay.run_once()
    assert not client.calls and not client.signals
    assert relay.position() == memory_app.recorder.max_notification_id()

    [lead] = memory_app.dispatch_grievance(gid, OPERATOR).extra["assignments"]
    await relay.run_once()
    [(_, update)] = client.calls
    assert [e.type for e in update.events] == ["Dispatched"]
    assert lead in {a.assignment_id for a in update.assignments}

    # Rejected before dispatch: no workflow to start; one started at intake by an
    # earlier relay still hears that the grievance is final.
    never = make_grievance(memory_app)
    early = make_grievance(memory_app)
    client.running.add(f"grievance-{early}")
    for rejected in (never, early):
        memory_app.reject_grievance(rejected, OPERATOR, reason="不属于受理范围")
    await relay.run_once()
    assert len(client.calls) == 1
    [(workflow_id, final)] = client.signals
    assert (workflow_id, final.status) == (f"grievance-{early}", "rejected")
    assert relay.position() == memory_app.recorder.max_notification_id()


async def test_position_moves_only_after_temporal_accepted_every_signal(
    memory_app: GrievanceApp,
) -> None:
    client = FakeClient()
    relay = make_relay(memory_app, client)
    for _ in range(3):
        dispatched(memory_app)
    client.down = 2
    with pytest.raises(ExceptionGroup):
        await relay.run_once()
    assert relay.position() == 0
    await relay.run_once()
    assert relay.position() == memory_app.recorder.max_notification_id()
    # At-least-once: a grievance may have been signalled twice; the versions are equal,
    # so the workflow ignores the second one.
    versions: dict[str, set[int]] = {}
    for workflow_id, update in client.calls:
        versions.setdefault(workflow_id, set()).add(update.version)
    assert len(versions) == 3 and all(v == {3} for v in versions.values())


async def test_a_closed_workflow_counts_as_delivered(memory_app: GrievanceApp) -> None:
    client = FakeClient()
    relay = make_relay(memory_app, client)
    gid, _ = dispatched(memory_app)
    client.closed.add(f"grievance-{gid}")
    await relay.run_once()
    assert relay.position() == memory_app.recorder.max_notification_id()
    assert not client.calls


async def test_partitions_split_grievances_between_relays(memory_app: GrievanceApp) -> None:
    client = FakeClient()
    tracking = tracking_recorder(MEMORY)

    async def connect() -> Any:
        return client

    relays = [
        Relay(memory_app, tracking, connect, task_queue="tq", partition=Partition(i, 2))
        for i in range(2)
    ]
    ids = [dispatched(memory_app)[0] for _ in range(8)]
    for relay in relays:
        await relay.run_once()
    sent = sorted(workflow_id for workflow_id, _ in client.calls)
    assert sent == sorted(f"grievance-{gid}" for gid in ids)
    assert {r.tracking_key for r in relays} == {"Grievances/relay-0of2", "Grievances/relay-1of2"}
    assert all(r.position() == memory_app.recorder.max_notification_id() for r in relays)


async def test_run_backs_off_while_temporal_is_down_then_catches_up(
    memory_app: GrievanceApp,
) -> None:
    client = FakeClient()
    client.down = 3
    relay = make_relay(
        memory_app, client, backoff_initial=0.01, backoff_max=0.02, poll_interval=0.01
    )
    dispatched(memory_app)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    target = memory_app.recorder.max_notification_id()
    for _ in range(500):
        if relay.position() == target:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert relay.position() == target
    assert relay.failures == 3 and len(client.calls) == 1


def test_partition_parsing() -> None:
    assert Partition.parse("1/2") == Partition(1, 2)
    assert Partition().name == "relay"
    for bad in ("2/2", "x/2", "1", "-1/2"):
        with pytest.raises(ValueError):
            Partition.parse(bad)


def test_ladder_steps_and_command_ids() -> None:
    due = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    deadline = DeadlineInfo(
        "sign_for",
        due,
        "g.1",
        "st",
        urge_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
        level2_at=datetime(2026, 11, 25, 2, 30, tzinfo=UTC),
    )
    steps = ladder("g", deadline)
    assert [s.name for s in steps] == ["urge", "escalate-1", "escalate-2"]
    assert steps[1].key == "grievance-g/escalate-1/g.1/sign_for/2026-11-24T02:30:00+00:00"
    feedback = DeadlineInfo("feedback", due, None, "dispatch-centre", urge_at=due, level2_at=due)
    assert [s.name for s in ladder("g", feedback)] == ["urge", "close"]
