"""The embedded stack as real processes, for end-to-end tests.

``running_stack(tmp_path)`` starts what ``closeloop up`` starts (Temporal dev server,
worker, relay, projector, API on a real port) through the same supervisor, on free
ports, in a temporary var directory, with the ``drill`` SLA profile (deadlines in
seconds); it hands out an httpx client and the dev tokens, and stops every process
afterwards even when the test fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from closeloop.dev.embedded import StackConfig, StackPorts, component_specs, ensure_dev_tokens
from closeloop.dev.supervisor import Supervisor
from closeloop.settings import Settings

T = TypeVar("T")


@dataclass
class Stack:
    config: StackConfig
    supervisor: Supervisor
    tokens: dict[str, Any]
    client: httpx.Client

    def auth(self, who: str) -> dict[str, str]:
        """Headers for ``operator``, ``supervisor`` or a department code."""
        token = self.tokens.get(who) or self.tokens["departments"][who]
        return {"Authorization": f"Bearer {token}"}

    def post(
        self, path: str, who: str, body: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        return self.client.post(path, json=body or {}, headers={**self.auth(who), **headers})

    def get(self, path: str, who: str = "operator", **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.auth(who))

    def grievance(self, gid: str) -> dict[str, Any]:
        response = self.get(f"/v1/grievances/{gid}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def audit(self, gid: str) -> list[dict[str, Any]]:
        response = self.get(f"/v1/audit/grievances/{gid}/events", "supervisor")
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def logs(self, name: str, lines: int = 40) -> str:
        path = self.config.var_dir / "logs" / f"{name}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.2,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll until ``condition()`` is truthy and return it; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{extra}")
        time.sleep(interval)


@contextmanager
def running_stack(var_dir: Path, sla_profile: str = "drill") -> Iterator[Stack]:
    ports = StackPorts.choose(api=None, temporal=None, ui=None)
    config = StackConfig(var_dir=var_dir, ports=ports, sla_profile=sla_profile, ui=False)
    tokens = ensure_dev_tokens(Settings(var_dir=var_dir, sla_profile=sla_profile))
    supervisor = Supervisor(var_dir / "logs")
    try:
        for spec in component_specs(config):
            supervisor.start(spec)
        with httpx.Client(base_url=config.api_url, timeout=30.0) as client:
            yield Stack(config=config, supervisor=supervisor, tokens=tokens, client=client)
    finally:
        supervisor.stop_all(timeout=10)
