"""(4) Projection rebuild from zero: 100k events into the five read models, on SQLite
and on PostgreSQL.

The events are generated with the application service itself (12,500 grievances through
the whole loop, 8 events each) on a tmpfs, then the event store file is copied to disk,
where the SQLite rebuild runs, as in a real deployment; the same stored events are
copied into a fresh PostgreSQL schema for the PostgreSQL rebuild.
Baseline, same run and backend: reading and decoding the same 100k notifications
without projecting them (the floor for any projection). Wall clock and CPU time of
this process are both reported (the box is shared).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

TARGET_EVENTS = int(os.environ.get("BENCH_REBUILD_EVENTS", "100000"))


def generate(path: Path) -> int:
    from domain.application import GrievanceApp

    app = GrievanceApp(benchlib.sqlite_env(path))
    try:
        i = 0
        started = time.perf_counter()
        while int(app.recorder.max_notification_id() or 0) < TARGET_EVENTS:
            for _ in range(100):
                benchlib.full_loop(app, i)
                i += 1
            if i % 2000 == 0:
                print(f"  generated {i} grievances in {time.perf_counter() - started:.0f}s")
        return int(app.recorder.max_notification_id() or 0)
    finally:
        app.close()


def read_and_decode(env: dict[str, str]) -> int:
    from domain.application import GrievanceApp

    app = GrievanceApp(env)
    try:
        count = 0
        position = 1
        while True:
            batch = app.recorder.select_notifications(position, 500)
            if not batch:
                return count
            for n in batch:
                app.mapper.to_domain_event(n)
            count += len(batch)
            position = batch[-1].id + 1
    finally:
        app.close()


def copy_to_postgres(source: dict[str, str], target: dict[str, str]) -> int:
    """The very same stored events, in the same order, in a PostgreSQL event store."""
    from domain.application import GrievanceApp

    reader, writer = GrievanceApp(source), GrievanceApp(target)
    try:
        copied, position = 0, 1
        while True:
            batch = reader.recorder.select_notifications(position, 2000)
            if not batch:
                return copied
            writer.recorder.insert_events(list(batch))
            copied += len(batch)
            position = batch[-1].id + 1
    finally:
        reader.close()
        writer.close()


def measure(env: dict[str, str], backend: str, events: int) -> dict[str, Any]:
    from projections.registry import select
    from projections.runner import rebuild

    cpu, started = time.process_time(), time.perf_counter()
    decoded = read_and_decode(env)
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu

    names = [spec.name for spec in select(None)]
    cpu, started = time.process_time(), time.perf_counter()
    applied = rebuild(env, names)
    elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "backend": backend,
        "events": events,
        "projections": names,
        "rows_applied": applied,
        "rebuild_seconds": elapsed,
        "rebuild_cpu_seconds": elapsed_cpu,
        "rebuild_events_per_s": events / elapsed,
        "baseline_read_decode_seconds": baseline,
        "baseline_read_decode_cpu_seconds": baseline_cpu,
        "baseline_events_per_s": decoded / baseline,
        "ratio": baseline / elapsed,
    }


def main() -> None:
    benchlib.quiet_logs()

    with (
        tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as shm,
        tempfile.TemporaryDirectory() as disk,
    ):
        generated = Path(shm) / "events.sqlite"
        started = time.perf_counter()
        events = generate(generated)
        print(f"  {events} events generated in {time.perf_counter() - started:.0f}s")
        target = Path(disk) / "events.sqlite"
        shutil.copy(generated, target)
        env = benchlib.sqlite_env(target)
        env["PROJECTIONS_SQLITE_DBNAME"] = str(Path(disk) / "projections.sqlite")
        runs = [measure(env, "sqlite", events)]
        if benchlib.pg_reachable():
            with benchlib.pg_schema() as schema:
                pg_env = benchlib.postgres_env(schema)
                pg_env["POSTGRES_POOL_SIZE"] = "2"
                copy_to_postgres(env, pg_env)
                runs.append(measure(pg_env, "postgresql", events))
        else:
            print("PostgreSQL not reachable: PostgreSQL rebuild skipped")

    summary = {
        f"{run['backend']}_rebuild": benchlib.figure(
            run["rebuild_events_per_s"], "events/s", run["baseline_events_per_s"]
        )
        for run in runs
    }
    benchlib.print_table(
        f"(4) projection rebuild from zero, {events:,} events, five read models",
        ["backend", "run", "seconds", "CPU s", "events/s", "vs read+decode"],
        [
            row
            for run in runs
            for row in (
                (
                    run["backend"],
                    "read + decode only (baseline)",
                    run["baseline_read_decode_seconds"],
                    run["baseline_read_decode_cpu_seconds"],
                    run["baseline_events_per_s"],
                    "1.00",
                ),
                (
                    run["backend"],
                    "rebuild (fresh tables)",
                    run["rebuild_seconds"],
                    run["rebuild_cpu_seconds"],
                    run["rebuild_events_per_s"],
                    f"{run['ratio']:.2f}",
                ),
            )
        ],
    )
    benchlib.write_result("projection_rebuild", summary, {"runs": runs})


if __name__ == "__main__":
    main()
