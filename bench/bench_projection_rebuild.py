"""(4) Projection rebuild from zero: 100k events into every read model, on SQLite
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

LATENESS_REPS = int(os.environ.get("BENCH_LATENESS_REPS", "50"))
KPIS_PAST_REPS = int(os.environ.get("BENCH_KPIS_PAST_REPS", "30"))

TARGET_EVENTS = int(os.environ.get("BENCH_REBUILD_EVENTS", "100000"))
# Processes of the parallel rebuild (closeloop projections rebuild's default: the cores).
WORKERS = int(os.environ.get("BENCH_REBUILD_WORKERS", str(min(os.cpu_count() or 1, 4))))


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


def timed(fn: Any, reps: int) -> list[float]:
    return [benchlib.timed(fn) for _ in range(reps)]


def p50_p99_ms(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": benchlib.percentile(times, 50) * 1000,
        "p99_ms": benchlib.percentile(times, 99) * 1000,
        "reps": len(times),
    }


def read_queries(env: dict[str, str]) -> dict[str, Any]:
    """With the whole log projected: a department's lateness over 30 days from the
    deadline read model (baseline: the replay of every grievance it would otherwise take),
    and ``kpis`` as of an instant in the middle of the log (baseline: the live figure)."""
    from datetime import timedelta

    from domain.application import GrievanceApp
    from projections.deadlines import row_record
    from projections.queries import ReadModels
    from projections.replay import kpis_as_of

    app, read = GrievanceApp(env), ReadModels.from_env(env)
    try:
        now = app.now()
        start, department = now - timedelta(days=30), "st.xueyuanlu"

        def lateness() -> None:
            rows, after = read.department_deadlines(department, start, now, now)
            recorded = [row_record(r) for r in rows]
            app.department_lateness(department, start, now, now, recorded=recorded, after=after)

        newest = int(app.recorder.max_notification_id() or 0)
        [middle] = app.recorder.select_notifications(newest // 2, 1)
        past = app.mapper.to_domain_event(middle).timestamp
        today = now.astimezone(app.policies.calendar.tz).date()  # local days, as counted
        period = {"date_from": today - timedelta(days=30), "date_to": today}
        return {
            "lateness": p50_p99_ms(timed(lateness, LATENESS_REPS)),
            "lateness_full_replay": p50_p99_ms(
                timed(lambda: app.department_lateness(department, start, now, now), 1)
            ),
            "kpis_as_of_past": p50_p99_ms(
                timed(lambda: kpis_as_of(app, read, past, **period), KPIS_PAST_REPS)
            ),
            "kpis_live": p50_p99_ms(timed(lambda: read.kpis(**period), LATENESS_REPS)),
            # What the figures cover, so an empty answer cannot pass for a fast one.
            "kpis_dispatched_live": sum(k["dispatched"] for k in read.kpis(**period)),
            "kpis_dispatched_as_of_past": sum(
                k["dispatched"] for k in kpis_as_of(app, read, past, **period)
            ),
        }
    finally:
        read.close()
        app.close()


def measure(env: dict[str, str], backend: str, events: int) -> dict[str, Any]:
    from projections.registry import select
    from projections.runner import rebuild

    cpu, started = time.process_time(), time.perf_counter()
    decoded = read_and_decode(env)
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu

    names = [spec.name for spec in select(None)]
    cpu, started = time.process_time(), time.perf_counter()
    applied = rebuild(env, names)
    one, one_cpu = time.perf_counter() - started, time.process_time() - cpu
    # As `closeloop projections rebuild` runs by default: the views split between as many
    # processes as there are cores (this process's CPU time is its own share only).
    cpu, started = time.process_time(), time.perf_counter()
    applied_parallel = rebuild(env, names, workers=WORKERS)
    elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert applied_parallel == applied
    return {
        "backend": backend,
        "events": events,
        "projections": names,
        "rows_applied": applied,
        "workers": WORKERS,
        "rebuild_one_process_seconds": one,
        "rebuild_one_process_cpu_seconds": one_cpu,
        "rebuild_one_process_events_per_s": events / one,
        "rebuild_seconds": elapsed,
        "rebuild_cpu_seconds": elapsed_cpu,
        "rebuild_events_per_s": events / elapsed,
        "baseline_read_decode_seconds": baseline,
        "baseline_read_decode_cpu_seconds": baseline_cpu,
        "baseline_events_per_s": decoded / baseline,
        "ratio": baseline / elapsed,
        "read_queries": read_queries(env),
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

    names = runs[0]["projections"]
    summary = {}
    for run in runs:
        backend, reads = run["backend"], run["read_queries"]
        summary[f"{backend}_rebuild"] = benchlib.figure(
            run["rebuild_events_per_s"], "events/s", run["baseline_events_per_s"]
        )
        summary[f"{backend}_rebuild_one_process"] = benchlib.figure(
            run["rebuild_one_process_events_per_s"], "events/s", run["baseline_events_per_s"]
        )
        summary[f"{backend}_lateness_p99_ms"] = benchlib.figure(
            reads["lateness"]["p99_ms"], "ms", reads["lateness_full_replay"]["p99_ms"]
        )
        summary[f"{backend}_kpis_as_of_p99_ms"] = benchlib.figure(
            reads["kpis_as_of_past"]["p99_ms"], "ms", reads["kpis_live"]["p99_ms"]
        )
    benchlib.print_table(
        f"(4) projection rebuild from zero, {events:,} events, {len(names)} read models",
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
                    "rebuild, one process",
                    run["rebuild_one_process_seconds"],
                    run["rebuild_one_process_cpu_seconds"],
                    run["rebuild_one_process_events_per_s"],
                    f"{run['rebuild_one_process_events_per_s'] / run['baseline_events_per_s']:.2f}",
                ),
                (
                    run["backend"],
                    f"rebuild, {run['workers']} processes (CPU: this one's)",
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
