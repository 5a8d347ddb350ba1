"""The read models on SQLite: rows out, rebuild, a crash in the middle of a batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.application import GrievanceApp
from projections.runner import catch_up
from tests.conftest import FakeClock
from tests.support.projection_checks import (
    check_crash_mid_batch,
    check_follow_survives_a_failure,
    check_no_personal_data,
    check_rebuild_equals_incremental,
    check_rows,
    check_single_event_projection,
    check_two_projectors_race,
)
from tests.support.projections import dump_tables, run_scenario, sqlite_env


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
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
    }
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
