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
