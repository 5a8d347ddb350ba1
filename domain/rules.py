"""The rules of the grievance loop, as data, in one place.

- ``STATUS_ACTIONS``: which commands each grievance status accepts;
- ``ASSIGNMENT_RULES``: for the commands a department sends about its own
  assignment, the assignment states and roles that accept them;
- ``ACTION_ROLES``: which principal roles may issue each command;
- ``ASSESSMENT_STATUSES``: the statuses in which a judgement about the work (a summoned
  department's rating) is accepted; ``summon_refusal``: which departments a department
  may summon (吹哨), reading the policy ``summons.json``;
- ``ARTICLE_STATUS_ACTIONS``: which commands a knowledge-base article accepts.

The aggregate's guards, ``allowed_actions``, the API's route permissions, the Open311
router and the projections read these tables; nobody keeps a copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from domain.model import (
    FINAL_STATUSES,
    Action,
    ArticleStatus,
    AssignmentRole,
    AssignmentState,
    Role,
    RoundStatus,
    Status,
)

if TYPE_CHECKING:  # pragma: no cover
    from domain.grievance import Assignment
    from domain.policies.directory import Department
    from domain.policies.summons import SummonsPolicy

__all__ = [
    "ACTION_ROLES",
    "ARTICLE_STATUS_ACTIONS",
    "ASSESSMENT_STATUSES",
    "ASSIGNMENT_RULES",
    "FINAL_STATUSES",
    "RATABLE_SUMMONED_STATES",
    "ROUND_STATUS_ACTIONS",
    "STATUS_ACTIONS",
    "AssignmentRule",
    "actions_in",
    "assignment_actions",
    "may",
    "roles_for",
    "summon_refusal",
]

A = Action

_INTAKE = frozenset(
    {A.CLASSIFY, A.REJECT, A.MERGE, A.WITHDRAW, A.URGE, A.ESCALATE, A.ATTACH, A.ANSWER_AT_INTAKE}
)
# While departments work: everything about assignments, plus the dispatch centre's
# arbitration, summons, chasing and ending the grievance early.
_WORKING = frozenset(
    {
        A.ARBITRATE,
        A.SIGN_FOR,
        A.RETURN,
        A.REPORT_PROGRESS,
        A.REQUEST_EXTENSION,
        A.DECIDE_EXTENSION,
        A.COMPLETE_PART,
        A.SUMMON,
        A.REPORT_IN,
        A.URGE,
        A.ESCALATE,
        A.MERGE,
        A.WITHDRAW,
        A.ATTACH,
        A.ATTACH_TO_ASSIGNMENT,
    }
)

STATUS_ACTIONS: Mapping[Status, frozenset[Action]] = MappingProxyType(
    {
        Status.RECEIVED: _INTAKE,
        Status.CLASSIFIED: _INTAKE | {A.DISPATCH},
        Status.DISPATCHED: _WORKING,
        Status.IN_PROGRESS: _WORKING | {A.RESOLVE},
        Status.RETURNED: _WORKING,
        Status.RESOLVED: frozenset(
            {A.RECORD_FEEDBACK, A.CLOSE, A.URGE, A.ESCALATE, A.ATTACH, A.ATTACH_TO_ASSIGNMENT}
        ),
        Status.CLOSED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.MERGED: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }
)


@dataclass(frozen=True)
class AssignmentRule:
    """The assignment states and roles in which its department may send a command."""

    states: frozenset[AssignmentState]
    roles: frozenset[AssignmentRole]


_WORK = frozenset({AssignmentRole.LEAD, AssignmentRole.ASSISTING})
_DISPATCHED = frozenset({AssignmentState.DISPATCHED})
_SIGNED_FOR = frozenset({AssignmentState.SIGNED_FOR})
_NOT_YET_DONE = frozenset({AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR})

ASSIGNMENT_RULES: Mapping[Action, AssignmentRule] = MappingProxyType(
    {
        A.SIGN_FOR: AssignmentRule(_DISPATCHED, _WORK),
        A.RETURN: AssignmentRule(_NOT_YET_DONE, _WORK),
        A.REPORT_PROGRESS: AssignmentRule(_SIGNED_FOR, _WORK),
        A.REQUEST_EXTENSION: AssignmentRule(_NOT_YET_DONE, _WORK),
        A.COMPLETE_PART: AssignmentRule(_SIGNED_FOR, frozenset({AssignmentRole.ASSISTING})),
        A.RESOLVE: AssignmentRule(_SIGNED_FOR, frozenset({AssignmentRole.LEAD})),
        A.REPORT_IN: AssignmentRule(_DISPATCHED, frozenset({AssignmentRole.SUMMONED})),
        # Evidence (before/after photos) while it works on it and right after it finished.
        A.ATTACH_TO_ASSIGNMENT: AssignmentRule(
            frozenset(
                {
                    AssignmentState.DISPATCHED,
                    AssignmentState.SIGNED_FOR,
                    AssignmentState.COMPLETED,
                    AssignmentState.RESOLVED,
                    AssignmentState.REPORTED_IN,
                }
            ),
            frozenset(AssignmentRole),
        ),
    }
)

_STAFF = frozenset({Role.OPERATOR, Role.SUPERVISOR})
_DEPARTMENT = frozenset({Role.DEPARTMENT})

ACTION_ROLES: Mapping[Action, frozenset[Role]] = MappingProxyType(
    {
        A.RECEIVE: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.OPEN311, Role.SYSTEM}),
        A.CLASSIFY: _STAFF,
        A.DISPATCH: _STAFF,
        A.REJECT: _STAFF,
        A.MERGE: _STAFF,
        A.LINK_DUPLICATE: _STAFF,
        A.WITHDRAW: _STAFF,
        A.ARBITRATE: _STAFF,
        A.RECORD_FEEDBACK: _STAFF,
        A.SIGN_FOR: _DEPARTMENT,
        A.RETURN: _DEPARTMENT,
        A.REPORT_PROGRESS: _DEPARTMENT,
        A.REQUEST_EXTENSION: _DEPARTMENT,
        A.COMPLETE_PART: _DEPARTMENT,
        A.RESOLVE: _DEPARTMENT,
        A.REPORT_IN: _DEPARTMENT,
        A.DECIDE_EXTENSION: frozenset({Role.SUPERVISOR}),
        # A department only where the 吹哨 policy lets its level call the others (summon_refusal).
        A.SUMMON: frozenset({Role.SUPERVISOR, Role.DEPARTMENT}),
        A.URGE: frozenset({Role.SYSTEM, Role.SUPERVISOR, Role.OPERATOR}),
        A.ESCALATE: frozenset({Role.SYSTEM, Role.SUPERVISOR}),
        A.CLOSE: frozenset({Role.SYSTEM, Role.SUPERVISOR}),
        A.ATTACH: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.OPEN311}),
        A.ANSWER_AT_INTAKE: _STAFF,
        # The knowledge base: the dispatch centre writes, supervisors approve and retire.
        A.WRITE_ARTICLE: _STAFF,
        A.APPROVE_ARTICLE: frozenset({Role.SUPERVISOR}),
        A.RETIRE_ARTICLE: frozenset({Role.SUPERVISOR}),
        A.ATTACH_TO_ASSIGNMENT: _DEPARTMENT,
        # The summoning unit's own token, or a supervisor for it.
        A.RATE_SUMMONED: frozenset({Role.SUPERVISOR, Role.DEPARTMENT}),
        A.OPEN_ROUND: frozenset({Role.SUPERVISOR}),
        A.SCORE_ROUND: _DEPARTMENT,  # a street office, for the departments it rates
        A.URGE_ROUND: frozenset({Role.SYSTEM, Role.SUPERVISOR}),
        A.CLOSE_ROUND: frozenset({Role.SYSTEM, Role.SUPERVISOR}),
        A.PUBLISH_ROUND: frozenset({Role.SYSTEM, Role.SUPERVISOR}),
    }
)

# Judgements about work done on a grievance, not steps of its loop: ``allowed_actions``
# leaves them out, and a closed grievance still accepts them.
ASSESSMENT_STATUSES: Mapping[Action, frozenset[Status]] = MappingProxyType(
    {
        A.RATE_SUMMONED: frozenset(
            {
                Status.DISPATCHED,
                Status.IN_PROGRESS,
                Status.RETURNED,
                Status.RESOLVED,
                Status.CLOSED,
            }
        ),
    }
)

# A quarterly rating round (domain.ratings): scored, urged and closed while open; then
# published.
ROUND_STATUS_ACTIONS: Mapping[RoundStatus, frozenset[Action]] = MappingProxyType(
    {
        RoundStatus.OPEN: frozenset({A.SCORE_ROUND, A.URGE_ROUND, A.CLOSE_ROUND}),
        RoundStatus.CLOSED: frozenset({A.PUBLISH_ROUND}),
        RoundStatus.PUBLISHED: frozenset(),
    }
)

# A summoned department is rated once its summons ended for it: reported in, or its
# report-in was made moot (the grievance resolved, merged or withdrawn).
RATABLE_SUMMONED_STATES = frozenset(
    {AssignmentState.REPORTED_IN, AssignmentState.SUPERSEDED, AssignmentState.CANCELLED}
)


def summon_refusal(summoner: Department, target: Department, policy: SummonsPolicy) -> str | None:
    """Why a department may not summon ``target`` under the 吹哨 policy (None: it may).

    ``summon-beyond-policy``: its level may not call the target's level at all;
    ``summon-outside-street``: only its own street's departments of that level."""
    grants = [g for g in policy.grants.get(summoner.level, ()) if g.level == target.level]
    if not grants:
        return "summon-beyond-policy"
    if all(g.scope == "own-street" for g in grants) and target.street != summoner.street:
        return "summon-outside-street"
    return None


