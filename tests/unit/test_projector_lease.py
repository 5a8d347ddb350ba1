"""Standby projectors on PostgreSQL: one leader per set of projections by advisory lock,
a standby takes over when the leader goes away, and positions never go past the log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from closeloop.postgres import projector_lease
from closeloop.settings import Settings
from domain.application import GrievanceApp
from projections.runner import Projector
from tests.conftest import OPERATOR, make_grievance, pg_url


@pytest.fixture
def pg_settings(tmp_path: Path, pg_schema: str) -> Settings:
    return Settings(var_dir=tmp_path, database_url=pg_url(pg_schema))


@pytest.fixture
def pg_env(pg_settings: Settings) -> dict[str, str]:
    return pg_settings.event_store_env()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def file_some(app: GrievanceApp, n: int) -> None:
    for _ in range(n):
        gid = make_grievance(app)
        app.classify_grievance(gid, OPERATOR, category="PM01")
        app.dispatch_grievance(gid, OPERATOR)


def test_one_leader_and_a_standby_that_takes_over(
    pg_env: dict[str, str], pg_settings: Settings
) -> None:
    app = GrievanceApp(dict(pg_env))
    one, two = Projector(pg_env), Projector(pg_env)
    lease_one = projector_lease(pg_settings, sorted(one.views))
    lease_two = projector_lease(pg_settings, sorted(two.views))
    assert lease_one is not None and lease_two is not None
    assert lease_one.key == lease_two.key
    stops = {"one": threading.Event(), "two": threading.Event()}
    threads = {
        "one": threading.Thread(
            target=one.run_forever,
            args=(stops["one"], 0.02),
            kwargs={"lease": lease_one, "lease_interval": 0.05},
        ),
        "two": threading.Thread(
            target=two.run_forever,
            args=(stops["two"], 0.02),
            kwargs={"lease": lease_two, "lease_interval": 0.05},
        ),
    }
    try:
        for thread in threads.values():
            thread.start()
        wait_until(lambda: lease_one._held or lease_two._held, 5, "a leader")
        assert not (lease_one._held and lease_two._held)
        leader, standby = ("one", "two") if lease_one._held else ("two", "one")
        file_some(app, 5)
        end = app.recorder.max_notification_id()
        wait_until(lambda: set(one.positions().values()) == {end}, 10, "the leader to project")

        # The leader stops (its lock goes with its connection): the standby takes over.
        stops[leader].set()
        threads[leader].join(10)
        (lease_one if leader == "one" else lease_two).close()
        file_some(app, 5)
        end = app.recorder.max_notification_id()
        standby_lease = lease_two if standby == "two" else lease_one
        wait_until(lambda: standby_lease._held, 5, "the standby to take the lease")
        wait_until(lambda: set(two.positions().values()) == {end}, 10, "the standby to project")
    finally:
        for stop in stops.values():
            stop.set()
        for thread in threads.values():
            thread.join(10)
        lease_one.close()
        lease_two.close()
        one.close()
        two.close()
        app.close()


def test_no_lease_on_sqlite(tmp_path: Path) -> None:
    assert projector_lease(Settings(var_dir=tmp_path, database_url=None), ["grievances"]) is None
