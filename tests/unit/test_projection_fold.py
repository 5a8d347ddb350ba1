"""The read models' fold agrees with the aggregate itself, version by version."""

from __future__ import annotations

from typing import Any

from domain.application import GrievanceApp
from domain.grievance import Grievance
from projections.db import iso
from projections.fold import State, fold, lead_department, open_deadlines
from tests.conftest import FakeClock
from tests.support.projections import run_more_paths, run_scenario


def aggregate_view(g: Grievance) -> dict[str, Any]:
    return {
        "status": g.status.value,
        "category": g.category,
        "reopen_count": g.reopen_count,
        "escalation_level": g.escalation_level,
        "lead": g.lead_department,
        "deadlines": [
            (d.kind.value, iso(d.due), d.assignment_id, d.department) for d in g.open_deadlines()
        ],
        "assignments": {a.id: a.state.value for a in g.assignments.values()},
        "feedback_deadline": iso(g.feedback_deadline),
        "merged_into": g.merged_into,
        "duplicates": list(g.duplicates),
    }


def folded_view(state: State) -> dict[str, Any]:
    return {
        "status": state["status"],
        "category": state["category"],
        "reopen_count": state["reopen_count"],
        "escalation_level": state["escalation_level"],
        "lead": lead_department(state),
        "deadlines": [
            (d["kind"], d["due"], d["assignment_id"], d["department"])
            for d in open_deadlines(state)
        ],
        "assignments": {a["id"]: a["state"] for a in state["assignments"].values()},
        "feedback_deadline": state["feedback_deadline"],
        "merged_into": state["merged_into"],
        "duplicates": list(state["duplicates"]),
    }


def test_fold_matches_the_aggregate_at_every_version(
    memory_app: GrievanceApp, clock: FakeClock
) -> None:
    ids = [*run_scenario(memory_app, clock).ids.values()]
    ids += run_more_paths(memory_app, clock).ids.values()
    kinds: set[str] = set()
    checked = 0
    for grievance_id in ids:
        state: State | None = None
        for event in memory_app.events.get(grievance_id):
            state = fold(state, event)
            at_version = memory_app.get_grievance(grievance_id, version=event.originator_version)
            assert folded_view(state) == aggregate_view(at_version), (
                grievance_id,
                type(event).__qualname__,
            )
            checked += 1
            kinds.add(type(event).__qualname__.rpartition(".")[2])
    assert checked > 60
    every = {
        "Received",
        "Classified",
        "Rejected",
        "Dispatched",
        "SignedFor",
        "Returned",
        "Arbitrated",
        "ProgressReported",
        "ExtensionRequested",
        "ExtensionGranted",
        "ExtensionDenied",
        "Urged",
        "Escalated",
        "Summoned",
        "ReportedIn",
        "PartCompleted",
        "Resolved",
        "FeedbackRecorded",
        "Reopened",
        "Merged",
        "DuplicateLinked",
        "Withdrawn",
        "Closed",
    }
    assert every <= kinds, every - kinds


def test_fold_never_keeps_full_personal_data(memory_app: GrievanceApp, clock: FakeClock) -> None:
    scenario = run_scenario(memory_app, clock)
    for grievance_id in scenario.ids.values():
        state: State | None = None
        for event in memory_app.events.get(grievance_id):
            state = fold(state, event)
        assert state is not None
        text = repr(state)
        assert "13812345678" not in text and "张秀英" not in text
        assert state["citizen_phone"] in ("138****5678", "139****1111")