# A retired article accepts nothing; approving when no revision waits is refused with its
# own reason (``nothing-to-approve``).
_ARTICLE_OPEN = frozenset({A.WRITE_ARTICLE, A.APPROVE_ARTICLE, A.RETIRE_ARTICLE})
ARTICLE_STATUS_ACTIONS: Mapping[ArticleStatus, frozenset[Action]] = MappingProxyType(
    {
        ArticleStatus.DRAFT: _ARTICLE_OPEN,
        ArticleStatus.PUBLISHED: _ARTICLE_OPEN,
        ArticleStatus.RETIRED: frozenset(),
    }
)


def roles_for(action: Action | str) -> frozenset[Role]:
    """The principal roles that may issue this command."""
    return ACTION_ROLES[Action(action)]


def may(role: Role | str, action: Action | str) -> bool:
    """Whether a principal of this role may issue this command at all."""
    return Role(role) in ACTION_ROLES[Action(action)]


def actions_in(status: Status | str) -> frozenset[Action]:
    """The commands a grievance in this status accepts (assignment rules aside)."""
    return STATUS_ACTIONS[Status(status)]


def assignment_actions(assignment: Assignment, status: Status | str) -> list[Action]:
    """What its department may do to this assignment now (its state and role, and the status)."""
    accepted = actions_in(status)
    return sorted(
        action
        for action, rule in ASSIGNMENT_RULES.items()
        if assignment.state in rule.states and assignment.role in rule.roles and action in accepted
    )
