"""The relay: the application's notification log → ``signal_with_start`` of each workflow.

How it stays exactly-once in effect
-----------------------------------
- The position is eventsourcing's own tracking: a ``TrackingRecorder`` built by the
  same persistence module as the event store (SQLite file or PostgreSQL schema; in
  memory for unit tests), keyed ``Grievances/<relay name>``. No cursor file.
- A batch of notifications is read, grouped by grievance (several events of one
  grievance are coalesced into one signal: each signal costs the workflow a task),
  and every ``signal_with_start`` must be accepted by Temporal **before** the batch's
  last notification id is recorded. A relay killed mid-batch therefore re-sends part
  of a batch (at-least-once); workflows ignore versions they have applied, so the
  effect is exactly once.
- The envelope (``GrievanceUpdate``) carries the grievance's open deadlines and
  current assignments as of the newest event in the batch, read from the aggregate at
  that version, plus the ladder instants (urge share, level-2 lapse) from the same SLA
  policy the domain used. Workflows never recompute a deadline.
- If Temporal is unreachable, nothing is recorded and the batch is retried with
  exponential backoff (reconnecting the client); commands keep being accepted by the
  application meanwhile, and the relay catches up in log order, so in order per
  grievance.
- Once caught up, the relay reads again after ``poll_interval`` (1.5 s): a grievance's
  events within it (dispatch and sign-for, resolve and close) arrive in one batch and so
  in one signal. Measured at 6 grievances/s end to end: Temporal, worker and relay CPU
  per grievance ~20 % lower than at 0.5 s. Ladder instants are absolute, so the wait
  only delays a step that falls due within it (the ``drill`` profile's seconds).
- Only events that change orchestration are sent (``RELAYED_EVENTS``); the workflow's
  own Urged/Escalated and events like ProgressReported are skipped.
- A grievance's workflow starts with its first deadline (dispatch): a grievance that is
  only received (or classified) gets no signal and no workflow; one that ends before
  dispatch is signalled only if an earlier relay already started its workflow.

Partitions (``closeloop relay --partition i/N``)
-----------------------------------------------
N relays can share the log: relay ``i`` handles the grievances whose UUID, as an
integer, is ``i`` modulo ``N`` (stable across processes, unlike ``hash()``); each
partition has its own tracking key (``Grievances/relay-<i>of<N>``), so they advance
independently. One grievance always goes through one relay, which keeps its events
in order. Changing N means new tracking keys: start the new set from the old
minimum position (or let them re-send: workflows dedupe).

Leases and failover (``closeloop relay --partitions N``)
------------------------------------------------------
Instead of a fixed ``i/N`` per process, run any number of identical relay processes
with ``--partitions N``. On PostgreSQL each process holds a dedicated connection on
which it claims partitions with session-level ``pg_try_advisory_lock`` (key: a hash of
database, schema and ``relay-<i>of<N>``) and relays every partition it holds, each
with the same tracking key as the static mode (``Grievances/relay-<i>of<N>``), so a
partition's position is shared by whoever holds it. Every ``lease_interval`` seconds
(2 by default) it retries the partitions nobody holds. Each process also holds a
membership lock, so it can count the live relays and keeps only its fair share
(``ceil(N / relays)``), releasing the rest between batches; the others pick them up.
When a relay process dies, its connection closes, PostgreSQL releases its locks and
a survivor claims its partitions at its next lease round: takeover within about
``lease_interval`` plus the time PostgreSQL needs to notice the dead connection
(immediate for a killed process; TCP keepalives bound it for a lost host). A relay
that loses its lease connection stops relaying at once and reclaims later; if two
relays ever overlap on a partition (a stale lease), workflows still ignore versions
they have applied. On SQLite (one machine) or in memory the one process simply owns
every partition. The leases are built from settings by the composition root
(``closeloop/postgres.py``) and handed in as a ``PartitionLeases``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import structlog
from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.utils import Environment
from opentelemetry import context as otel_context
from opentelemetry import propagate
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from domain.application import GrievanceApp
from domain.grievance import Assignment, Grievance
from domain.model import Deadline, DeadlineKind
from domain.ratings import RatingRound
from workflows.grievance import GrievanceWorkflow
from workflows.messages import (
    FINAL_STATUSES,
    AssignmentInfo,
    DeadlineInfo,
    EventRef,
    GrievanceUpdate,
    GrievanceWorkflowInput,
    RoundInput,
    round_workflow_id,
    workflow_id_for,
)
from workflows.rounds import RatingRoundWorkflow
from workflows.webhooks import WebhookDirectory

log = structlog.get_logger(__name__)

GRIEVANCE_TOPIC_PREFIX = f"{Grievance.__module__}:{Grievance.__qualname__}."
# A rating round's opening starts its clock (workflows.rounds).
ROUND_OPENED_TOPIC = f"{RatingRound.__module__}:{RatingRound.__qualname__}.Opened"
RELAYED_EVENTS = frozenset(
    {
        "Received",
        "Dispatched",
        "SignedFor",
        "Returned",
        "Arbitrated",
        "ExtensionGranted",
        "Summoned",
        "ReportedIn",
        "PartCompleted",
        "Resolved",
        "AnsweredAtIntake",  # resolved at once when the policy wants a 回访 after it
        "Reopened",
        "Closed",
        "Rejected",
        "Merged",
        "Withdrawn",
    }
)
TRACKING_ENV_NAME = "Relay"


@dataclass(frozen=True)
class Partition:
    """Which share of the grievances one relay handles (``i/N``)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index}/{self.count}: need 0 <= i < N")

    @classmethod
    def parse(cls, text: str) -> Partition:
        head, sep, tail = text.partition("/")
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise ValueError(f"partition {text!r}: expected i/N, e.g. 0/2")
        return cls(int(head), int(tail))

    @property
    def name(self) -> str:
        return "relay" if self.count == 1 else f"relay-{self.index}of{self.count}"

    def owns(self, grievance_id: UUID) -> bool:
        return grievance_id.int % self.count == self.index


