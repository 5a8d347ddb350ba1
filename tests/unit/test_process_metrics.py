"""/metrics of the relay and projector processes: lag in events and seconds, leases,
signals, failures; a store that is down reads as ``..._up 0``, never a failed scrape."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from closeloop.settings import Settings
from closeloop.telemetry import serve_metrics, temporal_runtime
from domain.application import GrievanceApp
from domain.log_age import EventAges
from projections.metrics import projection_lag_collector
from projections.runner import catch_up
from tests.conftest import OPERATOR, FakeClock, make_grievance
from tests.support.api import sqlite_env
from tests.support.workflows import FakeClient, free_port
from workflows.metrics import RelayCollector
from workflows.relay import AllPartitions, LeasedRelay, Relay, tracking_recorder

MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def collect(*collectors: Collector) -> Samples:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return samples_of(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def relay_for(app: GrievanceApp, client: FakeClient, **kwargs: Any) -> Relay:
    async def connect() -> Any:
        return client

    return Relay(app, tracking_recorder(MEMORY), connect, task_queue="tq", **kwargs)


def dispatch(app: GrievanceApp) -> None:
    gid = make_grievance(app)
    app.classify_grievance(gid, OPERATOR, category="PM01")
    app.dispatch_grievance(gid, OPERATOR)


async def test_relay_lag_in_events_and_seconds_then_caught_up(memory_app: GrievanceApp) -> None:
    relay = relay_for(memory_app, FakeClient())
    dispatch(memory_app)
    newest = int(memory_app.recorder.max_notification_id() or 0)
    before = collect(RelayCollector(relay))
    assert value(before, "closeloop_relay_up") == 1
    assert value(before, "closeloop_relay_lag_events", partition="relay") == newest
    assert value(before, "closeloop_relay_lag_seconds", partition="relay") >= 0
    # That figure is always >= 0; with ``now`` given, the age of the oldest pending event:
    (first,) = memory_app.recorder.select_notifications(1, 1)
    at = memory_app.mapper.to_domain_event(first).timestamp.timestamp()
    assert RelayCollector(relay)._lag_seconds(memory_app, 0, newest, at + 7.5) == pytest.approx(7.5)
    assert value(before, "closeloop_relay_partition_held", partition="relay") == 1
    assert value(before, "closeloop_event_log_max_notification_id") == newest

    await relay.run_once()
    after = collect(RelayCollector(relay))
    assert value(after, "closeloop_relay_lag_events", partition="relay") == 0
    assert value(after, "closeloop_relay_lag_seconds", partition="relay") == 0
    assert value(after, "closeloop_relay_position", partition="relay") == newest
    assert value(after, "closeloop_relay_signals_total", partition="relay") == 1
    assert value(after, "closeloop_relay_failed_batches_total", partition="relay") == 0


async def test_a_leased_relay_reports_every_partition_and_what_it_holds(
    memory_app: GrievanceApp,
) -> None:
    async def connect() -> Any:
        return FakeClient()

    relay = LeasedRelay(
        memory_app, tracking_recorder(MEMORY), connect, AllPartitions(2), task_queue="tq"
    )
    dispatch(memory_app)
    samples = collect(RelayCollector(relay))
    for name in ("relay-0of2", "relay-1of2"):
        assert value(samples, "closeloop_relay_partition_held", partition=name) == 0
        assert value(samples, "closeloop_relay_lag_events", partition=name) > 0
    await relay.refresh()
    samples = collect(RelayCollector(relay))
    assert value(samples, "closeloop_relay_partition_held", partition="relay-1of2") == 1


async def test_a_store_that_is_down_reads_as_up_0(memory_app: GrievanceApp) -> None:
    class Broken(Relay):
        def position(self) -> int:
            raise ConnectionError("database is down")

    async def connect() -> Any:
        return FakeClient()

    relay = Broken(memory_app, tracking_recorder(MEMORY), connect, task_queue="tq")
    samples = collect(RelayCollector(relay))
    assert value(samples, "closeloop_relay_up") == 0
    assert value(samples, "closeloop_relay_partition_held", partition="relay") == 1


def test_projection_lag_in_events_and_seconds(tmp_path: Path, clock: FakeClock) -> None:
    env = sqlite_env(tmp_path)
    app = GrievanceApp(env, clock=clock)
    try:
        dispatch(app)
        collector, close = projection_lag_collector(env)
        try:
            samples = collect(collector)
            assert value(samples, "closeloop_projections_up") == 1
            lag = value(samples, "closeloop_projection_lag_events", projection="hotspots")
            assert lag == app.recorder.max_notification_id()
            seconds = value(samples, "closeloop_projection_lag_seconds", projection="hotspots")
            assert 0 <= seconds < 60
            catch_up(env)
            samples = collect(collector)
            for name in ("grievance_summary", "assignment_queue", "hotspots"):
                assert value(samples, "closeloop_projection_lag_events", projection=name) == 0
                assert value(samples, "closeloop_projection_lag_seconds", projection=name) == 0
        finally:
            close()
    finally:
        app.close()


def test_projection_lag_seconds_is_the_age_of_the_oldest_pending_event(
    memory_app: GrievanceApp,
) -> None:
    """The figure above is only bounded (events carry real timestamps); here ``now`` is
    given, so the age is exact."""
    dispatch(memory_app)
    newest = int(memory_app.recorder.max_notification_id() or 0)
    assert newest >= 2

    def recorded(notification_id: int) -> float:
        (found,) = memory_app.recorder.select_notifications(notification_id, 1)
        return float(memory_app.mapper.to_domain_event(found).timestamp.timestamp())

    ages = EventAges(memory_app.recorder, memory_app.mapper)
    assert ages.lag_seconds(0, newest, recorded(1) + 7.5) == pytest.approx(7.5)
    assert ages.lag_seconds(1, newest, recorded(2) + 3.0) == pytest.approx(3.0)
    assert ages.lag_seconds(newest, newest, recorded(1) + 7.5) == 0
    assert ages.lag_seconds(0, newest, recorded(1) - 1.0) == 0  # never negative


async def test_metrics_endpoint_of_a_process(memory_app: GrievanceApp) -> None:
    assert serve_metrics(Settings(metrics_port=None)) is None
    relay = relay_for(memory_app, FakeClient())
    dispatch(memory_app)
    port = free_port()
    server = serve_metrics(Settings(metrics_port=port), RelayCollector(relay))
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        samples = samples_of(response.text)
        assert value(samples, "closeloop_relay_lag_events", partition="relay") > 0
        assert any(name == "process_cpu_seconds_total" for name, _ in samples)
    finally:
        server.shutdown()


def test_worker_metrics_go_through_the_temporal_runtime() -> None:
    assert temporal_runtime(Settings(metrics_port=None)) is None
    port = free_port()
    runtime = temporal_runtime(Settings(metrics_port=port))
    assert runtime is not None
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("interval", ["0", "-1"])
def test_project_refuses_a_bad_lease_interval(interval: str) -> None:
    from closeloop.cli import main

    with pytest.raises(SystemExit, match="lease-interval"):
        main(["project", "--lease-interval", interval])


def test_a_taken_port_leaves_the_process_running_without_an_endpoint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        settings = Settings(metrics_port=port)
        assert serve_metrics(settings) is None
        assert temporal_runtime(settings) is None
