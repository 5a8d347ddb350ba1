"""(5) Audit reads of a 60-event grievance: the full history and the state ``as_of``.

In the application (SQLite and PostgreSQL) and over HTTP through the real API app
(in-process ASGI, SQLite). The events route keeps each stored event as it rendered it:
``history`` reads a grievance read before, ``history_first_read`` one whose events it
renders all anew. Baselines, same run: the current state (``get_grievance``,
which replays the same events), the 60 raw rows with plain SQL, and ``/healthz`` over
the same HTTP stack (taken in turns with the HTTP reads, so both see the same load).
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import benchlib

REPS = 300
EVENTS = 60


def sixty_events(app: Any) -> UUID:
    from domain.model import Actor, Role

    operator = Actor("bench-operator", Role.OPERATOR)
    street = Actor("bench-street", Role.DEPARTMENT, "st.xueyuanlu")
    gid, aid = benchlib.dispatched_grievance(
        app, category="UM02", text="石油大院菜市场门口占道经营，消防通道被堵。"
    )
    app.sign_for(aid, street)
    for i in range(EVENTS - 7):
        app.report_progress(aid, street, note=f"第{i + 1}次巡查：摊贩已劝离，持续盯守。")
    app.resolve(aid, street, account="联合执法清理占道摊点，设置隔离护栏。")
    app.record_feedback(gid, operator, contacted=True, resolved=True, satisfaction="satisfied")
    assert app.get_grievance(gid).version == EVENTS, app.get_grievance(gid).version
    return gid  # type: ignore[no-any-return]


def sample(fn: Callable[[], Any], reps: int = REPS) -> dict[str, float]:
    """p50 and p99 of ``reps`` timed calls of ``fn``, after one untimed."""
    return interleaved(reps, read=fn)["read"]


def interleaved(reps: int = REPS, **fns: Callable[[], Any]) -> dict[str, dict[str, float]]:
    """Like ``sample`` for several reads taken in turns (one of each, ``reps`` times), so a
    benchlib.figure and its baseline see the same moments of a shared machine."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(benchlib.timed(fn))
    return {
        name: {
            "p50_ms": benchlib.percentile(t, 50) * 1000,
            "p99_ms": benchlib.percentile(t, 99) * 1000,
        }
        for name, t in times.items()
    }


def app_level(env: dict[str, str], raw: Callable[[UUID], Any]) -> dict[str, Any]:
    from domain.application import GrievanceApp

    app = GrievanceApp(env)
    try:
        gid = sixty_events(app)
        history = app.history(gid)
        instants = [e.timestamp for e in history]
        rng = random.Random(1)

        def as_of() -> None:
            t = rng.choice(instants[1:]) + timedelta(microseconds=1)
            assert app.state_as_of(gid, t) is not None

        return {
            "history": sample(lambda: app.history(gid)),
            "as_of": sample(as_of),
            "version": sample(lambda: app.get_grievance(gid, version=rng.randint(1, EVENTS))),
            "baseline_current_state": sample(lambda: app.get_grievance(gid)),
            "baseline_raw_rows": sample(lambda: raw(gid)),
        }
    finally:
        app.close()


def http_level(tmp: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.routers.audit import RENDERED
    from closeloop.api_wiring import build_api_services
    from closeloop.settings import Settings

    settings = Settings(var_dir=tmp / "http", rate_limits=False)  # a load, not an abuse
    from closeloop.bootstrap import build_app

    app = build_app(settings)
    gid = sixty_events(app)
    instants = [e.timestamp for e in app.history(gid)]
    app.close()
    from api.stores import TokenStore
    from closeloop.api_wiring import api_database

    db = api_database(settings)
    _, token = TokenStore(db).create("supervisor", name="bench")
    db.close()
    fastapi_app = create_app(lambda: build_api_services(settings, with_temporal=False))
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(2)
    with TestClient(fastapi_app) as client:

        def history() -> None:
            r = client.get(f"/v1/audit/grievances/{gid}/events", headers=headers)
            assert r.status_code == 200 and len(r.json()["events"]) == EVENTS

        def history_first_read() -> None:
            RENDERED.clear()  # as if no event of this grievance had been rendered before
            history()

        def as_of() -> None:
            t = (rng.choice(instants[1:]) + timedelta(microseconds=1)).isoformat()
            r = client.get(
                f"/v1/audit/grievances/{gid}/state", params={"as_of": t}, headers=headers
            )
            assert r.status_code == 200, r.text

        def health() -> None:
            assert client.get("/healthz").status_code == 200

        return interleaved(
            history=history,
            history_first_read=history_first_read,
            as_of=as_of,
            baseline_healthz=health,
        )


def main() -> None:
    benchlib.quiet_logs()
    results: dict[str, Any] = {"events_per_grievance": EVENTS, "reps": REPS}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.sqlite"

        def raw_sqlite(gid: UUID) -> list[Any]:
            with sqlite3.connect(path) as con:
                return con.execute(
                    "SELECT * FROM stored_events WHERE originator_id = ? "
                    "ORDER BY originator_version",
                    (str(gid),),
                ).fetchall()

        results["sqlite"] = app_level(benchlib.sqlite_env(path), raw_sqlite)
        results["http_sqlite"] = http_level(Path(tmp))
    if benchlib.pg_reachable():
        import psycopg

        with benchlib.pg_schema() as schema:
            conn = psycopg.connect(**benchlib.PG)  # type: ignore[arg-type]

            def raw_pg(gid: UUID) -> list[Any]:
                with conn.cursor() as cur:
                    cur.execute(
                        f'SELECT * FROM "{schema}".grievances_events WHERE originator_id = %s '
                        "ORDER BY originator_version",
                        (gid,),
                    )
                    rows = cur.fetchall()
                conn.rollback()
                return rows

            try:
                results["postgresql"] = app_level(benchlib.postgres_env(schema), raw_pg)
            finally:
                conn.close()
    rows = []
    for where in ("sqlite", "postgresql", "http_sqlite"):
        if where not in results:
            continue
        for name, figures in results[where].items():
            rows.append((where, name, figures["p50_ms"], figures["p99_ms"]))
    benchlib.print_table(
        f"(5) audit of a {EVENTS}-event grievance ({REPS} reads each); ms",
        ["where", "read", "p50 ms", "p99 ms"],
        rows,
    )
    http = results["http_sqlite"]
    sqlite = results["sqlite"]
    summary = {
        "http_history_p99_ms": benchlib.figure(
            http["history"]["p99_ms"], "ms", http["baseline_healthz"]["p99_ms"]
        ),
        "http_history_first_read_p99_ms": benchlib.figure(
            http["history_first_read"]["p99_ms"], "ms", http["baseline_healthz"]["p99_ms"]
        ),
        "sqlite_history_p99_ms": benchlib.figure(
            sqlite["history"]["p99_ms"], "ms", sqlite["baseline_raw_rows"]["p99_ms"]
        ),
    }
    benchlib.write_result("audit", summary, results)


if __name__ == "__main__":
    main()
