"""``closeloop api`` as a real process: serves HTTP, writes one JSON log line per request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.stores import SqliteDatabase, TokenStore
from tests.support.api import grievance_body
from tests.support.workflows import free_port


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "closeloop api exited early"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def test_closeloop_api_serves_and_logs_json(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLOSELOOP_VAR_DIR": str(tmp_path / "var"),
        "CLOSELOOP_LOG_FORMAT": "json",
        "CLOSELOOP_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
    }
    env.pop("CLOSELOOP_DATABASE_URL", None)
    cli = [sys.executable, "-m", "closeloop.cli"]
    store = TokenStore(SqliteDatabase(tmp_path / "var" / "api.sqlite"))
    _, token = store.create("operator", name="op-process")
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli, "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/healthz", process)
            ready = httpx.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 200  # Temporal is not running: degraded, still ready
            assert ready.json()["checks"]["temporal"]["ok"] is False
            assert "temporal" in ready.json()["degraded"]
            strict = httpx.get(f"{base}/readyz", params={"strict": "true"}, timeout=10)
            assert strict.status_code == 503
            assert ready.json()["checks"]["event_store"]["ok"] is True
            r = httpx.post(
                f"{base}/v1/grievances",
                json=grievance_body(),
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "proc-1"},
                timeout=10,
            )
            assert r.status_code == 201, r.text
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=15)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    created = next(line for line in requests if line.get("request_id") == "proc-1")
    assert created["route"] == "/v1/grievances" and created["status"] == 201
    assert created["principal"] == "op-process" and created["level"] == "info"
    assert "13812345678" not in log_path.read_text()
