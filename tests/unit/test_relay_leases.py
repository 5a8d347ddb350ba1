"""Lease mode of the relay (``--partitions N``): advisory-lock leases on PostgreSQL,
fair sharing between relays, takeover when one goes away; every partition on SQLite."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from closeloop.postgres import AdvisoryLeases, partition_leases
from closeloop.settings import Settings
from domain.application import GrievanceApp
from tests.conftest import OPERATOR, make_grievance, pg_url
from tests.support.workflows import FakeClient
from workflows.relay import AllPartitions, LeasedRelay, tracking_recorder

MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture
def pg_settings(tmp_path: Path, pg_schema: str) -> Settings:
    return Settings(var_dir=tmp_path, database_url=pg_url(pg_schema))


@pytest.fixture
def pg_env(pg_settings: Settings) -> dict[str, str]:
    return pg_settings.event_store_env()


@pytest.fixture
def pg_app(pg_env: dict[str, str]) -> Iterator[GrievanceApp]:
    app = GrievanceApp(dict(pg_env))
    yield app
    app.close()


def dispatch(app: GrievanceApp) -> str:
    gid = make_grievance(app)
    app.classify_grievance(gid, OPERATOR, category="PM01")
    app.dispatch_grievance(gid, OPERATOR)
    return f"grievance-{gid}"


def leased(app: GrievanceApp, env: dict[str, str], client: FakeClient, leases: Any) -> LeasedRelay:
    async def connect() -> Any:
        return client

    return LeasedRelay(
        app,
        tracking_recorder(env),
        connect,
        leases,
        task_queue="tq",
        lease_interval=0.05,
        poll_interval=0.02,
    )


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_single_machine_stores_own_every_partition(tmp_path: Path) -> None:
    leases = partition_leases(Settings(var_dir=tmp_path, database_url=None), 3)
    assert isinstance(leases, AllPartitions)
    assert leases.refresh() == frozenset({0, 1, 2})


def test_advisory_leases_share_fairly_and_fail_over(pg_settings: Settings) -> None:
    assert isinstance(partition_leases(pg_settings, 4), AdvisoryLeases)
    a = AdvisoryLeases(pg_settings, 4)
    b = AdvisoryLeases(pg_settings, 4)
    try:
        assert a.refresh() == {0, 1, 2, 3}  # alone: everything
        assert b.refresh() == set()  # all held by a
        assert a.refresh() == {0, 1}  # two relays now: a keeps its share, frees the rest
        assert b.refresh() == {2, 3}
        assert a.refresh() == {0, 1} and b.refresh() == {2, 3}  # stable
        # Another schema (another deployment) has its own keys.
        elsewhere = pg_settings.model_copy(update={"database_url": pg_url("elsewhere")})
        other = AdvisoryLeases(elsewhere, 4)
        assert other.refresh() == {0, 1, 2, 3}
        other.close()
        a.close()  # a relay dies: its connection closes, PostgreSQL frees its locks
        # The server ends the closed session's backend asynchronously: poll, bounded.
        deadline = time.monotonic() + 10
        while b.refresh() != {0, 1, 2, 3}:
            assert time.monotonic() < deadline, "the survivor never took every partition"
            time.sleep(0.05)
    finally:
        a.close()
        b.close()


async def test_two_leased_relays_deliver_each_grievance_once_and_take_over(
    pg_app: GrievanceApp, pg_env: dict[str, str], pg_settings: Settings
) -> None:
    first, second = FakeClient(), FakeClient()
    relay_a = leased(pg_app, pg_env, first, AdvisoryLeases(pg_settings, 4))
    relay_b = leased(pg_app, pg_env, second, AdvisoryLeases(pg_settings, 4))
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(relay_a.run(stop_a))
    task_b = asyncio.create_task(relay_b.run(stop_b))
    try:
        await until(lambda: len(relay_a.held) == 2 == len(relay_b.held), 5, "a fair split")
        assert relay_a.held.isdisjoint(relay_b.held)
        wanted = {dispatch(pg_app) for _ in range(12)}

        def delivered() -> set[str]:
            return {wid for wid, _ in first.calls} | {wid for wid, _ in second.calls}

        await until(lambda: delivered() == wanted, 10, "every grievance relayed")
        # Each grievance went through exactly one relay, once.
        sent = [wid for wid, _ in first.calls + second.calls]
        assert sorted(sent) == sorted(wanted)
        assert first.calls and second.calls

        # Relay a stops (its leases go with it): b relays everything new.
        stop_a.set()
        await task_a
        await until(lambda: len(relay_b.held) == 4, 5, "b to take over a's partitions")
        before = len(first.calls)
        more = {dispatch(pg_app) for _ in range(8)}
        await until(lambda: more <= {wid for wid, _ in second.calls}, 10, "b relaying all")
        assert len(first.calls) == before
        sent = [wid for wid, _ in first.calls + second.calls]
        assert sorted(sent) == sorted(wanted | more)
        # The positions are the shared per-partition tracking keys; each moves just after
        # its batch's signals were accepted.
        end = pg_app.recorder.max_notification_id()
        await until(
            lambda: all(r.position() == end for r in relay_b.relays.values()),
            5,
            "every partition's position to reach the end of the log",
        )
        assert {r.tracking_key for r in relay_b.relays.values()} == {
            f"Grievances/relay-{i}of4" for i in range(4)
        }
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.gather(task_a, task_b)


async def test_leased_relay_in_memory_relays_all_partitions(memory_app: GrievanceApp) -> None:
    client = FakeClient()
    relay = leased(memory_app, MEMORY, client, AllPartitions(2))
    # In memory the tracking recorder is per instance: share one between partitions.
    wanted = {dispatch(memory_app) for _ in range(6)}
    await relay.refresh()
    assert relay.held == {0, 1}
    for r in relay.relays.values():
        await r.run_once()
    assert sorted(wid for wid, _ in client.calls) == sorted(wanted)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partition", "1/2", "--partitions", "2"], "exclude each other"),
        (["--partitions", "0"], "need 0 <= i < N"),
        (["--partitions", "2", "--lease-interval", "0"], "--lease-interval must be positive"),
    ],
)
def test_cli_refuses_bad_lease_options(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeloop.commands import relay as relay_command
    from closeloop.settings import get_settings

    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("CLOSELOOP_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    parser = argparse.ArgumentParser()
    relay_command.register(parser.add_subparsers())
    parsed = parser.parse_args(["relay", *args])
    with pytest.raises(SystemExit) as raised:
        parsed.handler(parsed)
    assert message in str(raised.value)
    get_settings.cache_clear()
