"""Horizontal scale on one machine, with real processes: a Temporal dev server and a
PostgreSQL-backed closeloop with 2 API processes, 2 workers, 2 relays (lease mode,
``--partitions 4``) and 2 projectors, ``drill`` SLA profile. Two simulators drive the two
APIs; midway one relay and the leading projector are SIGKILLed and the survivors must
take over their share in bounded time. Then: nothing lost, nothing applied twice, every
workflow in the state of its grievance, every projection equal to a rebuild from zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from closeloop.dev.embedded import StackConfig, StackPorts, component_specs, ensure_dev_tokens
from closeloop.dev.simulator import Behaviour, SimConfig, Simulator
from closeloop.dev.supervisor import ComponentSpec, Supervisor, free_port, python_cli
from closeloop.postgres import AdvisoryLeases, projector_lease
from closeloop.settings import Settings
from projections.runner import Projector
from tests.conftest import PG_DB, PG_HOST, PG_PORT, PG_USER, pg_url
from tests.e2e.test_whole_loop import assert_applied_once
from tests.support.stack import wait_for
from workflows.relay import RELAYED_EVENTS, tracking_recorder

pytestmark = [pytest.mark.temporal, pytest.mark.postgres]

PARTITIONS = 4
TAKEOVER_LIMIT = 15.0
FINAL = {"closed", "rejected", "merged", "withdrawn"}


def advisory_holders(keys: list[int]) -> dict[int, int]:
    """Which PostgreSQL backend holds each of these single-key advisory locks."""
    wanted = {((k & (2**64 - 1)) >> 32, k & 0xFFFFFFFF): k for k in keys}
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=PG_USER, autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT pid, classid::bigint, objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
        ).fetchall()
    return {wanted[(c, o)]: pid for pid, c, o in rows if (c, o) in wanted}


def api_spec(name: str, port: int, env: dict[str, str]) -> ComponentSpec:
    def ready() -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0).status_code == 200

    return ComponentSpec(
        name,
        python_cli("api", "--port", str(port), "--host", "127.0.0.1"),
        env=env,
        ready=ready,
        ready_timeout=60,
    )


@pytest.fixture
def cluster(tmp_path: Path, pg_schema: str) -> Iterator[dict[str, Any]]:
    url = pg_url(pg_schema)
    ports = StackPorts.choose(api=None, temporal=None, ui=None)
    config = StackConfig(
        var_dir=tmp_path,
        ports=ports,
        sla_profile="drill",
        ui=False,
        # Nine processes share one PostgreSQL (max_connections 100 on CI): size the
        # pools for that, as deploy/README's pool arithmetic does for production.
        extra_env={
            "CLOSELOOP_DATABASE_URL": url,
            "CLOSELOOP_RATE_LIMITS": "false",  # a burst of load from one address and token
            "CLOSELOOP_DB_POOL_SIZE": "2",
            "CLOSELOOP_DB_MAX_OVERFLOW": "2",
        },
    )
    settings = Settings(
        var_dir=tmp_path,
        sla_profile="drill",
        database_url=url,
        db_pool_size=2,
        db_max_overflow=2,
        temporal_address=config.temporal_address,
    )
    tokens = ensure_dev_tokens(settings)
    env = config.child_env()
    specs = {spec.name: spec for spec in component_specs(config)}
    second_api = free_port(None, avoid=[ports.api, ports.temporal, ports.temporal_http])
    # Create the event store's and read models' tables once, before the processes race.
    watcher = Projector(settings.event_store_env())
    supervisor = Supervisor(tmp_path / "logs")
    try:
        supervisor.start(specs["temporal"])
        supervisor.start(dataclasses.replace(specs["worker"], name="worker-a"))
        supervisor.start(ComponentSpec("worker-b", specs["worker"].argv, env=env), wait=False)
        supervisor.start(api_spec("api-a", ports.api, env), wait=False)
        supervisor.start(api_spec("api-b", second_api, env), wait=False)
        for name in ("worker-b", "api-a", "api-b"):
            supervisor.wait_ready(name)
        yield {
            "supervisor": supervisor,
            "config": config,
            "settings": settings,
            "env": env,
            "store_env": settings.event_store_env(),
            "tokens": tokens,
            "urls": [config.api_url, f"http://127.0.0.1:{second_api}"],
            "watcher": watcher,
        }
    finally:
        supervisor.stop_all(timeout=10)
        watcher.close()


def logs(supervisor: Supervisor, *names: str, lines: int = 30) -> str:
    out = []
    for name in names:
        path = supervisor.log_dir / f"{name}.log"
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            out.append(f"--- {name}\n" + "\n".join(text))
    return "\n".join(out)


def test_two_of_everything_share_the_work_and_survive_a_kill(cluster: dict[str, Any]) -> None:
    sup: Supervisor = cluster["supervisor"]
    env: dict[str, str] = cluster["env"]
    store_env: dict[str, str] = cluster["store_env"]
    tokens: dict[str, Any] = cluster["tokens"]
    relay_argv = python_cli("relay", "--partitions", str(PARTITIONS), "--lease-interval", "1")
    partition_keys = AdvisoryLeases(cluster["settings"], PARTITIONS)._keys
    tracking = tracking_recorder(store_env)
    watcher: Projector = cluster["watcher"]  # reads positions and the log; never projects
    lease = projector_lease(cluster["settings"], sorted(watcher.views))
    assert lease is not None

    def relay_pids() -> set[int]:
        return set(advisory_holders(partition_keys).values())

    # Relay a takes every partition, relay b joins: they split them 2/2.
    sup.start(ComponentSpec("relay-a", relay_argv, env=env), wait=False)
    wait_for(lambda: len(advisory_holders(partition_keys)) == PARTITIONS, 30, "relay a's leases")
    sup.start(ComponentSpec("relay-b", relay_argv, env=env), wait=False)
    held = wait_for(
        lambda: (
            (h := advisory_holders(partition_keys))
            and len(h) == PARTITIONS
            and len(set(h.values())) == 2
            and h
        ),
        30,
        "the relays to share the partitions",
        on_timeout=lambda: logs(sup, "relay-a", "relay-b"),
    )
    assert sorted(list(held.values()).count(pid) for pid in set(held.values())) == [2, 2]
    # Projector a leads (it started first), projector b stands by.
    sup.start(ComponentSpec("projector-a", python_cli("project"), env=env), wait=False)
    wait_for(lambda: advisory_holders([lease.key]), 30, "projector a to lead")
    leader_backend = advisory_holders([lease.key])[lease.key]
    sup.start(ComponentSpec("projector-b", python_cli("project"), env=env), wait=False)

    sims = [
        Simulator(
            SimConfig(
                base_url=url,
                operator_token=tokens["operator"],
                supervisor_token=tokens["supervisor"],
                department_tokens=dict(tokens["departments"]),
                rate=1.2,
                duration=20.0,
                seed=100 + i,
                drain=35.0,
                behaviour=Behaviour(think=0.8, late=5.0),
            )
        )
        for i, url in enumerate(cluster["urls"])
    ]
    figures: dict[str, float] = {}

    def positions_past(mark: int) -> bool:
        relays = [
            tracking.max_tracking_id(f"Grievances/relay-{i}of{PARTITIONS}") or 0
            for i in range(PARTITIONS)
        ]
        return min(relays) > mark

    def projected_past(mark: int) -> bool:
        return min(watcher.positions().values()) > mark

    def crash_drill() -> None:
        wait_for(lambda: sum(s.tally.filed for s in sims) >= 12, 30, "a dozen grievances filed")
        mark = watcher.max_notification_id()
        sup.kill("relay-a")
        sup.kill("projector-a")
        killed = time.monotonic()
        wait_for(
            lambda: positions_past(mark),
            TAKEOVER_LIMIT,
            "relay b to relay every partition past the kill",
            on_timeout=lambda: logs(sup, "relay-b"),
        )
        figures["relay_takeover_s"] = time.monotonic() - killed
        assert len(relay_pids()) == 1 and len(advisory_holders(partition_keys)) == PARTITIONS
        wait_for(
            lambda: projected_past(mark),
            TAKEOVER_LIMIT,
            "projector b to project past the kill",
            on_timeout=lambda: logs(sup, "projector-b"),
        )
        figures["projector_takeover_s"] = time.monotonic() - killed
        assert advisory_holders([lease.key]).get(lease.key) not in (None, leader_backend)

    async def drive() -> list[Any]:
        drill = asyncio.create_task(asyncio.to_thread(crash_drill))
        tallies = await asyncio.gather(*(sim.run() for sim in sims))
        await drill
        return list(tallies)

    started = time.monotonic()
    tallies = asyncio.run(drive())
    figures["simulation_s"] = time.monotonic() - started
    for tally in tallies:
        summary = tally.summary()
        assert tally.filed > 5, summary
        assert tally.server_errors == tally.transport_errors == tally.lost == 0, summary
        assert tally.client_errors == 0, summary
    ids = sorted({gid for sim in sims for gid in sim.ids})
    assert len(ids) == sum(t.filed for t in tallies)

    # Every grievance, through both APIs; its history applied once; its workflow in step.
    headers = {"Authorization": f"Bearer {tokens['supervisor']}"}
    clients = [httpx.Client(base_url=url, timeout=30.0, headers=headers) for url in cluster["urls"]]
    try:
        expected: dict[str, tuple[str, int]] = {}  # the dispatched ones
        for n, gid in enumerate(ids):
            for client in clients:
                assert client.get(f"/v1/grievances/{gid}").status_code == 200
            response = clients[n % 2].get(f"/v1/audit/grievances/{gid}/events")
            assert response.status_code == 200, response.text
            events = response.json()["events"]
            assert_applied_once(events)
            assert [e["type"] for e in events].count("Received") == 1
            last = max(e["version"] for e in events if e["type"] in RELAYED_EVENTS)
            status = clients[0].get(f"/v1/grievances/{gid}").json()["status"]
            if "Dispatched" in {e["type"] for e in events}:
                expected[gid] = (status, last)
            # else: ended before any deadline (merged as a duplicate, answered at intake):
            # a workflow starts with the first deadline, so it never had one.
        assert expected, "no grievance was dispatched"
        duplicates = asyncio.run(check_workflows(cluster["settings"], expected))
        figures["duplicate_deliveries_ignored"] = duplicates

        # Freeze (no more writers), let the surviving projector finish, then compare every
        # read model with a rebuild from zero.
        for name in ("api-a", "api-b", "worker-a", "worker-b", "relay-b"):
            sup.stop(name)
        end = watcher.max_notification_id()
        wait_for(
            lambda: min(watcher.positions().values()) == end,
            20,
            "the read models to catch up",
            on_timeout=lambda: logs(sup, "projector-b"),
        )
        sup.stop("projector-b")
        listed = read_model_rows(watcher)
        summary_ids = {str(r[0]) for r in listed["grievance_summary"]}
        assert set(ids) <= summary_ids
        with Projector(store_env) as rebuilder:
            assert rebuilder.rebuild() > 0
        rebuilt = read_model_rows(watcher)
        for table, rows in listed.items():
            assert rows == rebuilt[table], f"{table} differs from a rebuild from zero"
    finally:
        for client in clients:
            client.close()
    print(f"\nhorizontal scale: {len(ids)} grievances, {figures}")
    assert figures["relay_takeover_s"] < TAKEOVER_LIMIT
    assert figures["projector_takeover_s"] < TAKEOVER_LIMIT


async def check_workflows(settings: Settings, expected: dict[str, tuple[str, int]]) -> int:
    """Each workflow applied its grievance's relayed versions once, ends in its status."""
    from temporalio.client import WorkflowExecutionStatus

    from closeloop.temporal import connect_client
    from workflows.grievance import GrievanceWorkflow
    from workflows.messages import workflow_id_for

    client = await connect_client(settings)
    duplicates = 0
    deadline = time.monotonic() + 30
    for gid, (status, version) in expected.items():
        handle = client.get_workflow_handle(workflow_id_for(gid))
        while True:
            state = await handle.query(GrievanceWorkflow.state)
            described = await handle.describe()
            done = described.status == WorkflowExecutionStatus.COMPLETED
            in_step = state.version == version and state.status == status
            if in_step and done == (status in FINAL):
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"workflow of {gid}: version {state.version} status {state.status} "
                    f"completed={done}; grievance at relayed version {version}, {status}"
                )
            await asyncio.sleep(0.2)
        applied = state.applied_versions
        assert applied == sorted(set(applied)), applied  # each version applied once
        duplicates += state.duplicates_ignored
    return duplicates


def read_model_rows(projector: Projector) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    with projector.datastore.transaction(commit=False) as cursor:
        for view in projector.views.values():
            for table in view.tables:
                cursor.execute(f"SELECT * FROM {projector.dialect.table(table)}")
                out[table] = sorted((tuple(row.values()) for row in cursor.fetchall()), key=repr)
    return out
