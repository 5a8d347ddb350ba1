"""Determinism: recorded histories replay on the current GrievanceWorkflow code.

Every scenario in ``test_workflow_scenarios.py`` already replays its histories when its
harness closes; this test covers a grievance with several runs (continue-as-new after
a reopening), escalations and a no-response close, and shows that the check would
catch an unpatched change to the workflow.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.workflow import NondeterminismError

from tests.support.workflows import (
    OPERATOR,
    department,
    load_history_fixtures,
    replay,
    run_histories,
    workflow_harness,
)
from workflows.grievance import GrievanceWorkflow, Step
from workflows.messages import GrievanceOutcome, GrievanceWorkflowInput, workflow_id_for

pytestmark = pytest.mark.temporal

STREET = "st.xueyuanlu"


@workflow.defn(name="GrievanceWorkflow", sandboxed=False)
class UnpatchedChange(GrievanceWorkflow):
    """The same workflow with a timer added before each step and no workflow.patched."""

    @workflow.run
    async def run(self, input: GrievanceWorkflowInput) -> GrievanceOutcome:
        return await super().run(input)

    async def _perform(self, step: Step) -> None:
        await workflow.sleep(timedelta(seconds=1))
        await super()._perform(step)


async def test_multi_run_history_replays_and_an_unpatched_change_is_caught(
    tmp_path: Path,
) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        g = h.app.get_grievance(gid)
        sign_due = g.assignment(lead).sign_for_deadline
        assert sign_due is not None
        await h.pump()
        await h.advance_to(sign_due + timedelta(minutes=1))
        await h.wait_events(gid, "Escalated", level=1)
        await h.do(h.app.sign_for, lead, department(STREET))
        await h.do(h.app.resolve, lead, department(STREET), account="已处理")
        await h.do(
            h.app.record_feedback,
            gid,
            OPERATOR,
            contacted=True,
            resolved=False,
            satisfaction="unsatisfied",
        )
        first_run = await h.run_id(gid)
        await h.pump()
        await h.wait_continued(gid, first_run)
        feedback_lead = h.events(gid, "Reopened")[-1].assignments[0]["assignment_id"]
        await h.do(h.app.sign_for, feedback_lead, department(STREET))
        await h.do(h.app.resolve, feedback_lead, department(STREET), account="已再次处理")
        await h.pump()
        await h.wait_version(gid)
        due = h.app.get_grievance(gid).feedback_deadline
        assert due is not None
        await h.advance_to(due + timedelta(minutes=1))
        outcome = await h.outcome(gid)
        assert (outcome.status, outcome.runs) == ("closed", 2)

        histories = await run_histories(h.client, workflow_id_for(str(gid)))
        assert len(histories) == 2
        assert await replay(histories) == 2
        with pytest.raises(NondeterminismError):
            await replay(histories[:1], UnpatchedChange)


async def test_histories_recorded_by_earlier_workflow_code_still_replay() -> None:
    """``tests/integration/data/histories``: every scenario's runs as recorded by the
    workflow code of commit e8946d7 (workflow started at intake, a ``wait_condition``
    timer per wake-up), with ``CLOSELOOP_RECORD_HISTORIES=1``; later code must replay
    them (``workflow.patched`` where its commands differ)."""
    histories = load_history_fixtures()
    assert len(histories) >= 15
    assert await replay(histories) == len(histories)