def tracking_recorder(env: Mapping[str, str]) -> TrackingRecorder:
    """A tracking recorder on the event store's own backend (same SQLite file / PG schema),
    from the same persistence settings the application was built with."""
    factory = InfrastructureFactory.construct(Environment(TRACKING_ENV_NAME, dict(env)))
    return factory.tracking_recorder()


def _window_start(grievance: Grievance, deadline: Deadline) -> datetime:
    assignment: Assignment | None = (
        grievance.assignments.get(deadline.assignment_id) if deadline.assignment_id else None
    )
    start: datetime | None = None
    if deadline.kind is DeadlineKind.FEEDBACK:
        start = grievance.resolved_at
    elif deadline.kind is DeadlineKind.REDISPATCH and assignment is not None:
        start = assignment.returned_at
    elif assignment is not None:
        start = assignment.dispatched_at
    return start if start is not None and start <= deadline.due else deadline.due


def build_update(
    app: GrievanceApp,
    grievance: Grievance,
    events: list[EventRef],
    webhooks: WebhookDirectory | None = None,
) -> GrievanceUpdate:
    """The envelope for a grievance as loaded at the newest event relayed."""
    grievance_id = grievance.id
    sla = app.policies.sla
    webhooks = webhooks or WebhookDirectory()
    deadlines = [
        DeadlineInfo(
            kind=d.kind.value,
            due=d.due,
            urge_at=sla.urge_at(_window_start(grievance, d), d.due),
            level2_at=sla.level2_at(d.due),
            assignment_id=d.assignment_id,
            department=d.department,
        )
        for d in grievance.open_deadlines()
    ]
    assignments = [
        AssignmentInfo(
            assignment_id=a.id,
            department=a.department,
            role=a.role.value,
            round=a.round,
            state=a.state.value,
            notify=a.department in webhooks,
        )
        for a in grievance.assignments.values()
        if a.round == grievance.round or a.is_open
    ]
    return GrievanceUpdate(
        grievance_id=str(grievance_id),
        version=grievance.version,
        status=grievance.status.value,
        events=events,
        number=grievance.number,
        round=grievance.round,
        reopen_count=grievance.reopen_count,
        deadlines=deadlines,
        assignments=assignments,
    )


