"""The Temporal worker for GrievanceWorkflow and its activities.

Activities are synchronous (eventsourcing is), so they run in a thread pool owned by
the worker; the workflow itself runs in Temporal's sandbox.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.worker import Worker

from domain.application import GrievanceApp
from workflows.activities import GrievanceActivities
from workflows.grievance import GrievanceWorkflow
from workflows.webhooks import WebhookDirectory

DEFAULT_ACTIVITY_THREADS = 16


def build_worker(
    client: Client,
    app: GrievanceApp,
    *,
    task_queue: str,
    executor: ThreadPoolExecutor,
    activity_threads: int,
    webhooks: WebhookDirectory | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker for ``task_queue``; the caller owns ``executor`` (``activity_threads``
    wide) and shuts it down after the worker."""
    activities = GrievanceActivities(app, webhooks)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[GrievanceWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=activity_threads,
        **worker_options,
    )


@asynccontextmanager
async def running_worker(
    client: Client,
    app: GrievanceApp,
    *,
    task_queue: str,
    webhooks: WebhookDirectory | None = None,
    activity_threads: int = DEFAULT_ACTIVITY_THREADS,
    **worker_options: Any,
) -> AsyncIterator[Worker]:
    """Run a worker in the background for the ``async with`` block, then shut it down."""
    with ThreadPoolExecutor(
        max_workers=activity_threads, thread_name_prefix="closeloop-activity"
    ) as executor:
        worker = build_worker(
            client,
            app,
            task_queue=task_queue,
            executor=executor,
            activity_threads=activity_threads,
            webhooks=webhooks,
            **worker_options,
        )
        async with worker:
            yield worker


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for a graceful shutdown of worker and relay."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def hard_exit(code: int) -> NoReturn:
    """End a worker/relay process after its clean shutdown without interpreter teardown.

    temporalio's core runtime threads can abort (SIGABRT/SIGSEGV) while the interpreter
    finalises, turning a graceful stop into a crash exit (STACK-NOTES); everything is
    closed and flushed by now, so skip the teardown.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
