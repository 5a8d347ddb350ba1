"""(3) Relay → workflows: events/s the relay delivers to Temporal (signal_with_start).

The stack's Temporal dev server (SQLite + WAL pragmas) and worker run; N grievances are
received, classified and dispatched through the application while the relay is stopped;
then ``closeloop relay`` starts and is timed until its tracking position reaches the end
of the log. Baseline, same run, same server: bare ``signal_with_start`` of a no-op
workflow (completed by that signal), N of them at the relay's concurrency (32).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchlib import (
    dispatched_grievance,
    figure,
    full_loop,
    print_table,
    quiet_logs,
    running_stack,
    write_result,
)
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

N = int(os.environ.get("BENCH_RELAY_GRIEVANCES", "1000"))
CONCURRENCY = 32


@workflow.defn(name="BenchNoop")
class Noop:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, _: str) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.signal
    def update(self, _: str) -> None:
        self.done = True


def dispatched(app: Any, i: int) -> None:
    dispatched_grievance(app, i, category="UM08", text="路灯不亮。")


async def baseline(address: str, n: int) -> float:
    from closeloop.settings import Settings
    from closeloop.temporal import connect_client

    client = await connect_client(Settings(temporal_address=address))
    queue = "bench-noop"
    async with Worker(
        client, task_queue=queue, workflows=[Noop], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with semaphore:
                await client.start_workflow(
                    Noop.run,
                    "x",
                    id=f"bench-noop-{i}",
                    task_queue=queue,
                    start_signal="update",
                    start_signal_args=["go"],
                    rpc_timeout=timedelta(seconds=30),
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - started


def main() -> None:
    quiet_logs()
    from closeloop.bootstrap import build_app
    from closeloop.dev.embedded import component_specs
    from closeloop.settings import Settings
    from workflows.relay import tracking_recorder

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(Path(tmp), only=("temporal", "worker")) as (config, supervisor, _),
    ):
        settings = Settings(var_dir=Path(tmp))
        app = build_app(settings)
        full_loop(app, -1)
        for i in range(N):
            dispatched(app, i)
        log_max = int(app.recorder.max_notification_id() or 0)
        app.close()
        tracking = tracking_recorder(settings.event_store_env())
        relay_spec = next(s for s in component_specs(config) if s.name == "relay")
        supervisor.start(relay_spec)
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            position = int(tracking.max_tracking_id("Grievances/relay") or 0)
            now = time.perf_counter()
            if position and first is None:
                first = (now, position)
            if position >= log_max:
                break
            time.sleep(0.05)
        assert first is not None and position >= log_max, "the relay did not catch up"
        elapsed = now - first[0]
        notifications = log_max - first[1]
        # Of each grievance's 4 notifications, 2 are relayed (Received, Dispatched), in 1 signal.
        signals = N * notifications / log_max
        base = asyncio.run(baseline(config.temporal_address, N))
    result = {
        "grievances": N,
        "notifications": log_max,
        "relay_seconds": elapsed,
        "relay_notifications_per_s": notifications / elapsed,
        "relay_events_per_s": notifications / 2 / elapsed,
        "relay_signals_per_s": signals / elapsed,
        "baseline_signal_with_start_per_s": N / base,
        "ratio_signals": (signals / elapsed) / (N / base),
    }
    print_table(
        f"(3) relay → workflows ({N} grievances, Temporal dev server on SQLite+WAL)",
        ["measure", "per second"],
        [
            ("relay: notifications read", result["relay_notifications_per_s"]),
            ("relay: events relayed", result["relay_events_per_s"]),
            ("relay: signal_with_start", result["relay_signals_per_s"]),
            ("baseline: bare signal_with_start", result["baseline_signal_with_start_per_s"]),
            ("ratio relay/baseline (signals)", f"{result['ratio_signals']:.2f}"),
        ],
    )
    summary = {
        "relay_signals_per_s": figure(
            result["relay_signals_per_s"], "signals/s", result["baseline_signal_with_start_per_s"]
        )
    }
    write_result("relay", summary, result)


if __name__ == "__main__":
    main()
