"""(2) Event store append: events/s through GrievanceApp on SQLite and PostgreSQL.

Workload: N grievances each driven through the whole loop by the application service
(6 commands, 8 events: load, check, record, save, one transaction per command).
Baseline, same run: the very rows the app stored, inserted with plain sqlite3 / psycopg
into a table of the same shape, one transaction per command as the app did. The ratio
is what the domain (aggregate rebuild, rules, transcoding, hash chain, optimistic
concurrency) costs over writing the bytes.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    LOOP_EVENTS_PER_COMMAND,
    PG,
    full_loop,
    pg_reachable,
    pg_schema,
    postgres_env,
    print_table,
    sqlite_env,
    write_result,
)

N_SQLITE = 400
N_POSTGRES = 300


def app_run(env: dict[str, str], n: int) -> tuple[float, int, list[tuple[Any, ...]]]:
    from domain.application import GrievanceApp

    app = GrievanceApp(env)
    try:
        full_loop(app, -1)  # warm up: policies, tables, first connection
        start_id = int(app.recorder.max_notification_id() or 0)
        started = time.perf_counter()
        for i in range(n):
            full_loop(app, i)
        elapsed = time.perf_counter() - started
        rows: list[tuple[Any, ...]] = []
        position = start_id + 1
        while True:
            batch = app.recorder.select_notifications(position, 1000)
            if not batch:
                break
            rows += [(str(r.originator_id), r.originator_version, r.topic, r.state) for r in batch]
            position = batch[-1].id + 1
    finally:
        app.close()
    return elapsed, len(rows), rows


def groups(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """The rows split as the app's commands wrote them (the loop's shape, repeated)."""
    out: list[list[tuple[Any, ...]]] = []
    i = 0
    while i < len(rows):
        for size in LOOP_EVENTS_PER_COMMAND:
            out.append(rows[i : i + size])
            i += size
    return out


def sqlite_baseline(path: Path, rows: list[tuple[Any, ...]]) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    started = time.perf_counter()
    for group in groups(rows):
        con.execute("BEGIN")
        con.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", group)
        con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def postgres_baseline(schema: str, rows: list[tuple[Any, ...]]) -> float:
    import psycopg

    with psycopg.connect(**PG) as conn:  # type: ignore[arg-type]
        conn.execute(
            f'CREATE TABLE "{schema}".plain_events (originator_id uuid, originator_version int, '
            "topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for group in groups(rows):
                cur.executemany(
                    f'INSERT INTO "{schema}".plain_events '
                    "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    group,
                )
                conn.commit()
        return time.perf_counter() - started


def main() -> None:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, events, rows = app_run(sqlite_env(Path(tmp) / "events.sqlite"), N_SQLITE)
        base = sqlite_baseline(Path(tmp) / "plain.sqlite", rows)
        results.append(
            {
                "backend": "sqlite",
                "grievances": N_SQLITE,
                "events": events,
                "commands": N_SQLITE * len(LOOP_EVENTS_PER_COMMAND),
                "app_events_per_s": events / elapsed,
                "baseline_events_per_s": events / base,
                "ratio": base / elapsed,
            }
        )
    if pg_reachable():
        with pg_schema() as schema:
            elapsed, events, rows = app_run(postgres_env(schema), N_POSTGRES)
            base = postgres_baseline(schema, rows)
        results.append(
            {
                "backend": "postgresql",
                "grievances": N_POSTGRES,
                "events": events,
                "commands": N_POSTGRES * len(LOOP_EVENTS_PER_COMMAND),
                "app_events_per_s": events / elapsed,
                "baseline_events_per_s": events / base,
                "ratio": base / elapsed,
            }
        )
    else:
        print("PostgreSQL not reachable: PostgreSQL row skipped")
    print_table(
        "(2) event store append: GrievanceApp vs plain inserts of the same rows",
        ["backend", "events", "app ev/s", "plain ev/s", "app/plain"],
        [
            (
                r["backend"],
                r["events"],
                r["app_events_per_s"],
                r["baseline_events_per_s"],
                f"{r['ratio']:.2f}",
            )
            for r in results
        ],
    )
    write_result("event_store", {"results": results})


if __name__ == "__main__":
    main()
