"""The quarterly rating round's clock (街道评部门): urge the streets that have not scored
everything at the policy's time before the deadline, then close the round at its deadline
and publish its results.

``RatingRoundWorkflow`` (id ``rating-round-<round id>``) takes one ``RoundInput``; it has
no signals, updates nor queries. Each step is an activity of ``RoundActivities`` calling
the application service with a command id derived from the round and the step, so a
retried step records nothing twice, and a step a supervisor already took records nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.model import Action
    from workflows.activities import RoundActivities
    from workflows.ladder import STEP_RETRY, STEP_TIMEOUT  # a grievance's steps' policy
    from workflows.messages import RoundInput, RoundStepInput


@workflow.defn
class RatingRoundWorkflow:
    """Urge, then close at the deadline, then publish. No signals, updates or queries."""

    @workflow.run
    async def run(self, data: RoundInput) -> str:
        status = "open"
        for at, action in (
            (data.urge_at, Action.URGE_ROUND),
            (data.deadline, Action.CLOSE_ROUND),
            (data.deadline, Action.PUBLISH_ROUND),
        ):
            wait = at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            result = await workflow.execute_activity_method(
                RoundActivities.step,
                RoundStepInput(data.round_id, action.value),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            status = result.status
        return status
