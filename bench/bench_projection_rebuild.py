"""(4) Projection rebuild from zero: 100k events into the five read models (SQLite).

The events are generated with the application service itself (12,500 grievances through
the whole loop, 8 events each) on a tmpfs, then the event store file is copied to disk,
where the rebuild runs, as in a real deployment.
Baseline, same run: reading and decoding the same 100k notifications without projecting
them (the floor for any projection).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchlib import full_loop, print_table, quiet_logs, sqlite_env, write_result

TARGET_EVENTS = int(os.environ.get("BENCH_REBUILD_EVENTS", "100000"))


def generate(path: Path) -> int:
    from domain.application import GrievanceApp

    app = GrievanceApp(sqlite_env(path))
    try:
        i = 0
        started = time.perf_counter()
        while int(app.recorder.max_notification_id() or 0) < TARGET_EVENTS:
            for _ in range(100):
                full_loop(app, i)
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


def main() -> None:
    quiet_logs()
    from projections.registry import select
    from projections.runner import rebuild

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
        env = sqlite_env(target)
        env["PROJECTIONS_SQLITE_DBNAME"] = str(Path(disk) / "projections.sqlite")

        started = time.perf_counter()
        decoded = read_and_decode(env)
        baseline = time.perf_counter() - started

        names = [spec.name for spec in select(None)]
        started = time.perf_counter()
        applied = rebuild(env, names)
        elapsed = time.perf_counter() - started

    result = {
        "events": events,
        "projections": names,
        "rows_applied": applied,
        "rebuild_seconds": elapsed,
        "rebuild_events_per_s": events / elapsed,
        "baseline_read_decode_seconds": baseline,
        "baseline_events_per_s": decoded / baseline,
        "ratio": baseline / elapsed,
    }
    print_table(
        f"(4) projection rebuild from zero, {events:,} events, {len(names)} read models",
        ["run", "seconds", "events/s", "vs read+decode"],
        [
            ("read + decode only (baseline)", baseline, decoded / baseline, "1.00"),
            ("rebuild (fresh tables)", elapsed, events / elapsed, f"{baseline / elapsed:.2f}"),
        ],
    )
    write_result("projection_rebuild", result)


if __name__ == "__main__":
    main()
