"""吹哨 from below and the rating after it (街道评部门).

A street office or community committee that holds an assignment on a grievance may
summon departments where the policy (``summons.json``, read by
``domain.rules.summon_refusal``) lets its level call theirs; supervisors keep their own
right. When a summons has ended for a department, the summoning unit (its department,
or a supervisor for it) rates that department: 满意 / 基本满意 / 不满意, with a reason
for what the policy says needs one. One rating per summoned assignment, correctable
until the policy's window after the first rating closes.

``rate_summoned`` is bound as a ``Grievance`` method in ``domain.grievance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from domain.deadlines import DISPATCH_CENTRE
from domain.errors import SummonRefusedError
from domain.model import (
    Action,
    Actor,
    AssignmentRole,
    AssignmentState,
    Role,
    Satisfaction,
    Stamp,
    utc,
)
from domain.rules import ASSESSMENT_STATUSES, RATABLE_SUMMONED_STATES, summon_refusal

if TYPE_CHECKING:  # pragma: no cover
    from domain.assignments import Assignment
    from domain.grievance import Grievance
    from domain.policies.directory import Department, Directory
    from domain.policies.summons import SummonsPolicy

A = Action


@dataclass
class RatingRecord:
    """The latest rating of one summoned assignment."""

    assignment_id: str
    department: str
    rater: str
    rating: Satisfaction
    on_time: bool | None
    reason: str | None
    revision: int
    first_at: datetime  # when it was first given: the correction window runs from here
    at: datetime
    principal: str


# Grievances stored (and read models' states kept) before these existed have neither.
def summoners(g: Grievance) -> dict[str, str | None]:
    """summons id -> the department that blew the whistle (None: a supervisor)."""
    found: dict[str, str | None] = g.__dict__.setdefault("summoners", {})
    return found


def ratings(g: Grievance) -> dict[str, RatingRecord]:
    """summoned assignment id -> its latest rating."""
    found: dict[str, RatingRecord] = g.__dict__.setdefault("summons_ratings", {})
    return found


def check_department_summons(
    g: Grievance,
    actor: Actor,
    summoner: Department,
    targets: list[Department],
    policy: SummonsPolicy,
) -> None:
    """Refuse a department's 吹哨 unless it holds an assignment here and the policy lets
    its level call every target (supervisors are not asked)."""
    holding = any(
        a.department == summoner.code
        and a.role is not AssignmentRole.SUMMONED
        and a.state.value in policy.holding_states
        for a in g.current_assignments()
    )
    if not holding:
        raise SummonRefusedError("summon-without-assignment", actor_department=summoner.code)
    refused: dict[str, list[str]] = {}
    for target in targets:
        reason = summon_refusal(summoner, target, policy)
        if reason is not None:
            refused.setdefault(reason, []).append(target.code)
    for reason in ("summon-beyond-policy", "summon-outside-street"):
        if reason in refused:
            raise SummonRefusedError(
                reason, actor_department=summoner.code, departments=refused[reason]
            )


def summoning_unit(g: Grievance, assignment: Assignment, directory: Directory) -> str:
    """Who rates a summoned department: the unit that blew the whistle, or for a
    supervisor's summons the office of the grievance's street (the dispatch centre when
    it has no street)."""
    by = summoners(g).get(assignment.summons_id or "")
    if by:
        return by
    street = g.location.get("street")
    return directory.street_office(street).code if street else DISPATCH_CENTRE


def rate_summoned(
    g: Grievance,
    stamp: Stamp,
    assignment_id: str,
    rating: Satisfaction,
    reason: str | None,
    rater: str,
    correct_until: datetime | None,
) -> None:
    """Rate a summoned department once its summons ended; a later rating corrects it
    until ``correct_until`` (the policy's window after the first rating)."""
    actor = stamp.actor
    g.check_role(A.RATE_SUMMONED, actor)
    if g.status not in ASSESSMENT_STATUSES[A.RATE_SUMMONED]:
        raise g.refusal(A.RATE_SUMMONED)
    target = g.assignment(assignment_id)
    if target.role is not AssignmentRole.SUMMONED:
        raise g.assignment_refusal(
            A.RATE_SUMMONED,
            target,
            "assignment-role",
            assignment_role=target.role,
            roles=[AssignmentRole.SUMMONED],
        )
    if actor.role is Role.DEPARTMENT and actor.department != rater:
        raise SummonRefusedError(
            "not-the-summoner", department=rater, actor_department=actor.department
        )
    if target.state not in RATABLE_SUMMONED_STATES:
        raise g.assignment_refusal(
            A.RATE_SUMMONED, target, "summons-not-ended", department=target.department
        )
    previous = ratings(g).get(assignment_id)
    if previous is not None and correct_until is not None and utc(stamp.at) > correct_until:
        raise g.assignment_refusal(
            A.RATE_SUMMONED, target, "rating-window-closed", deadline=correct_until
        )
    g.trigger_event(
        g.SummonsRated,
        assignment_id=assignment_id,
        department=target.department,
        rater=rater,
        rating=rating.value,
        on_time=_on_time(target),
        revision=previous.revision + 1 if previous else 1,
        previous=previous.rating.value if previous else None,
        **g._meta(stamp, reason),
    )


def _on_time(a: Assignment) -> bool | None:
    if a.state is not AssignmentState.REPORTED_IN or a.finished_at is None:
        return None
    return a.report_in_deadline is None or a.finished_at <= a.report_in_deadline
