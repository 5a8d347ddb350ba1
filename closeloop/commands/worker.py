"""``closeloop worker``: run the Temporal worker (GrievanceWorkflow and its activities)."""

from __future__ import annotations

import argparse
import asyncio
import functools
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Client

    from closeloop.settings import Settings
    from domain.application import GrievanceApp


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from closeloop.commands import subcommand

    add = subcommand(
        sub, "worker", "run the Temporal worker: grievance workflows, deadlines, webhooks", run
    ).add_argument
    add("--task-queue", default=None, help="task queue (None: CLOSELOOP_TEMPORAL_TASK_QUEUE)")
    add("--activity-threads", type=int, default=16, help="threads for the sync activities")
    add("--shutdown-grace", type=float, default=10.0, help="seconds to finish on SIGTERM/SIGINT")


def run(args: argparse.Namespace) -> int:
    from closeloop.commands import run_role

    run_role(functools.partial(_serve, args))


async def _serve(
    args: argparse.Namespace, settings: Settings, app: GrievanceApp, stop: asyncio.Event
) -> int:
    import structlog

    from closeloop.telemetry import configure_tracing, temporal_runtime, tracing_interceptors
    from workflows.webhooks import WebhookDirectory
    from workflows.worker import running_worker

    log = structlog.get_logger("closeloop.worker")
    task_queue = args.task_queue or settings.temporal_task_queue
    # The SDK's worker metrics on CLOSELOOP_METRICS_PORT (one runtime, built once);
    # traces of workflows and activities when CLOSELOOP_TRACING is on.
    configure_tracing(settings, "worker")
    try:
        client = await _connect_until_stopped(
            settings,
            stop,
            log,
            runtime=temporal_runtime(settings),
            interceptors=tracing_interceptors(settings),
        )
    except _StoppedError:
        return 0
    async with running_worker(
        client,
        app,
        task_queue=task_queue,
        webhooks=WebhookDirectory.from_file(settings.webhook_secrets_file),
        activity_threads=args.activity_threads,
        graceful_shutdown_timeout=timedelta(seconds=args.shutdown_grace),
    ):
        log.info(
            "worker.started",
            task_queue=task_queue,
            temporal=settings.temporal_address,
            namespace=settings.temporal_namespace,
        )
        await stop.wait()
        log.info("worker.stopping")
    log.info("worker.stopped")
    return 0


class _StoppedError(Exception):
    """Stopped (SIGTERM/SIGINT) before Temporal answered."""


async def _connect_until_stopped(
    settings: Settings, stop: asyncio.Event, log: Any, **options: Any
) -> Client:
    """Temporal may not be up yet: keep trying (0.5 s doubling to 30 s) until stopped;
    ``options`` go to ``connect_client``."""
    from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

    from closeloop.temporal import connect_client

    async def pause(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise _StoppedError

    def note(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        log.warning(
            "worker.connect_failed",
            error=str(state.outcome.exception()),
            retry_in=state.next_action.sleep,
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential(multiplier=0.5, max=30.0),
        sleep=pause,
        before_sleep=note,
        reraise=True,
    )
    return await retrying(connect_client, settings, **options)
