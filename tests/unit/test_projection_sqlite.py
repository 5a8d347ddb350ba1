"""The read models on SQLite: rows out, rebuild, a crash in the middle of a batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.application import GrievanceApp
from projections.runner import catch_up, rebuild
from tests.conftest import FakeClock
from tests.support.api import sqlite_env as api_sqlite_env
from tests.support.projection_checks import (
    check_crash_mid_batch,
    check_follow_survives_a_failure,
    check_no_personal_data,
    check_rebuild_equals_incremental,
    check_rows,
    check_single_event_projection,
    check_two_projectors_race,
)
from tests.support.projections import dump_tables, run_more_paths, run_scenario, sqlite_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return sqlite_env(tmp_path)


@pytest.fixture
def sqlite_app(env: dict[str, str], clock: FakeClock) -> Iterator[GrievanceApp]:
    application = GrievanceApp(env, clock=clock)
    yield application
    application.close()


def test_events_in_rows_out(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    scenario = run_scenario(sqlite_app, clock)
    assert catch_up(env) > 0
    assert catch_up(env) == 0  # nothing pending: nothing applied twice
    check_rows(env, sqlite_app, clock, scenario)
    check_no_personal_data(dump_tables(env))


def test_rebuild_equals_incremental(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    check_rebuild_equals_incremental(env, sqlite_app, clock)


def test_crash_mid_batch(env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock) -> None:
    check_crash_mid_batch(env, sqlite_app, clock)


def test_two_projectors_at_once(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    check_two_projectors_race(env, sqlite_app, clock)


def test_projection_api(env: dict[str, str], sqlite_app: GrievanceApp) -> None:
    check_single_event_projection(env, sqlite_app)


def test_default_file_beside_events(tmp_path: Path, clock: FakeClock) -> None:
    env = api_sqlite_env(tmp_path)  # no PROJECTIONS_SQLITE_DBNAME: the default place
    app = GrievanceApp(env, clock=clock)
    try:
        run_scenario(app, clock)
        catch_up(env)
    finally:
        app.close()
    assert (tmp_path / "projections.sqlite").exists()


def test_memory_store_is_refused() -> None:
    with pytest.raises(ValueError, match="durable event store"):
        catch_up({"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_follow_survives_a_failed_batch(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    check_follow_survives_a_failure(env, sqlite_app, clock)


def test_every_list_pages_through_with_its_cursor(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    """Paging one row at a time gives exactly the rows of one big page, in order."""
    from projections.queries import ReadModels
    from tests.support.domain import dispatched_case, resolved_case

    for _ in range(3):
        dispatched_case(sqlite_app, "PM01")
        clock.advance(minutes=7)
        resolved_case(sqlite_app, "PM01")
        clock.advance(minutes=7)
    catch_up(env)
    models = ReadModels.from_env(env)
    now = clock.now

    def walk(read: Any) -> list[dict[str, Any]]:
        whole = read(cursor=None, limit=50)
        assert whole.next_cursor is None
        paged, cursor = [], None
        while True:
            page = read(cursor=cursor, limit=1)
            paged.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return paged if paged == whole.items else pytest.fail("pages differ")

    grievances = walk(lambda **kw: models.list_grievances(now=now, **kw))
    assignments = walk(
        lambda **kw: models.list_assignments(department="st.xueyuanlu", now=now, **kw)
    )
    callbacks = walk(lambda **kw: models.list_callbacks(now=now, **kw))
    assert len(grievances) == 6 and len(assignments) == 3 and len(callbacks) == 3
    received = [g["received_at"] for g in grievances]
    assert received == sorted(received, reverse=True)  # newest first
    dues = [a["due"] for a in assignments]
    assert dues == sorted(dues)  # soonest deadline first
    ends = [c["window_ends_at"] for c in callbacks]
    assert ends == sorted(ends)


def test_per_view_state_table_of_an_older_closeloop_is_dropped_and_the_view_carries_on(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    """closeloop before 2026-12 kept a copy of every grievance per view (``<view>_state``).
    Opening the view drops that table; its rows and position stay, and what follows is
    projected as a fresh rebuild would (the grievances come from the event store)."""
    from projections.db import open_datastore

    run_scenario(sqlite_app, clock)
    catch_up(env)
    datastore, dialect = open_datastore(env)
    try:
        with datastore.transaction(commit=True) as c:
            c.execute(
                dialect.sql(
                    "CREATE TABLE {t} (grievance_id TEXT PRIMARY KEY, state TEXT NOT NULL)",
                    t="hotspots_state",
                )
            )
    finally:
        datastore.close()
    run_more_paths(sqlite_app, clock)
    assert catch_up(env) > 0
    datastore, dialect = open_datastore(env)
    try:
        with datastore.transaction(commit=False) as c:
            c.execute("SELECT name FROM sqlite_master WHERE name LIKE '%_state'")
            assert c.fetchall() == []
    finally:
        datastore.close()
    incremental = dump_tables(env)
    rebuild(env)
    assert dump_tables(env) == incremental


def test_department_lateness_from_the_deadline_read_model_equals_a_full_replay(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock
) -> None:
    """The deadline read model's records, with the grievances in the log past its
    position judged from their events, equal a replay of every grievance: lateness is
    the same (open deadlines judged at the asking instant)."""
    from datetime import timedelta

    from projections.deadlines import row_record
    from projections.queries import ReadModels
    from tests.support.projections import run_more_paths

    run_scenario(sqlite_app, clock)
    catch_up(env)
    run_more_paths(sqlite_app, clock)  # recorded after the read model's position
    clock.advance(days=20)
    now = clock.now
    read = ReadModels.from_env(env)
    try:
        departments = set(sqlite_app.policies.directory.departments)
        judged = 0
        for code in sorted(departments):
            start, end = now - timedelta(days=60), now
            rows, after = read.department_deadlines(code, start, end, now)
            assert after > 0
            recorded = [row_record(row) for row in rows]
            full = sqlite_app.department_lateness(code, start, end, now)
            fast = sqlite_app.department_lateness(
                code, start, end, now, recorded=recorded, after=after
            )
            assert fast == full, code
            judged += len(full)
        assert judged > 0
    finally:
        read.close()


def test_kpis_as_of_reads_the_counts_by_recording_instant_or_replays_only_up_to_it(
    env: dict[str, str], sqlite_app: GrievanceApp, clock: FakeClock, monkeypatch: Any
) -> None:
    """``kpis_as_of`` equals replaying exactly the events recorded up to ``as_of``: summed
    from ranking_counts (counts by recording instant) when that model has read every
    event up to ``as_of``, with no replay; replayed (reading the log only a little past
    ``as_of``) when the model lags."""
    from datetime import date, timedelta

    from projections import replay
    from projections.queries import ReadModels
    from tests.support.projections import run_more_paths

    run_scenario(sqlite_app, clock)
    # as_of is about when events were recorded (their timestamp, the real clock).
    middle = max(e.timestamp for e in sqlite_app.iter_all_events())
    run_more_paths(sqlite_app, clock)
    catch_up(env)
    period = {"date_from": date(2000, 1, 1), "date_to": date(2100, 1, 1)}
    tz = sqlite_app.policies.calendar.tz

    def replayed(as_of: Any) -> list[dict[str, Any]]:
        events = [e for e in sqlite_app.iter_all_events() if e.timestamp <= as_of]
        return replay.kpis_from_events(events, tz=tz, **period)

    read = ReadModels.from_env(env)
    try:
        later = max(e.timestamp for e in sqlite_app.iter_all_events()) + timedelta(microseconds=1)
        live = read.kpis(**period)
        assert live and replay.kpis_as_of(sqlite_app, read, later, **period) == live
        assert replayed(later) == live
        with monkeypatch.context() as patched:

            def no_replay(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError("replayed although the read model had every event")

            patched.setattr(replay, "kpis_from_events", no_replay)
            past = replay.kpis_as_of(sqlite_app, read, middle, **period)
            assert replay.kpis_as_of(sqlite_app, read, later, **period) == live
        assert past == replayed(middle) != live
        run_more_paths(sqlite_app, clock)  # the read model now lags
        assert replay.kpis_as_of(sqlite_app, read, later, **period) == live
    finally:
        read.close()
