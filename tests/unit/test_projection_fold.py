"""The read models' fold is the aggregate itself, version by version, and what the views
are given of it never carries the citizen's personal data."""

from __future__ import annotations

from typing import Any

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


def test_grievance_states_fold_again_from_the_log_what_memory_lost_or_got_wrong(
    memory_app: GrievanceApp, clock: FakeClock
) -> None:
    """The views' one copy of each grievance: kept in memory up to its capacity; a
    grievance evicted, or held at another version than a batch starts from (a batch that
    failed after folding), is folded again from the event store, and equals the
    aggregate at that version."""
    from projections.views import GrievanceStates, MissingStateError

    every = run_scenario(memory_app, clock).ids.values()
    ids = sorted(every, key=lambda gid: -len(list(memory_app.events.get(gid))))[:3]
    loads: list[tuple[Any, int]] = []

    def load(grievance_id: Any, version: int) -> list[Any]:
        loads.append((grievance_id, version))
        return list(memory_app.events.get(grievance_id, lte=version))

    states = GrievanceStates(load, capacity=2)
    events = {gid: list(memory_app.events.get(gid)) for gid in ids}
    assert all(len(e) >= 4 for e in events.values())
    # Each grievance's first two events, one batch each: nothing to load yet.
    for gid in ids:
        first, second = events[gid][:2]
        assert states.before({str(gid): first}) == {}
        folded = fold(fold(None, first), second)
        states.keep({str(gid): folded})
    assert loads == []
    # Capacity 2: the first grievance was evicted and comes back from the log.
    third = events[ids[0]][2]
    found = states.before({str(ids[0]): third})[str(ids[0])]
    assert loads == [(ids[0], 2)] and states.reloaded == 1
    at_two = memory_app.get_grievance(ids[0], version=2)
    assert found.grievance.state() == at_two.state()
    # Kept ones are taken from memory at the right version...
    kept = states.before({str(ids[2]): events[ids[2]][2]})[str(ids[2])]
    assert len(loads) == 1 and kept.grievance.version == 2
    # ...and one folded past what committed (a failed batch) is not trusted.
    fold(kept, events[ids[2]][2])
    again = states.before({str(ids[2]): events[ids[2]][2]})[str(ids[2])]
    assert loads[-1] == (ids[2], 2) and again.grievance.version == 2
    # Without an event store, a batch starting mid-grievance is refused, not guessed.
    with pytest.raises(MissingStateError):
        GrievanceStates().before({str(ids[1]): events[ids[1]][2]})
