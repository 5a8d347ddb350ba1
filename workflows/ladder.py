"""The ladder of one open deadline: the steps a workflow takes and their command ids.

Pure data and functions, imported into the workflow sandbox passed through (once per
worker, not once per workflow instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workflows.messages import FEEDBACK, DeadlineInfo, workflow_id_for

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
