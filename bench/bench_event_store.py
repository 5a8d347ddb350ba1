"""(2) Event store append: events/s through GrievanceApp on SQLite and PostgreSQL.

Workload: N grievances each driven through the whole loop by the application service
(6 commands, 8 events: load, check, record, save, one transaction per command).
Baseline, same run: the very rows the app stored, inserted with plain sqlite3 / psycopg
into a table of the same shape, one transaction per command as the app did, in turns with
the app (25 grievances each) so both see the same load on a shared machine. The ratio
is what the domain (aggregate rebuild, rules, transcoding, hash chain, optimistic
concurrency) costs over writing the bytes.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

N_SQLITE = 400
N_POSTGRES = 300
CHUNK = 25  # grievances per turn: the app and the baseline take turns on the machine


def groups(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """The rows split as the app's commands wrote them (the loop's shape, repeated)."""
    out: list[list[tuple[Any, ...]]] = []
    i = 0
    while i < len(rows):
        for size in benchlib.LOOP_EVENTS_PER_COMMAND:
            out.append(rows[i : i + size])
            i += size
    return out


class SqliteBaseline:
    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute(
            "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )

    def insert(self, rows: list[tuple[Any, ...]]) -> float:
        started = time.perf_counter()
        for group in groups(rows):
            self.con.execute("BEGIN")
            self.con.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", group)
            self.con.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.con.close()


class PostgresBaseline:
    def __init__(self, schema: str) -> None:
        import psycopg

        self.schema = schema
        self.conn = psycopg.connect(**benchlib.PG)  # type: ignore[arg-type]
        self.conn.execute(
            f'CREATE TABLE "{schema}".plain_events (originator_id uuid, originator_version int, '
            "topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        self.conn.commit()

    def insert(self, rows: list[tuple[Any, ...]]) -> float:
        started = time.perf_counter()
        with self.conn.cursor() as cur:
            for group in groups(rows):
                cur.executemany(
                    f'INSERT INTO "{self.schema}".plain_events '
                    "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    group,
                )
                self.conn.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def run(env: dict[str, str], n: int, baseline: Any) -> tuple[float, float, int, float, float]:
    """(app seconds, baseline seconds, events, app CPU seconds, baseline CPU seconds): in
    turns of ``CHUNK`` grievances, each turn's rows (as the app stored them) inserted by the
    baseline right after, so both see the same load on a shared machine. The CPU seconds
    (this process, user + system) say how much of the gap is work rather than waiting."""
    from domain.application import GrievanceApp

    app = GrievanceApp(env)
    app_s = base_s = app_cpu = base_cpu = 0.0
    events = 0
    try:
        benchlib.full_loop(app, -1)  # warm up: policies, tables, first connection
        position = int(app.recorder.max_notification_id() or 0) + 1
        for first in range(0, n, CHUNK):
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(first, min(n, first + CHUNK)):
                benchlib.full_loop(app, i)
            app_s += time.perf_counter() - started
            app_cpu += time.process_time() - cpu
            batch = app.recorder.select_notifications(position, 10_000)
            rows = [(str(r.originator_id), r.originator_version, r.topic, r.state) for r in batch]
            position = batch[-1].id + 1
            events += len(rows)
            cpu = time.process_time()
            base_s += baseline.insert(rows)
            base_cpu += time.process_time() - cpu
    finally:
        app.close()
        baseline.close()
    return app_s, base_s, events, app_cpu, base_cpu


def measured(backend: str, env: dict[str, str], grievances: int, baseline: Any) -> dict[str, Any]:
    """One backend's row: the app's append against the plain inserts of the same rows."""
    elapsed, base, events, app_cpu, base_cpu = run(env, grievances, baseline)
    return {
        "backend": backend,
        "grievances": grievances,
        "events": events,
        "commands": grievances * len(benchlib.LOOP_EVENTS_PER_COMMAND),
        "app_events_per_s": events / elapsed,
        "baseline_events_per_s": events / base,
        "ratio": base / elapsed,
        "app_cpu_ms_per_event": app_cpu / events * 1000,
        "baseline_cpu_ms_per_event": base_cpu / events * 1000,
    }


def main() -> None:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = benchlib.sqlite_env(Path(tmp) / "events.sqlite")
        baseline = SqliteBaseline(Path(tmp) / "plain.sqlite")
        results.append(measured("sqlite", env, N_SQLITE, baseline))
    if benchlib.pg_reachable():
        with benchlib.pg_schema() as schema:
            env = benchlib.postgres_env(schema)
            results.append(measured("postgresql", env, N_POSTGRES, PostgresBaseline(schema)))
    else:
        print("PostgreSQL not reachable: PostgreSQL row skipped")
    benchlib.print_table(
        "(2) event store append: GrievanceApp vs plain inserts of the same rows",
        ["backend", "events", "app ev/s", "plain ev/s", "app/plain", "CPU ms/ev app", "plain"],
        [
            (
                r["backend"],
                r["events"],
                r["app_events_per_s"],
                r["baseline_events_per_s"],
                f"{r['ratio']:.2f}",
                f"{r['app_cpu_ms_per_event']:.3f}",
                f"{r['baseline_cpu_ms_per_event']:.3f}",
            )
            for r in results
        ],
    )
    summary = {
        f"{r['backend']}_append": benchlib.figure(
            r["app_events_per_s"], "events/s", r["baseline_events_per_s"]
        )
        for r in results
    }
    benchlib.write_result("event_store", summary, {"results": results})


if __name__ == "__main__":
    main()
