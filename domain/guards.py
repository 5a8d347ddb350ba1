"""The aggregate's guards: they read ``domain.rules`` and refuse with coded errors.

Bound as ``Grievance`` methods in ``domain.grievance``. A refusal names what blocks
the command (a reason code and its parameters) and what is allowed instead; the
refused action is never among the allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.errors import (
    AssignmentStateError,
    IllegalTransitionError,
    NotAssignedError,
    PermissionDeniedError,
)
from domain.model import Action, Actor
from domain.rules import ASSIGNMENT_RULES, actions_in, assignment_actions, may, roles_for

if TYPE_CHECKING:  # pragma: no cover
    from domain.assignments import Assignment
    from domain.grievance import Grievance


def allowed_actions(g: Grievance) -> list[str]:
    """The commands the grievance's status accepts now."""
    return sorted(a.value for a in actions_in(g.status))


def check_role(action: Action, actor: Actor) -> None:
    """Raise unless a principal of this role may issue this command at all."""
    if not may(actor.role, action):
        raise PermissionDeniedError(action=action, role=actor.role, roles=sorted(roles_for(action)))


def refusal(
    g: Grievance, action: Action, reason: str | None = None, **params: Any
) -> IllegalTransitionError:
    """The error for a command this status refuses, naming what blocks it."""
    if reason is None and g.is_final:
        reason = "final-status"
    return IllegalTransitionError(action, g.status, actions_in(g.status), reason, **params)


def assignment_refusal(
    g: Grievance, action: Action, assignment: Assignment, reason: str | None = None, **params: Any
) -> AssignmentStateError:
    """The error for a command this assignment refuses; ``allowed`` is what it accepts."""
    allowed = (
        assignment_actions(assignment, g.status)
        if action in ASSIGNMENT_RULES
        else actions_in(g.status)
    )
    return AssignmentStateError(
        action, assignment.id, assignment.state, g.status, allowed, reason, **params
    )


def ensure_allowed(
    g: Grievance, action: Action | str, actor: Actor, reason: str | None = None, **params: Any
) -> None:
    """Raise unless this role may do this action in the current status."""
    action = Action(action)
    check_role(action, actor)
    if action not in actions_in(g.status):
        raise refusal(g, action, reason, **params)


def own_assignment(g: Grievance, action: Action, actor: Actor, assignment_id: str) -> Assignment:
    """The actor's department's assignment, if its rule accepts this command now."""
    ensure_allowed(g, action, actor)
    found = g.assignment(assignment_id)
    if actor.department != found.department:
        raise NotAssignedError(
            assignment_id=assignment_id,
            department=found.department,
            actor_department=actor.department,
        )
    rule = ASSIGNMENT_RULES[action]
    if found.role not in rule.roles:
        raise assignment_refusal(
            g, action, found, "assignment-role", assignment_role=found.role, roles=rule.roles
        )
    if found.state not in rule.states:
        raise assignment_refusal(g, action, found)
    return found