@contextlib.contextmanager
def continuing_trace(traceparent: str | None) -> Iterator[None]:
    """Make the trace of the request that recorded the event current, so the Temporal
    client's tracing interceptor puts the signal (and the workflow and activities after
    it) into that trace. A no-op when the event was not traced or tracing is off."""
    if not traceparent:
        yield
        return
    token = otel_context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


ClientSource = Client | Callable[[], Awaitable[Client]]


class Relay:
    """Follows the notification log and signals workflows; see the module docstring."""

    def __init__(
        self,
        app: GrievanceApp,
        tracking: TrackingRecorder,
        client: ClientSource,
        *,
        task_queue: str,
        partition: Partition | None = None,
        webhooks: WebhookDirectory | None = None,
        batch_size: int = 256,
        concurrency: int = 32,
        poll_interval: float = 1.5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        rpc_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self.app = app
        self.tracking = tracking
        self.task_queue = task_queue
        self.partition = partition or Partition()
        self.webhooks = webhooks or WebhookDirectory()
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rpc_timeout = rpc_timeout
        self.tracking_key = f"{app.name}/{self.partition.name}"
        self.signals_sent = 0
        self.failures = 0
        if isinstance(client, Client):
            self._client: Client | None = client
            self._connect: Callable[[], Awaitable[Client]] | None = None
        else:
            self._client = None
            self._connect = client

    # ------------------------------------------------------------ position

    def position(self) -> int:
        """The last notification id whose signals Temporal accepted."""
        return self.tracking.max_tracking_id(self.tracking_key) or 0

    def _position_or_none(self) -> int | None:
        """For log lines: the position, or None while the store cannot be read."""
        try:
            return self.position()
        except Exception:
            return None

    async def _get_client(self) -> Client:
        if self._client is None:
            assert self._connect is not None
            self._client = await self._connect()
        return self._client

    # -------------------------------------------------------------- batches

    def _read_batch(
        self,
    ) -> tuple[int | None, int, list[tuple[GrievanceUpdate, str | None]], list[UUID]]:
        """The batch's last notification id, its size, per grievance the envelope with
        the trace context of its newest event (see ``continuing_trace``), and the rating
        rounds it opened."""
        notifications = self.app.recorder.select_notifications(self.position() + 1, self.batch_size)
        if not notifications:
            return None, 0, [], []
        rounds = [
            UUID(str(n.originator_id))
            for n in notifications
            if n.topic == ROUND_OPENED_TOPIC and self.partition.owns(UUID(str(n.originator_id)))
        ]
        groups: dict[UUID, list[EventRef]] = {}
        for n in notifications:
            if not n.topic.startswith(GRIEVANCE_TOPIC_PREFIX):
                continue
            name = n.topic[len(GRIEVANCE_TOPIC_PREFIX) :]
            grievance_id = UUID(str(n.originator_id))
            if name not in RELAYED_EVENTS or not self.partition.owns(grievance_id):
                continue
            groups.setdefault(grievance_id, []).append(EventRef(name, n.originator_version))
        updates = []
        for gid, refs in groups.items():
            grievance = self.app.get_grievance(gid, version=refs[-1].version)
            update = build_update(self.app, grievance, refs, self.webhooks)
            updates.append((update, grievance.trace))
        return notifications[-1].id, len(notifications), updates, rounds

    @staticmethod
    def _workflow_due(update: GrievanceUpdate) -> bool:
        """A workflow starts with the grievance's first deadline (dispatch): before that
        (received, classified, or rejected / merged / withdrawn / answered at intake)
        there is nothing to wait for, and nothing to start."""
        return bool(update.deadlines or update.assignments)

    async def run_once(self) -> int:
        """Relay one batch; returns how many notifications it covered (0 = caught up)."""
        last_id, count, updates, rounds = await asyncio.to_thread(self._read_batch)
        if last_id is None:
            return 0
        for round_id in rounds:
            await self._start_round(await self._get_client(), round_id)
        if updates:
            client = await self._get_client()
            semaphore = asyncio.Semaphore(self.concurrency)
            async with asyncio.TaskGroup() as group:
                for update, trace in updates:
                    with continuing_trace(trace):
                        group.create_task(self._send(client, update, semaphore))
        # Only now, with every signal accepted, does the position move.
        await asyncio.to_thread(self.tracking.insert_tracking, Tracking(self.tracking_key, last_id))
        return count

    async def _send(
        self, client: Client, update: GrievanceUpdate, semaphore: asyncio.Semaphore
    ) -> None:
        if not self._workflow_due(update):
            if update.status in FINAL_STATUSES:
                async with semaphore:
                    await self._signal_if_running(client, update)
            return
        async with semaphore:
            try:
                await client.start_workflow(
                    GrievanceWorkflow.run,
                    GrievanceWorkflowInput(update.grievance_id),
                    id=workflow_id_for(update.grievance_id),
                    task_queue=self.task_queue,
                    start_signal="update",
                    start_signal_args=[update],
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                    rpc_timeout=self.rpc_timeout,
                )
            except WorkflowAlreadyStartedError:
                # The workflow completed: the grievance is final and needs no signal.
                log.debug("relay.workflow_closed", grievance_id=update.grievance_id)
                return
            self.signals_sent += 1

    async def _start_round(self, client: Client, round_id: UUID) -> None:
        """A rating round's clock: one run per round, ever (a repeat finds it started)."""
        r = await asyncio.to_thread(self.app.get_round, round_id)
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                RatingRoundWorkflow.run,
                RoundInput(str(round_id), r.urge_at, r.deadline),
                id=round_workflow_id(round_id),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=self.rpc_timeout,
            )
            self.signals_sent += 1

    async def _signal_if_running(self, client: Client, update: GrievanceUpdate) -> None:
        """A grievance that ended before dispatch: only a workflow started at intake by an
        earlier relay can exist, and it must hear that the grievance is final."""
        try:
            await client.get_workflow_handle(workflow_id_for(update.grievance_id)).signal(
                GrievanceWorkflow.update, update, rpc_timeout=self.rpc_timeout
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return
        self.signals_sent += 1

    # ----------------------------------------------------------------- loop

    def _note_failure(self) -> None:
        self.failures += 1
        if self._connect is not None:
            self._client = None  # reconnect on the next attempt

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Relay until ``stop`` is set, backing off while Temporal or the store is down."""
        stop = stop or asyncio.Event()

        async def step() -> bool:
            return await self.run_once() >= self.batch_size

        def failed(err: BaseException, delay: float) -> None:
            self._note_failure()
            log.warning(
                "relay.batch_failed",
                error=_describe(err),
                retry_in=round(delay, 2),
                position=self._position_or_none(),
            )

        log.info("relay.started", partition=self.partition.name, position=self._position_or_none())
        await _follow(stop, step, self, on_failure=failed)
        log.info("relay.stopped", partition=self.partition.name, position=self._position_or_none())


def _describe(err: BaseException) -> str:
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in err.exceptions)
    return f"{type(err).__name__}: {err}"


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class _Pacing(Protocol):
    poll_interval: float
    backoff_initial: float
    backoff_max: float


async def _follow(
    stop: asyncio.Event,
    step: Callable[[], Awaitable[bool]],
    pacing: _Pacing,
    *,
    on_failure: Callable[[BaseException, float], None],
) -> None:
    """Call ``step`` until ``stop`` is set: again at once while it answers busy, after
    ``poll_interval`` when idle, with exponential backoff while it raises (the batch is
    retried, nothing is lost)."""

    def before_sleep(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        error = state.outcome.exception()
        assert error is not None
        on_failure(error, state.next_action.sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential(multiplier=pacing.backoff_initial, max=pacing.backoff_max),
        stop=lambda _state: stop.is_set(),
        sleep=lambda seconds: _wait(stop, seconds),
        before_sleep=before_sleep,
        reraise=True,
    )
    while not stop.is_set():
        try:
            busy: bool = await retrying(step)
        except Exception:
            return  # stopped while backing off
        if not busy:
            await _wait(stop, pacing.poll_interval)


class PartitionsFailedError(Exception):
    """Some held partitions' batches failed this round (the others were relayed)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# ------------------------------------------------------------------ leases


class PartitionLeases(Protocol):
    """Which of the N partitions this process may relay right now."""

    count: int

    def refresh(self) -> frozenset[int]: ...

    def close(self) -> None: ...


class AllPartitions:
    """One machine (SQLite, memory): this process owns every partition. (Advisory-lock
    leases on PostgreSQL are built by the composition root: ``closeloop/postgres.py``.)"""

    def __init__(self, count: int) -> None:
        self.count = count

    def refresh(self) -> frozenset[int]:
        return frozenset(range(self.count))

    def close(self) -> None:
        return None


class LeasedRelay:
    """Relays whichever partitions its leases hold (``closeloop relay --partitions N``)."""

    def __init__(
        self,
        app: GrievanceApp,
        tracking: TrackingRecorder,
        client: ClientSource,
        leases: PartitionLeases,
        *,
        task_queue: str,
        lease_interval: float = 2.0,
        **relay_options: Any,
    ) -> None:
        self.leases = leases
        self.lease_interval = lease_interval
        self.relays = {
            i: Relay(
                app,
                tracking,
                client,
                task_queue=task_queue,
                partition=Partition(i, leases.count),
                **relay_options,
            )
            for i in range(leases.count)
        }
        first = self.relays[0]
        self.poll_interval = first.poll_interval
        self.batch_size = first.batch_size
        self.backoff_initial = first.backoff_initial
        self.backoff_max = first.backoff_max
        self.held: frozenset[int] = frozenset()

    @property
    def signals_sent(self) -> int:
        return sum(r.signals_sent for r in self.relays.values())

    async def refresh(self) -> frozenset[int]:
        held = await asyncio.to_thread(self.leases.refresh)
        if held != self.held:
            log.info(
                "relay.leases_changed",
                held=sorted(held),
                acquired=sorted(held - self.held),
                released=sorted(self.held - held),
                partitions=self.leases.count,
                at=time.time(),
            )
        self.held = held
        return held

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        next_refresh = 0.0

        async def step() -> bool:
            nonlocal next_refresh
            if time.monotonic() >= next_refresh:
                await self.refresh()
                next_refresh = time.monotonic() + self.lease_interval
            if not self.held:
                await _wait(stop, max(0.05, next_refresh - time.monotonic()))
                return True  # straight back to the lease round
            busy = False
            failed: list[str] = []
            for i in sorted(self.held):
                relay = self.relays[i]
                try:
                    covered = await relay.run_once()
                except Exception as err:  # the other partitions still get their batch
                    relay._note_failure()
                    failed.append(f"{relay.partition.name}: {_describe(err)}")
                    continue
                busy = busy or covered >= self.batch_size
            if failed:
                raise PartitionsFailedError(failed)
            return busy

        def failed(err: BaseException, delay: float) -> None:
            errors = err.errors if isinstance(err, PartitionsFailedError) else [_describe(err)]
            log.warning("relay.batch_failed", errors=errors, retry_in=round(delay, 2))

        log.info("relay.started", partitions=self.leases.count, mode="lease")
        try:
            await _follow(stop, step, self, on_failure=failed)
        finally:
            await asyncio.to_thread(self.leases.close)
            log.info("relay.stopped", partitions=self.leases.count, mode="lease")
