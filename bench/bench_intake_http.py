"""(1) Intake over HTTP: POST /v1/grievances at 1, 8 and 32 concurrent clients.

Against the real stack of ``closeloop up`` (API under uvicorn on a real port, SQLite
event store, projector, relay, worker and Temporal running beside it). Baseline, same
run, same stack and clients: ``GET /healthz`` (a trivial route). Each level starts once
the relay, worker and projector have caught up with the previous level and gone idle.

Each intake carries an ``Idempotency-Key``; a transport error (a reset connection) is
retried with the same key and counted in its own column, so one never aborts the run and
never records a grievance twice (``ids`` = distinct grievances answered = requests).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from benchlib import figure, percentile, print_table, running_stack, write_result

DURATION = float(os.environ.get("BENCH_INTAKE_SECONDS", "10"))
CONCURRENCY = (1, 8, 32)


async def load(base_url: str, clients: int, request: Any, duration: float) -> dict[str, float]:
    """``clients`` loops sending ``request(client, rng, on_transport_error)`` for ``duration``."""
    latencies: list[float] = []
    errors = transport_retried = transport_failed = 0
    ids: set[str] = set()
    # The pool's idle expiry (5 s) stays below the API's keep-alive (75 s): the client
    # closes idle connections, so it never reuses one the server is closing.
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=5.0
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        stop_at = time.perf_counter() + duration

        def retried(error: BaseException) -> None:
            nonlocal transport_retried
            transport_retried += 1
            print(f"  transport error, retried with the same key: {error!r}")

        async def one_client(index: int) -> None:
            nonlocal errors, transport_failed
            rng = random.Random(index)
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    response = await request(client, rng, retried)
                except httpx.TransportError as error:
                    transport_failed += 1
                    print(f"  transport error, gave up after retries: {error!r}")
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors += 1
                elif response.request.method == "POST":
                    ids.add(str(response.json()["id"]))

        started = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": errors,
        "transport_retried": transport_retried,
        "transport_failed": transport_failed,
        "ids": len(ids),
    }


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def idle_wait(monitor: Any, pids: list[int], timeout: float = 300.0) -> None:
    """Until the log is relayed and projected and the children use < 10% of a core."""
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = monitor.read()
        if progress.relay_lag == 0 and progress.projection_lag == 0:
            before = cpu_ticks(pids)
            time.sleep(1.0)
            if (cpu_ticks(pids) - before) / hz < 0.1:
                return
        else:
            time.sleep(0.5)
    raise RuntimeError("the stack did not settle")


def main() -> None:
    from closeloop.dev.embedded import ProgressMonitor
    from closeloop.dev.simulator import new_grievance_body, send_retrying
    from closeloop.settings import Settings

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp)) as (config, sup, tokens):
        headers = {"Authorization": f"Bearer {tokens['operator']}"}
        settings = Settings(var_dir=Path(tmp))

        async def intake(
            client: httpx.AsyncClient, rng: random.Random, retried: Any
        ) -> httpx.Response:
            body, _ = new_grievance_body(rng)
            key = {"Idempotency-Key": str(uuid.uuid4())}
            return await send_retrying(
                client,
                "POST",
                "/v1/grievances",
                json=body,
                headers=headers | key,
                on_transport_error=retried,
            )

        async def trivial(
            client: httpx.AsyncClient, rng: random.Random, retried: Any
        ) -> httpx.Response:
            return await send_retrying(
                client, "GET", "/healthz", headers={}, on_transport_error=retried
            )

        asyncio.run(load(config.api_url, 4, intake, 2.0))  # warm up
        monitor = ProgressMonitor(config.child_env() | settings.event_store_env())
        for clients in CONCURRENCY:
            # Start each level on an idle stack: the relay, worker and projector have
            # caught up with the previous level's grievances (they share the 2 cores).
            idle_wait(monitor, [c.pid for c in sup.children.values()])
            base = asyncio.run(load(config.api_url, clients, trivial, DURATION / 2))
            got = asyncio.run(load(config.api_url, clients, intake, DURATION))
            if got["ids"] != got["requests"] - got["errors"]:
                print(f"  ! {got['requests'] - got['errors']} intakes answered, {got['ids']} ids")
            results.append(
                {
                    "clients": clients,
                    "intake": got,
                    "baseline_healthz": base,
                    "ratio": got["per_s"] / base["per_s"],
                }
            )
    print_table(
        "(1) intake over HTTP: POST /v1/grievances vs GET /healthz on the same stack",
        [
            "clients",
            "intake/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "transport retried/failed",
            "healthz/s",
            "hz p50",
            "ratio",
        ],
        [
            (
                r["clients"],
                r["intake"]["per_s"],
                r["intake"]["p50_ms"],
                r["intake"]["p99_ms"],
                r["intake"]["errors"],
                f"{r['intake']['transport_retried']}/{r['intake']['transport_failed']}",
                r["baseline_healthz"]["per_s"],
                r["baseline_healthz"]["p50_ms"],
                f"{r['ratio']:.3f}",
            )
            for r in results
        ],
    )
    at8 = next(r for r in results if r["clients"] == 8)
    summary = {
        "intake_per_s": figure(
            at8["intake"]["per_s"], "grievances/s (8 clients)", at8["baseline_healthz"]["per_s"]
        )
    }
    write_result("intake_http", summary, {"duration_s": DURATION, "results": results})


if __name__ == "__main__":
    main()
