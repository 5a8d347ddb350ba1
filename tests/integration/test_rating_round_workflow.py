"""A rating round's clock on Temporal's time-skipping test server: the relay starts the
round's workflow from its Opened event; the workflow urges the street that has not scored
everything 48 h before the deadline, closes the round at the deadline and publishes it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from domain.application import GrievanceApp
from domain.ratings import OpenRound, RoundStatus, ScoreDepartment
from tests.conftest import SUPERVISOR, department
from tests.support.workflows import ServerClock, eventually, sqlite_env, temporal_binary
from workflows.messages import round_workflow_id
from workflows.relay import Relay, tracking_recorder
from workflows.rounds import RatingRoundWorkflow
from workflows.worker import running_worker

pytestmark = pytest.mark.temporal

SCORES = {"responsiveness": 90, "cooperation": 85, "effectiveness": 80}


async def test_the_round_is_urged_closed_and_published_by_its_timers(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    store = sqlite_env(tmp_path / "events.sqlite")
    try:
        clock = ServerClock(env, asyncio.get_running_loop())
        start = await clock.sync()
        app = GrievanceApp(store, clock=clock)
        task_queue = f"tq-{uuid4().hex}"
        relay = Relay(app, tracking_recorder(store), env.client, task_queue=task_queue)
        async with running_worker(
            env.client,
            app,
            task_queue=task_queue,
            activity_threads=2,
            workflow_failure_exception_types=[Exception],
        ):
            deadline = start + timedelta(days=10)
            opened = await asyncio.to_thread(
                app.handle_round,
                OpenRound(
                    actor=SUPERVISOR,
                    quarter="2026-Q4",
                    deadline=deadline,
                    raters={"st.xueyuanlu": ["hd.urban"], "st.qinghe": ["hd.urban"]},
                ),
            )
            await asyncio.to_thread(
                app.handle_round,
                ScoreDepartment(
                    actor=department("st.qinghe"),
                    round_id=opened.round_id,
                    department="hd.urban",
                    scores=SCORES,
                ),
            )
            assert await relay.run_once() == 2
            assert relay.signals_sent == 1
            handle = env.client.get_workflow_handle(round_workflow_id(opened.round_id))
            r = app.get_round(opened.round_id)
            await env.sleep(r.urge_at + timedelta(hours=1) - await env.get_current_time())
            await eventually(lambda: app.get_round(opened.round_id).urged)
            assert app.get_round(opened.round_id).status is RoundStatus.OPEN
            await env.sleep(deadline + timedelta(minutes=1) - await env.get_current_time())
            assert await handle.result() == "published"  # ten days skipped in moments
            assert await relay.run_once() > 0  # the round's own events: nothing to start
            assert relay.signals_sent == 1

            r = app.get_round(opened.round_id)
            assert r.status is RoundStatus.PUBLISHED
            assert r.urged == [["st.xueyuanlu"]]
            events = {type(e).__name__: e for e in app.events.get(opened.round_id)}
            assert list(events) == ["Opened", "Scored", "Urged", "Closed", "Published"]
            assert r.urge_at <= events["Urged"].at < deadline  # type: ignore[attr-defined]
            assert events["Closed"].at >= deadline  # type: ignore[attr-defined]
            assert events["Closed"].missing == {"st.xueyuanlu": ["hd.urban"]}  # type: ignore[attr-defined]
            assert r.results == [
                {
                    "department": "hd.urban",
                    "raters": 1,
                    "items": {k: float(v) for k, v in SCORES.items()},
                    "score": 85.0,
                    "comments": [],
                }
            ]
            history = await handle.fetch_history()
        await Replayer(
            workflows=[RatingRoundWorkflow], data_converter=pydantic_data_converter
        ).replay_workflow(history)
        app.close()
    finally:
        await env.shutdown()
