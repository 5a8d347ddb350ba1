"""The rule tables of domain.rules: complete, consistent, and what the aggregate obeys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.assignments import Assignment
from domain.model import FINAL_STATUSES, Action, AssignmentRole, AssignmentState, Role, Status
from domain.rules import (
    ACTION_ROLES,
    ASSIGNMENT_RULES,
    STATUS_ACTIONS,
    actions_in,
    assignment_actions,
    may,
    roles_for,
)


def test_every_action_has_roles_and_every_status_a_row() -> None:
    assert set(ACTION_ROLES) == set(Action)
    assert set(STATUS_ACTIONS) == set(Status)
    assert all(ACTION_ROLES[a] for a in Action)


def test_final_statuses_accept_nothing() -> None:
    for status in Status:
        assert (actions_in(status) == frozenset()) == (status in FINAL_STATUSES)


def test_assignment_actions_are_department_actions_the_status_table_knows() -> None:
    accepted_somewhere = frozenset().union(*STATUS_ACTIONS.values())
    for action, rule in ASSIGNMENT_RULES.items():
        assert roles_for(action) == {Role.DEPARTMENT}
        assert action in accepted_somewhere
        assert rule.states and rule.roles


def test_the_rule_in_force_for_supervisors() -> None:
    # The domain's rule: supervisors may do what operators do, and more.
    for action in (Action.CLASSIFY, Action.DISPATCH, Action.MERGE, Action.RECORD_FEEDBACK):
        assert may(Role.SUPERVISOR, action) and may("operator", action.value)
    assert may(Role.SUPERVISOR, Action.SUMMON) and not may(Role.OPERATOR, Action.SUMMON)
    assert not may(Role.DEPARTMENT, Action.DISPATCH)
    assert not may(Role.OPEN311, Action.CLASSIFY) and may(Role.OPEN311, Action.RECEIVE)


def _assignment(role: AssignmentRole, state: AssignmentState) -> Assignment:
    return Assignment("g.1", "st.x", role, 0, state, datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("role", "state", "status", "expected"),
    [
        (
            AssignmentRole.LEAD,
            AssignmentState.DISPATCHED,
            Status.DISPATCHED,
            ["attach_to_assignment", "request_extension", "return", "sign_for"],
        ),
        (
            AssignmentRole.LEAD,
            AssignmentState.SIGNED_FOR,
            Status.IN_PROGRESS,
            ["attach_to_assignment", "report_progress", "request_extension", "resolve", "return"],
        ),
        (
            AssignmentRole.ASSISTING,
            AssignmentState.SIGNED_FOR,
            Status.IN_PROGRESS,
            [
                "attach_to_assignment",
                "complete_part",
                "report_progress",
                "request_extension",
                "return",
            ],
        ),
        (
            AssignmentRole.SUMMONED,
            AssignmentState.DISPATCHED,
            Status.DISPATCHED,
            ["attach_to_assignment", "report_in"],
        ),
        (
            AssignmentRole.LEAD,
            AssignmentState.SIGNED_FOR,
            Status.RESOLVED,
            ["attach_to_assignment"],
        ),
        (AssignmentRole.LEAD, AssignmentState.CANCELLED, Status.WITHDRAWN, []),
    ],
)
def test_assignment_actions(
    role: AssignmentRole, state: AssignmentState, status: Status, expected: list[str]
) -> None:
    assert assignment_actions(_assignment(role, state), status) == expected
