"""GrievanceActivities on the in-memory store: idempotent, and silent when a deadline was met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.application import GrievanceApp
from domain.errors import ConcurrentWriteError
from tests.conftest import OPERATOR, SUPERVISOR, department, make_grievance
from workflows.activities import LOCAL_WRITE_ATTEMPTS, GrievanceActivities
from workflows.messages import CloseInput, EscalateInput, NotifyInput, UrgeInput

STREET = "st.xueyuanlu"
SOME_DUE = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def dispatched(app: GrievanceApp) -> tuple[UUID, str]:
    gid = make_grievance(app)
    app.classify_grievance(gid, OPERATOR, category="PM01")
    [lead] = app.dispatch_grievance(gid, OPERATOR).extra["assignments"]
    return gid, lead


def named(app: GrievanceApp, gid: UUID, name: str) -> list[object]:
    return [e for e in app.events.get(gid) if type(e).__name__ == name]


@pytest.fixture
def activities(memory_app: GrievanceApp) -> GrievanceActivities:
    return GrievanceActivities(memory_app)


def test_the_same_urge_twice_records_one_event(
    memory_app: GrievanceApp, activities: GrievanceActivities
) -> None:
    gid, lead = dispatched(memory_app)
    due = memory_app.get_grievance(gid).assignment(lead).sign_for_deadline
    assert due is not None
    step = UrgeInput(
        "sign_for",
        due,
        lead,
        STREET,
        grievance_id=str(gid),
        command_id=f"grievance-{gid}/urge/{lead}/sign_for/x",
    )
    env = ActivityEnvironment()
    first = env.run(activities.urge, step)
    second = env.run(activities.urge, step)
    assert (first.recorded, first.replayed) == (True, False)
    assert (second.recorded, second.replayed) == (True, True)
    assert second.version == first.version
    assert len(named(memory_app, gid, "Urged")) == 1


def test_the_same_escalation_twice_records_one_event(
    memory_app: GrievanceApp, activities: GrievanceActivities
) -> None:
    gid, lead = dispatched(memory_app)
    due = memory_app.get_grievance(gid).assignment(lead).sign_for_deadline
    assert due is not None
    step = EscalateInput(
        "sign_for", due, lead, STREET, grievance_id=str(gid), command_id="cmd-escalate-1", level=1
    )
    env = ActivityEnvironment()
    env.run(activities.escalate, step)
    env.run(activities.escalate, step)
    [event] = named(memory_app, gid, "Escalated")
    assert (event.level, event.department, event.kind) == (1, STREET, "sign_for")  # type: ignore[attr-defined]
    assert (event.reason, event.reason_code) == (None, "deadline-lapsed")  # type: ignore[attr-defined]
    assert event.reason_params == {  # type: ignore[attr-defined]
        "kind": "sign_for",
        "due": due.isoformat(),
        "department": STREET,
        "level": 1,
    }


def test_a_step_whose_deadline_was_met_or_moved_records_nothing(
    memory_app: GrievanceApp, activities: GrievanceActivities
) -> None:
    gid, lead = dispatched(memory_app)
    g = memory_app.get_grievance(gid)
    sign_due = g.assignment(lead).sign_for_deadline
    resolve_due = g.assignment(lead).resolve_deadline
    assert sign_due is not None and resolve_due is not None
    memory_app.sign_for(lead, department(STREET))
    env = ActivityEnvironment()
    met = env.run(
        activities.escalate,
        EscalateInput("sign_for", sign_due, lead, grievance_id=str(gid), command_id="c1", level=1),
    )
    assert not met.recorded

    memory_app.request_extension(
        lead, department(STREET), new_deadline=resolve_due + timedelta(days=2), reason="需协调"
    )
    memory_app.decide_extension(gid, SUPERVISOR, assignment_id=lead, granted=True)
    moved = env.run(
        activities.urge,
        UrgeInput("resolve", resolve_due, lead, grievance_id=str(gid), command_id="c2"),
    )
    assert not moved.recorded
    assert not named(memory_app, gid, "Escalated") and not named(memory_app, gid, "Urged")


def test_close_no_response_is_idempotent_and_skips_after_feedback(
    memory_app: GrievanceApp, activities: GrievanceActivities
) -> None:
    env = ActivityEnvironment()
    gid, lead = dispatched(memory_app)
    memory_app.sign_for(lead, department(STREET))
    memory_app.resolve(lead, department(STREET), account="已处理")
    due = memory_app.get_grievance(gid).feedback_deadline
    assert due is not None
    step = CloseInput(str(gid), due, f"grievance-{gid}/close/-/feedback/x")
    assert env.run(activities.close_no_response, step).status == "closed"
    assert env.run(activities.close_no_response, step).replayed
    [closed] = named(memory_app, gid, "Closed")
    assert closed.outcome == "no_response"  # type: ignore[attr-defined]

    other, other_lead = dispatched(memory_app)
    memory_app.sign_for(other_lead, department(STREET))
    memory_app.resolve(other_lead, department(STREET), account="已处理")
    other_due = memory_app.get_grievance(other).feedback_deadline
    assert other_due is not None
    memory_app.record_feedback(
        other, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied"
    )
    late = env.run(activities.close_no_response, CloseInput(str(other), other_due, "late"))
    assert not late.recorded
    assert memory_app.get_grievance(other).outcome.value == "satisfied"  # type: ignore[union-attr]


def test_a_domain_refusal_is_not_retried(activities: GrievanceActivities) -> None:
    env = ActivityEnvironment()
    missing = EscalateInput(
        "sign_for", SOME_DUE, grievance_id=str(uuid4()), command_id="c", level=1
    )
    with pytest.raises(ApplicationError) as caught:
        env.run(activities.escalate, missing)
    assert caught.value.non_retryable
    assert caught.value.type == "GrievanceNotFoundError"
    assert caught.value.details[0]["code"] == "grievance-not-found"


def test_notify_without_a_webhook_is_skipped(activities: GrievanceActivities) -> None:
    result = ActivityEnvironment().run(
        activities.notify, NotifyInput(str(uuid4()), STREET, "assigned", "key-1")
    )
    assert not result.delivered and result.skipped_reason == "no webhook configured"


class FlakyApp:
    """The application, but the first ``failures`` commands lose a concurrent write."""

    def __init__(self, app: GrievanceApp, failures: int) -> None:
        self.app, self.failures, self.calls = app, failures, 0

    def handle(self, command: object) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConcurrentWriteError()
        return self.app.handle(command)  # type: ignore[arg-type]


def test_a_concurrent_write_is_retried_locally_then_left_to_temporal(
    memory_app: GrievanceApp,
) -> None:
    gid, lead = dispatched(memory_app)
    due = memory_app.get_grievance(gid).assignment(lead).sign_for_deadline
    assert due is not None
    env = ActivityEnvironment()
    flaky = FlakyApp(memory_app, failures=2)
    step = UrgeInput(
        "sign_for", due, lead, STREET, grievance_id=str(gid), command_id="cmd-urge-flaky"
    )
    assert env.run(GrievanceActivities(flaky).urge, step).recorded  # type: ignore[arg-type]
    assert flaky.calls == 3
    hopeless = FlakyApp(memory_app, failures=LOCAL_WRITE_ATTEMPTS)
    with pytest.raises(ConcurrentWriteError):
        env.run(GrievanceActivities(hopeless).urge, step)  # type: ignore[arg-type]
    assert hopeless.calls == LOCAL_WRITE_ATTEMPTS
