"""The ladder of one open deadline: the steps a workflow takes and their command ids.

Pure data and functions, imported into the workflow sandbox passed through (once per
worker, not once per workflow instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.common import RetryPolicy

from workflows.messages import FEEDBACK, DeadlineInfo, workflow_id_for

# How GrievanceWorkflow takes a step. Here, passed through the sandbox, rather than in
# the workflow module, which the sandbox executes again for every workflow instance.
# Deadline steps change the event store: retry until the store answers (a domain refusal
# is raised as non-retryable by the activity and only logged by the workflow).
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
STEP_TIMEOUT = timedelta(seconds=30)
# Webhooks: a department that is down is retried with backoff for a while, then given up;
# they run beside the loop and never hold up a deadline step.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=12,
)
NOTIFY_START_TO_CLOSE = timedelta(seconds=15)
NOTIFY_SCHEDULE_TO_CLOSE = timedelta(hours=1)

_STEP_ORDER = {"urge": 0, "escalate-1": 1, "escalate-2": 2, "close": 3}


@dataclass(frozen=True)
class Step:
    """One rung of a deadline's ladder: urge at the share, level 1 at due, level 2 later."""

    at: datetime
    name: str  # urge | escalate-1 | escalate-2 | close
    deadline: DeadlineInfo
    key: str  # also the command id, so a retried activity records nothing twice

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, _STEP_ORDER[self.name], self.key)


def ladder(grievance_id: str, deadline: DeadlineInfo) -> list[Step]:
    """The steps one open deadline gets; the feedback window closes instead of escalating."""
    names: list[tuple[str, datetime]] = [("urge", deadline.urge_at)]
    if deadline.kind == FEEDBACK:
        names.append(("close", deadline.due))
    else:
        names += [("escalate-1", deadline.due), ("escalate-2", deadline.level2_at)]
    return [
        Step(
            at=at,
            name=name,
            deadline=deadline,
            key=(
                f"{workflow_id_for(grievance_id)}/{name}/{deadline.assignment_id or '-'}/"
                f"{deadline.kind}/{deadline.due.isoformat()}"
            ),
        )
        for name, at in names
    ]
