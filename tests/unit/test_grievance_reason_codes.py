"""Workflow-written reasons are codes with parameters; events stored before them still load."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.application import GrievanceApp
from domain.audit import replay
from domain.grievance import Grievance
from domain.integrity import chain_digest, event_data, verify_chain
from domain.model import SYSTEM, ReasonCode
from tests.conftest import OPERATOR
from tests.support.domain import (
    dispatched_case,
    load_stored_events,
    resolved_case,
    work_through,
)

pytestmark = pytest.mark.usefixtures("memory_app")


@pytest.fixture
def app(memory_app: GrievanceApp) -> GrievanceApp:
    return memory_app


def test_urge_and_escalate_store_a_reason_code_not_prose(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    due = case.g.assignment(lead).sign_for_deadline
    assert due is not None
    params = {"kind": "sign_for", "due": due.isoformat(), "department": "st.xueyuanlu"}
    app.urge(
        case.id,
        SYSTEM,
        kind="sign_for",
        assignment_id=lead,
        reason_code=ReasonCode.DEADLINE_APPROACHING,
        reason_params=params,
    )
    app.escalate(
        case.id,
        SYSTEM,
        level=1,
        kind="sign_for",
        assignment_id=lead,
        reason_code=ReasonCode.DEADLINE_LAPSED,
        reason_params={**params, "level": 1},
    )
    urged = app.history(case.id)[-2]
    assert (urged.reason, urged.reason_code) == (None, "deadline-approaching")  # type: ignore[attr-defined]
    assert urged.reason_params == params  # type: ignore[attr-defined]
    record = case.g.escalations[-1]
    assert (record.reason, record.reason_code) == (None, "deadline-lapsed")
    assert record.reason_params == {**params, "level": 1}
    assert verify_chain(case.id, app.history(case.id)) is None


def test_a_person_still_gives_a_reason_in_words(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    app.escalate(case.id, SYSTEM, level=2, reason="市领导批示")
    escalated = app.history(case.id)[-1]
    assert escalated.reason == "市领导批示"  # type: ignore[attr-defined]
    assert escalated.reason_code is None  # type: ignore[attr-defined]


def test_repeated_reopening_escalates_with_a_code(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    threshold = app.policies.sla.profile.reopen_escalation_threshold
    for reopened in range(1, threshold + 1):
        app.record_feedback(
            case.id, OPERATOR, contacted=True, resolved=False, satisfaction="unsatisfied"
        )
        if reopened < threshold:
            work_through(case)
    record = case.g.escalations[-1]
    assert record.level == 3 and record.reason is None
    assert record.reason_code == "reopened-repeatedly"
    assert record.reason_params == {"reopen_count": threshold, "level": 3}


def _as_stored_before_reason_codes(events: list[Any]) -> list[Any]:
    """The same events as an older version wrote them: no reason_code/reason_params."""
    old: list[Any] = []
    previous = events[0].chain_hash
    for e in events:
        state = dict(vars(e))
        if "reason_code" in state:
            state.pop("reason_code")
            state.pop("reason_params")
            state["reason"] = "签收时限将至，请尽快处理"
        if e.originator_version > 1:
            state["chain_hash"] = chain_digest(
                previous, type(e).__name__, e.originator_version, e.timestamp, event_data(state)
            )
        previous = state["chain_hash"]
        decoded = object.__new__(type(e))
        object.__setattr__(decoded, "__dict__", state)
        old.append(decoded)
    return old


def test_events_stored_without_reason_codes_still_replay(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    app.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead, reason_code="x")
    app.escalate(case.id, SYSTEM, level=1, kind="sign_for", assignment_id=lead, reason_code="y")
    old = _as_stored_before_reason_codes(list(app.history(case.id)))
    assert "reason_code" not in vars(old[-1])
    grievance = replay(old)
    assert isinstance(grievance, Grievance)
    assert grievance.escalations[-1].reason_code is None
    assert grievance.assignment(lead).urges == 1
    assert old[-2].reason_code is None and old[-2].reason_params is None
    assert verify_chain(case.id, old) is None


def test_events_stored_by_the_previous_version_load_replay_and_verify() -> None:
    """Real rows written before this change (decorator events, prose reasons) still work."""
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    data = load_stored_events(app, Path(__file__).parent / "data" / "stored_events_v1.json")
    assert app.verify_all() == (len(data["expected"]), [])
    for gid, want in data["expected"].items():
        g = app.get_grievance(UUID(gid))
        assert (g.version, g.status.value, len(g.escalations)) == (
            want["version"],
            want["status"],
            want["escalations"],
        )
        assert {k: a.state.value for k, a in g.assignments.items()} == want["assignments"]
        # A repeat answers the same version and status; results now carry more (ids).
        assert set(g.applied_commands) == set(want["applied"])
        for command_id, (version, status, extra) in want["applied"].items():
            applied = g.applied_commands[command_id]
            assert (applied.version, applied.status.value) == (version, status)
            assert extra.items() <= applied.extra.items()
    urged = [e for e in app.iter_all_events() if type(e).__name__ == "Urged"]
    assert [(e.reason, e.reason_code) for e in urged] == [("签收时限将至", None)]  # type: ignore[attr-defined]
