"""Intake soak against ``closeloop api`` as a real process (uvicorn on a real port, the
SQLite event store, no Temporal): issue 22, connection resets under load.

Bounded (16 clients × 20 s by default, ~35 s with start-up; ``CLOSELOOP_SOAK_CLIENTS``
and ``CLOSELOOP_SOAK_SECONDS`` to soak longer). Every request is answered or retried to
an answer with the same Idempotency-Key, no transport error happens that the soak did
not cause itself, and the event store holds exactly one grievance per key.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from closeloop.dev.embedded import ensure_dev_tokens
from closeloop.dev.supervisor import ComponentSpec, Supervisor, free_port, python_cli
from closeloop.settings import Settings
from tests.support.soak import grievances_in_store, run_soak

pytestmark = [pytest.mark.soak]

CLIENTS = int(os.environ.get("CLOSELOOP_SOAK_CLIENTS", "16"))
SECONDS = float(os.environ.get("CLOSELOOP_SOAK_SECONDS", "20"))


class Api:
    def __init__(self, var_dir: Path, port: int, token: str, supervisor: Supervisor) -> None:
        self.var_dir, self.port, self.token, self.supervisor = var_dir, port, token, supervisor
        self.url = f"http://127.0.0.1:{port}"

    def log_events(self) -> list[dict[str, Any]]:
        path = self.var_dir / "logs" / "api.log"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    var_dir: Path = tmp_path_factory.mktemp("soak-var")
    port = free_port(None)
    tokens = ensure_dev_tokens(Settings(var_dir=var_dir))
    env = {
        "CLOSELOOP_VAR_DIR": str(var_dir),
        "CLOSELOOP_LOG_FORMAT": "json",
        "CLOSELOOP_LOG_LEVEL": "INFO",
        "CLOSELOOP_RATE_LIMITS": "false",  # 16 clients on one token, as fast as it answers
    }

    def ready() -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0).status_code == 200

    supervisor = Supervisor(var_dir / "logs")
    spec = ComponentSpec(
        "api",
        python_cli("api", "--port", str(port), "--host", "127.0.0.1"),
        env=env,
        ready=ready,
        ready_timeout=60,
    )
    try:
        supervisor.start(spec)
        yield Api(var_dir, port, tokens["operator"], supervisor)
    finally:
        supervisor.stop_all(timeout=10)


def test_an_idle_connection_outlives_the_clients_pool_expiry(api: Api) -> None:
    """The root cause of issue 22: uvicorn closed idle connections after 5 s, exactly when
    httpx (5 s pool expiry) could still reuse them. Now the server keeps them longer than
    any of our clients or proxies, so the client is the one that closes."""
    with httpx.Client(base_url=api.url, limits=httpx.Limits(keepalive_expiry=60.0)) as client:
        first = client.get("/healthz")
        first_port = _local_port(first)
        time.sleep(6.0)  # longer than uvicorn's default keep-alive (5 s)
        second = client.get("/healthz")
        second_port = _local_port(second)
    assert first.status_code == second.status_code == 200
    assert first_port == second_port, "the server closed an idle connection"


def _local_port(response: httpx.Response) -> int:
    sock: socket.socket = response.extensions["network_stream"].get_extra_info("socket")
    return int(sock.getsockname()[1])


def test_soak_every_request_answered_once_and_no_unexplained_reset(api: Api) -> None:
    report = asyncio.run(run_soak(api.url, api.token, clients=CLIENTS, seconds=SECONDS))
    summary = report.summary()
    print("soak:", summary)

    assert not report.gave_up, report.gave_up[:5]
    assert not report.unexplained, f"transport errors the soak did not cause: {report.unexplained}"
    assert set(report.statuses) == {201}, summary
    assert len(report.answered) == report.keys, summary  # every key answered
    assert not report.disagreeing, "a retry was answered with another grievance"
    assert report.distinct_ids == report.keys, summary
    assert report.cut_short > 0 and report.idle_reuses > 0, summary  # both paths exercised

    stored = grievances_in_store(api.var_dir)
    assert stored == set(report.answered.values()), (
        f"{len(stored)} grievances in the store for {report.keys} keys"
    )

    # The server logs each connection that ended abnormally: here only the ones whose
    # answer the soak dropped (closed mid-request, or reset as the answer arrived).
    lost = [e for e in api.log_events() if e.get("event") == "connection-lost"]
    assert 0 < len(lost) <= report.cut_short, (len(lost), summary)
    assert all(e["path"] == "/v1/grievances" for e in lost), lost[:3]
