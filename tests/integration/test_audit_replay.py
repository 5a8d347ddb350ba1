"""Audit replay on the issue-6 scenario: dispatch, a return, re-dispatch, late sign-for
(urged, escalated), extension, resolution, unsatisfied feedback, reopen, resolution,
satisfied, closed. Runs on SQLite so events come back from a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.application import GrievanceApp
from domain.audit import deadlines_at, late_by_text
from domain.model import SYSTEM, AssignmentRole
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, backend_env
from tests.support.domain import Case, new_case, work_through


@pytest.fixture
def story(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    clock = FakeClock(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))  # Monday 09:30 in Beijing
    app = GrievanceApp(backend_env("sqlite", tmp_path, request), clock=clock)
    moments: list[tuple[datetime, dict[str, Any]]] = []

    def mark(case: Case) -> None:
        moments.append((datetime.now(UTC), case.g.state()))

    case = new_case(app, "PM01")
    app.dispatch_grievance(case.id, OPERATOR)
    mark(case)
    first = case.aid()
    clock.advance(minutes=30)
    app.return_assignment(first, case.dept(first), reason="非本街道管辖")
    mark(case)
    clock.advance(minutes=20)
    app.arbitrate_return(
        case.id, OPERATOR, assignment_id=first, decision="redispatch", department="hd.housing"
    )
    lead = case.aid()
    due = case.g.assignment(lead).sign_for_deadline
    assert due is not None
    clock.now = due - timedelta(minutes=20)
    app.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead, reason="临近签收时限")
    clock.now = due + timedelta(minutes=1)
    app.escalate(case.id, SYSTEM, level=1, kind="sign_for", assignment_id=lead, reason="逾期未签收")
    mark(case)
    clock.now = due + timedelta(minutes=45)
    app.sign_for(lead, case.dept(lead))
    resolve_due = case.g.assignment(lead).resolve_deadline
    assert resolve_due is not None
    app.request_extension(
        lead, case.dept(lead), new_deadline=resolve_due + timedelta(days=2), reason="需业主表决"
    )
    app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=True, reason="同意")
    clock.advance(days=2)
    app.resolve(lead, case.dept(lead), account="已督促物业整改")
    mark(case)
    clock.advance(hours=3)
    app.record_feedback(
        case.id, OPERATOR, contacted=True, resolved=False, satisfaction="unsatisfied"
    )
    clock.advance(hours=1)
    work_through(case)
    clock.advance(hours=2)
    app.record_feedback(case.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    mark(case)
    return {
        "app": app,
        "case": case,
        "moments": moments,
        "first": first,
        "lead": lead,
        "sign_for_due": due,
        "resolve_due": resolve_due,
        "clock": clock,
    }


def test_state_as_of_five_instants_equals_what_was_recorded_then(story: dict[str, Any]) -> None:
    app: GrievanceApp = story["app"]
    case: Case = story["case"]
    assert len(story["moments"]) == 5
    for moment, recorded in story["moments"]:
        then = app.state_as_of(case.id, moment)
        assert then is not None and then.state() == recorded
    assert app.state_as_of(case.id, datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_open_and_overdue_deadlines_at_an_instant(story: dict[str, Any]) -> None:
    app: GrievanceApp = story["app"]
    case: Case = story["case"]
    moment, _ = story["moments"][2]  # after the escalation, before sign-for
    then = app.state_as_of(case.id, moment)
    assert then is not None
    business_now = story["sign_for_due"] + timedelta(minutes=5)
    open_ = {(d.kind, d.assignment_id): d for d in deadlines_at(then, business_now)}
    sign_for = open_[("sign_for", story["lead"])]
    assert sign_for.overdue and sign_for.overdue_by_seconds == 300
    assert not open_[("resolve", story["lead"])].overdue


def test_who_was_late_and_what_happened_next(story: dict[str, Any]) -> None:
    app: GrievanceApp = story["app"]
    case: Case = story["case"]
    records = app.deadline_history(case.id)
    history = {(r.kind, r.assignment_id): r for r in records}
    returned = history[("sign_for", story["first"])]
    assert returned.outcome == "returned" and returned.department == "st.xueyuanlu"
    redispatch = history[("redispatch", story["first"])]
    assert redispatch.outcome == "met" and redispatch.department == "dispatch-centre"

    late = history[("sign_for", story["lead"])]
    assert late.outcome == "met_late" and late.department == "hd.housing"
    assert late.late_by_seconds == 45 * 60 and late_by_text(late.late_by_seconds) == "45m"
    assert [(f.action, f.level) for f in late.follow_ups] == [("urged", None), ("escalated", 1)]

    resolve = history[("resolve", story["lead"])]
    assert resolve.original_due == story["resolve_due"]
    assert resolve.due == story["resolve_due"] + timedelta(days=2)
    assert [f.action for f in resolve.follow_ups] == ["extension_requested", "extension_granted"]
    assert resolve.outcome in ("met", "met_late")

    feedback = [r for r in records if r.kind == "feedback"]  # one per round
    assert len(feedback) == 2 and all(r.outcome == "met" for r in feedback)
    assert case.g.status.value == "closed"

    missed = [r for r in records if r.missed]
    assert late in missed and redispatch not in missed


def test_department_lateness_over_a_period(story: dict[str, Any]) -> None:
    app: GrievanceApp = story["app"]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime(2026, 12, 31, tzinfo=UTC)
    housing = app.department_lateness("hd.housing", start, end)
    assert [(r.kind, r.assignment_id) for r in housing] == [("sign_for", story["lead"])]
    assert app.department_lateness("hd.housing", end, end + timedelta(days=30)) == []
    assert app.department_lateness("hd.fire", start, end) == []
    reopened_lead = story["case"].g.current_assignments(AssignmentRole.LEAD)[0]
    assert reopened_lead.round == 1
