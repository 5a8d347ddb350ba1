"""``closeloop worker`` and ``closeloop relay`` as real processes against the dev server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.service import RPCError

from closeloop.settings import Settings
from closeloop.temporal import temporal_reachable
from domain.application import GrievanceApp
from domain.model import Location
from tests.support.workflows import OPERATOR, DevServer, sqlite_env
from workflows.messages import WorkflowState, workflow_id_for

pytestmark = pytest.mark.temporal


def closeloop(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "closeloop.cli", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stopped_output(process: subprocess.Popen[bytes]) -> str:
    """The output of a process we asked to stop; killed if it does not stop in time."""
    try:
        return process.communicate(timeout=30)[0].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0].decode() + "\n[killed: no graceful stop]"


async def test_worker_and_relay_processes_orchestrate_and_stop_gracefully(
    tmp_path: Path,
) -> None:
    server = DevServer(tmp_path / "temporal.db")
    await server.start()
    env = {
        **os.environ,
        "CLOSELOOP_VAR_DIR": str(tmp_path),
        "CLOSELOOP_TEMPORAL_ADDRESS": server.address,
        "CLOSELOOP_TEMPORAL_TASK_QUEUE": f"tq-{uuid4().hex}",
        "CLOSELOOP_SLA_PROFILE": "standard",
        "CLOSELOOP_LOG_FORMAT": "json",
    }
    env.pop("CLOSELOOP_DATABASE_URL", None)
    assert temporal_reachable(Settings(temporal_address=server.address), timeout=10)
    processes = [
        closeloop(["worker", "--shutdown-grace", "2"], env),
        closeloop(["relay", "--poll-interval", "0.05"], env),
    ]
    app = GrievanceApp(sqlite_env(tmp_path / "events.sqlite"))
    try:
        gid = app.receive_grievance(
            OPERATOR,
            channel="hotline",
            citizen_name="李雷",
            citizen_phone="13712345678",
            text="路灯不亮。",
            location=Location("haidian", "xueyuanlu", "xyl-01", "xyl-01-g1", ""),
        ).grievance_id
        app.classify_grievance(gid, OPERATOR, category="PM01")
        app.dispatch_grievance(gid, OPERATOR)
        client = await server.connect()
        handle = client.get_workflow_handle(workflow_id_for(str(gid)))
        deadline = time.monotonic() + 40
        state: WorkflowState | None = None
        while state is None or state.version < 3:
            assert all(p.poll() is None for p in processes), "a process exited early"
            try:
                state = await handle.query(
                    "state", result_type=WorkflowState, rpc_timeout=timedelta(seconds=2)
                )
            except RPCError:
                state = None
                await asyncio.sleep(0.1)
            assert time.monotonic() < deadline, "the workflow never caught up"
        assert state.status == "dispatched"
        assert {d.kind for d in state.deadlines} == {"sign_for", "resolve"}
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [stopped_output(p) for p in processes]
        app.close()
        server.stop()
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert "worker.stopped" in outputs[0]
    assert "relay.stopped" in outputs[1]
