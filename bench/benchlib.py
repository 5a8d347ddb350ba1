"""Shared helpers for the benchmarks: the machine, tables, result files, a lifecycle."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG = {
    "host": os.environ.get("CLOSELOOP_TEST_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("CLOSELOOP_TEST_PG_PORT", "5432"),
    "dbname": os.environ.get("CLOSELOOP_TEST_PG_DB", "test"),
    "user": os.environ.get("CLOSELOOP_TEST_PG_USER", "postgres"),
}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))  # nearest rank
    return ordered[min(rank, len(ordered)) - 1]


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [
        [f"{c:,.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def figure(value: float, unit: str, baseline: float | None) -> dict[str, Any]:
    """One entry of a result's ``summary``: the figure, its same-run baseline, value ÷ baseline."""
    ratio = value / baseline if baseline else None
    return {"value": value, "unit": unit, "baseline": baseline, "ratio": ratio}


def write_result(name: str, summary: dict[str, dict[str, Any]], data: dict[str, Any]) -> Path:
    """``bench/results/<name>.json``: the machine, the ``summary`` ({figure: figure(...)}),
    then the details."""
    if not summary:
        raise ValueError(f"{name}: a result needs at least one summary figure")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "machine": machine(), "summary": summary, **data}
    path.write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    print(f"  → {path.relative_to(ROOT)}")
    return path


def quiet_logs() -> None:
    """Warnings and errors only (the projector logs every batch at debug)."""
    from closeloop.logging import configure_logging

    configure_logging("console", "WARNING")


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def pg_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(**PG, connect_timeout=3):  # type: ignore[arg-type]
            return True
    except Exception:
        return False


@contextmanager
def pg_schema() -> Iterator[str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def sqlite_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def postgres_env(schema: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG["dbname"],
        "POSTGRES_HOST": PG["host"],
        "POSTGRES_PORT": PG["port"],
        "POSTGRES_USER": PG["user"],
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
    }


# ------------------------------------------------------------------ a lifecycle

# The events each command of ``full_loop`` records, in order (Received + CaseNumber.Claimed,
# Classified, Dispatched, SignedFor, Resolved, FeedbackRecorded + Closed).
LOOP_EVENTS_PER_COMMAND = (2, 1, 1, 1, 1, 2)


def dispatched_grievance(
    app: Any,
    index: int = 0,
    category: str = "UM06",
    text: str = "小区垃圾桶满了三天没人清运，气味很大。",
) -> tuple[uuid.UUID, uuid.UUID]:
    """One grievance received, classified and dispatched to a street: (grievance, assignment)."""
    from domain.model import Actor, Location, Role

    operator = Actor("bench-operator", Role.OPERATOR)
    communities = ("xyl-01", "xyl-02", "xyl-03")
    result = app.receive_grievance(
        operator,
        channel="hotline",
        citizen_name="张秀英",
        citizen_phone="13812345678",
        text=f"第{index}号：{text}",
        location=Location(
            district="haidian",
            street="xueyuanlu",
            community=communities[index % 3],
            grid=None,
            address="石油大院3号楼",
        ),
    )
    gid = result.grievance_id
    app.classify_grievance(gid, operator, category=category)
    dispatched = app.dispatch_grievance(gid, operator, lead="st.xueyuanlu", assisting=[])
    return gid, dispatched.extra["assignments"][0]


def full_loop(app: Any, index: int = 0) -> uuid.UUID:
    """One grievance from intake to closed through the application service."""
    from domain.model import Actor, Role

    operator = Actor("bench-operator", Role.OPERATOR)
    street = Actor("bench-street", Role.DEPARTMENT, "st.xueyuanlu")
    gid, aid = dispatched_grievance(app, index)
    app.sign_for(aid, street)
    app.resolve(aid, street, account="已清运并安排每日巡查。")
    app.record_feedback(gid, operator, contacted=True, resolved=True, satisfaction="satisfied")
    return gid


# ------------------------------------------------------------------ a real stack


@contextmanager
def running_stack(
    var_dir: Path, sla_profile: str = "standard", only: Sequence[str] | None = None
) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """The embedded stack of ``closeloop up`` on free ports: (config, supervisor, tokens)."""
    from closeloop.dev.embedded import StackConfig, StackPorts, component_specs, ensure_dev_tokens
    from closeloop.dev.supervisor import Supervisor
    from closeloop.settings import Settings

    ports = StackPorts.choose(api=None, temporal=None, ui=None)
    # Load, not abuse: the API's rate limits (issue 15) are off for benchmarks.
    config = StackConfig(
        var_dir=var_dir,
        ports=ports,
        sla_profile=sla_profile,
        ui=False,
        extra_env={"CLOSELOOP_RATE_LIMITS": "false"},
    )
    config.log_level = "WARNING"
    tokens = ensure_dev_tokens(Settings(var_dir=var_dir, sla_profile=sla_profile))
    supervisor = Supervisor(var_dir / "logs")
    try:
        for spec in component_specs(config):
            if only is None or spec.name in only:
                supervisor.start(spec)
        yield config, supervisor, tokens
    finally:
        supervisor.stop_all(timeout=10)


def rss_kib(pid: int) -> int:
    """Resident memory of a process (and nothing else), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
