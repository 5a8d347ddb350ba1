"""The same application tests on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from domain.application import GrievanceApp
from domain.errors import ConcurrentWriteError
from domain.model import SYSTEM, Status
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, make_grievance
from tests.support.domain import dispatched_case, resolved_case, work_through


def reopen_app(app: GrievanceApp, store_env: dict[str, str], clock: FakeClock) -> GrievanceApp:
    """A second application on the same store (the memory store lives in its app)."""
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.popo":
        return app
    return GrievanceApp(store_env, clock=clock)


def test_whole_loop_round_trips_through_the_store(
    app: GrievanceApp, store_env: dict[str, str], clock: FakeClock
) -> None:
    case = resolved_case(app, "SF02")
    app.record_feedback(
        case.id,
        OPERATOR,
        contacted=True,
        resolved=False,
        satisfaction="unsatisfied",
        comment="问题依旧",
    )
    clock.advance(hours=5)
    work_through(case)
    app.record_feedback(case.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    live = app.get_grievance(case.id)
    assert live.status is Status.CLOSED and live.reopen_count == 1

    other = reopen_app(app, store_env, clock)
    rebuilt = other.get_grievance(case.id)
    assert rebuilt.state() == live.state()
    assert other.get_by_number(live.number).id == case.id
    names = [type(e).__name__ for e in other.history(case.id)]
    assert names[:3] == ["Received", "Classified", "Dispatched"]
    assert names[-2:] == ["FeedbackRecorded", "Closed"]
    assert names.count("Resolved") == 2 and names.count("Reopened") == 1


def test_notification_log_holds_every_event_in_order(app: GrievanceApp) -> None:
    first = make_grievance(app)
    second = dispatched_case(app, "PM01").id
    events = list(app.iter_events())
    grievance_events = [e for e in events if e.originator_id in (first, second)]
    assert [type(e).__name__ for e in grievance_events] == [
        "Received",
        "Received",
        "Classified",
        "Dispatched",
    ]
    # Each Received is saved with its case-number claim, atomically.
    assert sum(type(e).__name__ == "Claimed" for e in events) == 2
    ids = [n.id for n in app.recorder.select_notifications(start=1, limit=100)]
    assert ids == sorted(ids) and len(ids) == len(events)


def test_time_travel_by_version(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    app.sign_for(lead, case.dept(lead))
    assert app.get_grievance(case.id, version=2).status is Status.CLASSIFIED
    assert app.get_grievance(case.id, version=3).status is Status.DISPATCHED
    assert app.get_grievance(case.id).status is Status.IN_PROGRESS


def test_deadlines_and_enums_survive_transcoding(
    app: GrievanceApp, store_env: dict[str, str], clock: FakeClock
) -> None:
    case = dispatched_case(app, "PM02")
    lead = case.aid()
    app.sign_for(lead, case.dept(lead))
    due = case.g.assignment(lead).resolve_deadline
    assert due is not None
    app.request_extension(lead, case.dept(lead), new_deadline=due + timedelta(days=2), reason="x")
    app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=True)
    rebuilt = reopen_app(app, store_env, clock).get_grievance(case.id)
    assignment = rebuilt.assignment(lead)
    assert assignment.resolve_deadline == due + timedelta(days=2)
    assert assignment.resolve_deadline.tzinfo is not None
    assert rebuilt.status is Status.IN_PROGRESS  # an enum again, not a bare string


class BarrierApp(GrievanceApp):
    """Holds every save at a barrier so two writers really race on one version."""

    barrier: threading.Barrier

    def _save(self, *aggregates):  # type: ignore[no-untyped-def]
        self.barrier.wait(timeout=10)
        super()._save(*aggregates)


def test_two_writers_one_wins_the_other_gets_a_conflict_and_nothing_is_lost(
    store_env: dict[str, str], clock: FakeClock
) -> None:
    BarrierApp.barrier = threading.Barrier(1)  # no waiting while setting up
    setup = GrievanceApp(store_env, clock=clock)
    writers = [BarrierApp(store_env, clock=clock) for _ in range(2)]
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.popo":
        writers = [BarrierApp(store_env, clock=clock)] * 2  # one in-memory store, two threads
        setup = writers[0]
    case = dispatched_case(setup, "PM01")
    lead = case.aid()
    before = setup.get_grievance(case.id).version
    commands: list[Callable[[GrievanceApp], object]] = [
        lambda a: a.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead, command_id="urge-1"),
        lambda a: a.escalate(case.id, SUPERVISOR, level=1, reason="督办", command_id="esc-1"),
    ]
    BarrierApp.barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]
    # Both load the stored events (a loser on a warm copy would be run again on a fresh
    # load, and meet the barrier alone).
    for writer in writers:
        writer.warm.evict(case.id)

    def run(index: int) -> None:
        try:
            outcomes[index] = commands[index](writers[index])
        except ConcurrentWriteError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    conflicts = [o for o in outcomes if isinstance(o, ConcurrentWriteError)]
    assert len(conflicts) == 1, outcomes
    loser = outcomes.index(conflicts[0])
    after = setup.get_grievance(case.id)
    assert after.version == before + 1

    # The refused writer retries (as the API client or the activity would): nothing is lost.
    BarrierApp.barrier = threading.Barrier(1)
    commands[loser](writers[loser])
    final = setup.get_grievance(case.id)
    assert final.version == before + 2
    assert {"urge-1", "esc-1"} <= set(final.applied_commands)


def test_concurrent_intake_gives_unique_case_numbers(
    app: GrievanceApp, store_env: dict[str, str], clock: FakeClock
) -> None:
    results: list[UUID] = []
    lock = threading.Lock()

    # Applications are built before the race: each creates its tables on start.
    writers = [reopen_app(app, store_env, clock) for _ in range(4)]

    def file(n: int) -> None:
        writer = writers[n]
        for i in range(5):
            gid = make_grievance(writer, command_id=f"intake-{n}-{i}")
            with lock:
                results.append(gid)

    threads = [threading.Thread(target=file, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 20
    numbers = {app.get_grievance(g).number for g in results}
    assert len(numbers) == 20
