"""The read models on PostgreSQL: the same checks as on SQLite, in a fresh schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.application import GrievanceApp
from projections.runner import catch_up
from tests.conftest import FakeClock
from tests.support.projection_checks import (
    check_crash_mid_batch,
    check_no_personal_data,
    check_rebuild_equals_incremental,
    check_rows,
    check_single_event_projection,
    check_two_projectors_race,
)
from tests.support.projections import dump_tables, postgres_env, run_scenario

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(pg_schema: str) -> dict[str, str]:
    return postgres_env(pg_schema)


@pytest.fixture
def pg_app(env: dict[str, str], clock: FakeClock) -> Iterator[GrievanceApp]:
    application = GrievanceApp(env, clock=clock)
    yield application
    application.close()


def test_events_in_rows_out(env: dict[str, str], pg_app: GrievanceApp, clock: FakeClock) -> None:
    scenario = run_scenario(pg_app, clock)
    assert catch_up(env) > 0
    assert catch_up(env) == 0
    check_rows(env, pg_app, clock, scenario)
    check_no_personal_data(dump_tables(env))


def test_rebuild_equals_incremental(
    env: dict[str, str], pg_app: GrievanceApp, clock: FakeClock
) -> None:
    check_rebuild_equals_incremental(env, pg_app, clock)


def test_crash_mid_batch(env: dict[str, str], pg_app: GrievanceApp, clock: FakeClock) -> None:
    check_crash_mid_batch(env, pg_app, clock)


def test_two_projectors_at_once(
    env: dict[str, str], pg_app: GrievanceApp, clock: FakeClock
) -> None:
    check_two_projectors_race(env, pg_app, clock)


def test_projection_api(env: dict[str, str], pg_app: GrievanceApp) -> None:
    check_single_event_projection(env, pg_app)


def test_follower_wakes_on_notify(
    env: dict[str, str], pg_app: GrievanceApp, clock: FakeClock
) -> None:
    """On PostgreSQL the idle follower is woken by NOTIFY, not by its (slow) poll."""
    import threading
    import time

    from projections.runner import Projector
    from tests.conftest import make_grievance

    make_grievance(pg_app)
    with Projector(env) as projector:
        stop = threading.Event()
        thread = threading.Thread(target=projector.run_forever, args=(stop, 60.0))
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while min(projector.positions().values()) == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)  # idle now, polling only every 60 s
            make_grievance(pg_app)
            target = int(pg_app.recorder.max_notification_id() or 0)
            started = time.monotonic()
            while set(projector.positions().values()) != {target}:
                assert time.monotonic() - started < 5, projector.positions()
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=15)
        assert not thread.is_alive()
