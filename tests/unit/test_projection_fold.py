"""The read models' fold is the aggregate itself, version by version, and what the views
are given of it never carries the citizen's personal data."""

from __future__ import annotations

import pytest

from domain.application import GrievanceApp
from projections.fold import Folded, fold, read_state
from tests.conftest import FakeClock
from tests.support.projections import run_more_paths, run_scenario

EVERY_EVENT = {
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


def test_fold_is_the_aggregate_at_every_version(memory_app: GrievanceApp, clock: FakeClock) -> None:
    ids = [*run_scenario(memory_app, clock).ids.values()]
    ids += run_more_paths(memory_app, clock).ids.values()
    kinds: set[str] = set()
    checked = 0
    for grievance_id in ids:
        live: Folded | None = None
        for event in memory_app.events.get(grievance_id):
            live = fold(live, event)
            at_version = memory_app.get_grievance(grievance_id, version=event.originator_version)
            assert live.grievance.state() == at_version.state()
            checked += 1
            kinds.add(type(event).__qualname__.rpartition(".")[2])
    assert checked > 60
    assert kinds >= EVERY_EVENT, EVERY_EVENT - kinds


def test_read_state_never_carries_full_personal_data(
    memory_app: GrievanceApp, clock: FakeClock
) -> None:
    scenario = run_scenario(memory_app, clock)
    for grievance_id in scenario.ids.values():
        folded: Folded | None = None
        for event in memory_app.events.get(grievance_id):
            folded = fold(folded, event)
        assert folded is not None
        text = repr(read_state(folded))
        assert "13812345678" not in text and "张秀英" not in text
        assert "问题依旧" not in text  # the citizen's comment at the callback
        assert read_state(folded)["citizen_phone"] in ("138****5678", "139****1111")


def test_an_event_before_its_received_is_refused(
    memory_app: GrievanceApp, clock: FakeClock
) -> None:
    ids = run_scenario(memory_app, clock).ids
    _received, classified, *_ = memory_app.events.get(ids["closed"])
    with pytest.raises(ValueError, match="before its Received"):
        fold(None, classified)
