"""``/metrics`` of real ``closeloop relay`` and ``closeloop project`` processes.

Events are recorded while both run; the projector's endpoint shows its lag going to
zero, the relay's shows the events it could not forward (no Temporal here: its batches
fail and are counted, its lag stays) — what a dashboard needs to tell the two apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain.application import GrievanceApp
from tests.conftest import OPERATOR, make_grievance
from tests.support.workflows import free_port

ROOT = Path(__file__).resolve().parents[2]


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    var = tmp_path / "var"
    var.mkdir()
    relay_port, projector_port = free_port(), free_port()
    base = {
        **os.environ,
        "CLOSELOOP_VAR_DIR": str(var),
        "CLOSELOOP_LOG_FORMAT": "json",
        "CLOSELOOP_LOG_LEVEL": "WARNING",
        # Nothing listens here: the relay's batches fail and are retried.
        "CLOSELOOP_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "closeloop.cli", *argv],
            cwd=ROOT,
            env={**base, "CLOSELOOP_METRICS_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for argv, port in (
            (["relay", "--partitions", "2", "--poll-interval", "0.1"], relay_port),
            (["project", "--interval", "0.1"], projector_port),
        )
    ]
    try:
        yield var, relay_port, projector_port
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_relay_and_projector_endpoints_show_lag_while_events_arrive(
    processes: tuple[Path, int, int],
) -> None:
    var, relay_port, projector_port = processes
    wait_for(lambda: bool(scrape(relay_port)) and bool(scrape(projector_port)))
    app = GrievanceApp(
        {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(var / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    )
    try:
        partitions: set[int] = set()
        while partitions != {0, 1}:  # a grievance in each partition: both relays fail
            gid = make_grievance(app)
            app.classify_grievance(gid, OPERATOR, category="PM01")
            partitions.add(gid.int % 2)
        newest = float(app.recorder.max_notification_id() or 0)
    finally:
        app.close()

    def projected() -> bool:
        samples = scrape(projector_port)
        key = ("closeloop_projection_position", frozenset({("projection", "hotspots")}))
        return samples.get(key) == newest

    wait_for(projected)
    samples = scrape(projector_port)
    lag = ("closeloop_projection_lag_events", frozenset({("projection", "grievance_summary")}))
    assert samples[lag] == 0
    assert samples[("closeloop_projections_up", frozenset())] == 1
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)

    def relay_failing() -> bool:
        samples = scrape(relay_port)
        return all(
            samples.get(("closeloop_relay_failed_batches_total", frozenset({("partition", p)})), 0)
            >= 1
            for p in ("relay-0of2", "relay-1of2")
        )

    wait_for(relay_failing)
    samples = scrape(relay_port)
    for partition in ("relay-0of2", "relay-1of2"):
        labels = frozenset({("partition", partition)})
        assert samples[("closeloop_relay_partition_held", labels)] == 1
        assert samples[("closeloop_relay_lag_events", labels)] == newest
        assert samples[("closeloop_relay_lag_seconds", labels)] > 0
