"""Temporal dies under a running ``closeloop up`` (the real command, as a subprocess):
SIGKILL of the Temporal dev server must not take the stack down. While Temporal is
away intake answers 201, reads and audit answer, ``/readyz`` stays 200 and names
Temporal as degraded; the supervisor starts the dev server again (same port, same
database file), the workflow started before the outage is still there, and the relay
catches up: every grievance dispatched during the outage gets its workflow, whose
timers fire on the reconnected worker (drill SLA: an urge within seconds). Every file
under the var dir, Temporal's database included, is private after the restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.dev.supervisor import free_port, tcp_open
from tests.e2e.test_whole_loop import GRIEVANCE, STREET
from tests.support.stack import wait_for

pytestmark = [pytest.mark.temporal]

START_TIMEOUT = 150.0
COMEBACK_TIMEOUT = 90.0
CATCH_UP_TIMEOUT = 120.0


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    var_dir: Path
    output: Path

    def stack(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.var_dir / "stack.json").read_text("utf-8"))
        return data

    def tail(self) -> str:
        logs = [self.output, *sorted((self.var_dir / "logs").glob("*.log"))]
        return "\n".join(
            f"--- {p.name} ---\n"
            + "\n".join(p.read_text("utf-8", errors="replace").splitlines()[-25:])
            for p in logs
            if p.exists()
        )


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    var_dir = tmp_path_factory.mktemp("outage-var")
    output = var_dir.parent / "up.out"
    api_port = free_port(None)
    temporal_port = free_port(None, avoid=[api_port])
    env = {**os.environ, "CLOSELOOP_VAR_DIR": str(var_dir), "CLOSELOOP_LOG_FORMAT": "json"}
    argv = [sys.executable, "-m", "closeloop.cli", "up", "--headless", "--sla-profile"]
    argv += ["drill", "--port", str(api_port), "--temporal-port", str(temporal_port)]
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Up(process, var_dir, output)
    try:
        wait_for(
            lambda: (var_dir / "stack.json").exists() or process.poll() is not None,
            START_TIMEOUT,
            "closeloop up to be ready",
            on_timeout=running.tail,
        )
        assert process.poll() is None, running.tail()
        yield running
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def workflow_status(address: str, grievance_id: str) -> str | None:
    """The Temporal status of the grievance's workflow, or None when it does not exist."""
    from temporalio.client import Client
    from temporalio.service import RPCError

    async def describe() -> str | None:
        client = await Client.connect(address)
        try:
            found = await client.get_workflow_handle(f"grievance-{grievance_id}").describe()
        except RPCError:
            return None
        return found.status.name if found.status else None

    try:
        return asyncio.run(describe())
    except Exception:  # Temporal not back yet
        return None


def test_temporal_killed_intake_keeps_answering_and_the_relay_catches_up(up: Up) -> None:
    stack = up.stack()
    address = stack["temporal_address"]
    port = int(address.rsplit(":", 1)[1])
    tokens = json.loads((up.var_dir / "dev-tokens.json").read_text("utf-8"))
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    supervisor = {"Authorization": f"Bearer {tokens['supervisor']}"}

    with httpx.Client(base_url=stack["api_url"], timeout=20.0) as api:

        def file_and_dispatch(text: str) -> str:
            filed = api.post("/v1/grievances", json=dict(GRIEVANCE, text=text), headers=operator)
            assert filed.status_code == 201, filed.text
            gid = str(filed.json()["id"])
            for path, body in (
                ("classify", {"category": "PM03"}),
                ("dispatch", {"lead": STREET, "assisting": []}),
            ):
                answer = api.post(f"/v1/grievances/{gid}/{path}", json=body, headers=operator)
                assert answer.status_code == 200, answer.text
            return gid

        before = file_and_dispatch("停电前：石油大院3号楼楼道灯坏了两周，请尽快维修。")
        wait_for(
            lambda: workflow_status(address, before),
            CATCH_UP_TIMEOUT,
            "the workflow of the grievance filed before the outage",
            on_timeout=up.tail,
        )

        temporal_pid = int(stack["pids"]["temporal"])
        os.kill(temporal_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # At once, before the supervisor's backoff and the server's start are over:
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True and "temporal" in ready.json()["degraded"]
        assert ready.json()["checks"]["temporal"]["ok"] is False
        assert api.get("/readyz", params={"strict": "true"}).status_code == 503

        during: list[str] = []
        filed_while_down = 0
        for n in range(6):
            down = not tcp_open(port)
            during.append(file_and_dispatch(f"停机期间第{n + 1}件：学院路路灯不亮，请尽快维修。"))
            filed_while_down += down
            read = api.get(f"/v1/grievances/{during[-1]}", headers=operator)
            assert read.status_code == 200, read.text
            audit = api.get(f"/v1/audit/grievances/{during[-1]}/events", headers=supervisor)
            assert audit.status_code == 200, audit.text
        assert filed_while_down >= 1, "Temporal came back before any grievance was filed"
        assert up.process.poll() is None, up.tail()

        def temporal_back() -> bool:
            pid = up.stack()["pids"].get("temporal")
            return pid not in (None, temporal_pid) and tcp_open(port)

        wait_for(temporal_back, COMEBACK_TIMEOUT, "Temporal to come back", on_timeout=up.tail)
        comeback = time.monotonic() - killed_at

        for gid in during:
            wait_for(
                lambda gid=gid: workflow_status(address, gid),
                CATCH_UP_TIMEOUT,
                f"the workflow of {gid}, dispatched during the outage",
                on_timeout=up.tail,
            )
        caught_up = time.monotonic() - killed_at

        def urged(gid: str) -> bool:
            events = api.get(f"/v1/audit/grievances/{gid}/events", headers=supervisor)
            return any(e["type"] == "Urged" for e in events.json()["events"])

        # The worker is polling the restarted server: the drill SLA's timers fire (催办).
        wait_for(
            lambda: urged(during[-1]),
            CATCH_UP_TIMEOUT,
            "an urge from a workflow started after the outage",
            on_timeout=up.tail,
        )
        # The database file survived the kill: the earlier workflow is still there.
        assert workflow_status(address, before) == "RUNNING"
        wait_for(
            lambda: "temporal" not in api.get("/readyz").json()["degraded"],
            30,
            "/readyz to see Temporal again",
        )
        assert up.process.poll() is None, up.tail()
        print(f"Temporal back after {comeback:.1f}s, relay caught up after {caught_up:.1f}s")

    loose = {
        p.relative_to(up.var_dir).as_posix(): oct(stat.S_IMODE(p.stat().st_mode))
        for p in [up.var_dir, *up.var_dir.rglob("*")]
        if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) != (0o700 if p.is_dir() else 0o600)
    }
    assert loose == {}, loose
    assert (up.var_dir / "temporal.db").exists()
