"""``closeloop project`` as a real process: stops on SIGTERM, and SIGKILL mid-run loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from domain.application import GrievanceApp
from projections.queries import ReadModels
from projections.runner import catch_up, rebuild
from tests.conftest import OPERATOR, FakeClock, make_grievance
from tests.support.projections import dump_tables, run_scenario

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def start_projector(var: Path, batch_size: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLOSELOOP_VAR_DIR": str(var),
        "CLOSELOOP_LOG_FORMAT": "json",
        "CLOSELOOP_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "closeloop.cli",
            "project",
            "--interval",
            "0.05",
            "--batch-size",
            str(batch_size),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def populate(var: Path) -> dict[str, str]:
    var.mkdir(parents=True, exist_ok=True)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(var / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
    clock = FakeClock()
    app = GrievanceApp(env, clock=clock)
    try:
        run_scenario(app, clock)
        for _ in range(40):
            gid = make_grievance(app)
            app.classify_grievance(gid, OPERATOR, category="UM04")
            app.dispatch_grievance(gid, OPERATOR)
    finally:
        app.close()
    return env


def log_max(env: dict[str, str]) -> int:
    app = GrievanceApp(env)
    try:
        return int(app.recorder.max_notification_id() or 0)
    finally:
        app.close()


def positions(env: dict[str, str]) -> list[int]:
    read = ReadModels.from_env(env)
    try:
        return [int(v["position"] or 0) for v in read.status().values()]
    finally:
        read.close()


def test_sigterm_stops_the_projector_after_it_caught_up(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = populate(var)
    proc = start_projector(var, batch_size=500)
    try:
        total = log_max(env)
        wait_until(lambda: set(positions(env)) == {total})  # every view caught up
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stdout.read() if proc.stdout else ""
    finally:
        proc.kill()


def test_sigkill_mid_run_then_restart_gives_the_same_tables(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = populate(var)
    total = log_max(env)
    proc = start_projector(var, batch_size=7)
    try:
        wait_until(lambda: max(positions(env)) > 0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert min(positions(env)) < total  # it really was killed before the end
    catch_up(env)
    after_restart = dump_tables(env)
    rebuild(env)
    assert dump_tables(env) == after_restart
