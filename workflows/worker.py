"""The Temporal worker for GrievanceWorkflow and its activities.

Activities are synchronous (eventsourcing is), so they run in a thread pool owned by
the worker; the workflow itself runs in Temporal's sandbox. The sandbox re-imports the
workflow module for every workflow instance it creates; the stable, deterministic
modules it uses (the domain's values, the messages, the ladder, pydantic) are passed
through (``PASSTHROUGH_MODULES``), so each instance re-executes only
``workflows/grievance.py`` itself while the sandbox's determinism checks still apply to
the workflow's own code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.abc
import importlib.machinery
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from types import CodeType, ModuleType
from typing import Any, ClassVar, NoReturn

from pydantic import TypeAdapter
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from domain.application import GrievanceApp
from workflows.activities import GrievanceActivities, RoundActivities
from workflows.grievance import GrievanceWorkflow
from workflows.rounds import RatingRoundWorkflow
from workflows.webhooks import WebhookDirectory

DEFAULT_ACTIVITY_THREADS = 16
# Workflows kept in the worker's sticky cache (temporalio's default: 1,000). A grievance's
# workflow is busy for seconds at a time (a signal, a step, its activity) and then waits
# for minutes to days. A cached one costs ~60-80 KiB of worker memory (temporalio's
# instance and the sandbox's copy of the workflow module, ~45 KiB traced, the rest in the
# SDK core); the least recently used is evicted, and replayed from its history when its
# next timer or signal arrives (measured: ~10 ms more worker CPU for that task than for a
# cached workflow's).
# 256 covers the workflows in flight at the end-to-end benchmark's fastest rate (16/s,
# dispatch to close in seconds), so only the idle ones are replayed.
MAX_CACHED_WORKFLOWS = 256
PASSTHROUGH_MODULES = (
    "domain",
    "workflows.messages",
    "workflows.ladder",
    "workflows.activities",
    "workflows.webhooks",
    "pydantic",
    "pydantic_core",
    "eventsourcing",
    "httpx",
    "tenacity",
)


class _CompiledOnceLoader(importlib.machinery.SourceFileLoader):
    """A source loader that compiles its module once per process and reuses the code."""

    _code: ClassVar[dict[str, CodeType]] = {}

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._code.get(self.path)
        if code is None:
            code = super().get_code(fullname)
            if code is not None:
                self._code[self.path] = code
        return code


class _WorkflowModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the workflow modules with ``_CompiledOnceLoader``.

    The sandbox executes ``workflows.grievance`` (and ``workflows.rounds``) afresh for
    every workflow instance it creates; without a ``.pyc`` beside it
    (``PYTHONDONTWRITEBYTECODE``, a read-only checkout) each of those executions compiled
    the source again. The code object is immutable, so reusing it changes nothing the
    workflow can observe.
    """

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            assert spec.origin is not None
            spec.loader = _CompiledOnceLoader(fullname, spec.origin)
        return spec


def compile_workflow_modules_once() -> None:
    """Install ``_WorkflowModuleFinder`` for the workflow modules (once per process)."""
    if not any(isinstance(f, _WorkflowModuleFinder) for f in sys.meta_path):
        names = frozenset(
            {"workflows", GrievanceWorkflow.__module__, RatingRoundWorkflow.__module__}
        )
        sys.meta_path.insert(0, _WorkflowModuleFinder(names))


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with ``PASSTHROUGH_MODULES`` imported once per worker (also for the
    Replayer, so replays run the workflow exactly as the worker does)."""
    compile_workflow_modules_once()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


_TYPE_ADAPTERS = functools.lru_cache(maxsize=1024)(TypeAdapter)


class SharedTypeAdapterPayloadConverter(PydanticPayloadConverter):
    """temporalio's pydantic payload converter with one ``TypeAdapter`` cache per process.

    The worker builds a payload converter for every workflow instance; the stock one
    starts with an empty cache, so each instance built (and kept) its own adapters for
    the same few dataclasses: ~40 KiB per open workflow and the CPU to build them. The
    JSON on the wire is the same.
    """

    def __init__(self) -> None:
        super().__init__()
        for converter in self.converters.values():
            if isinstance(converter, PydanticJSONPlainPayloadConverter):
                converter._type_adapter = _TYPE_ADAPTERS


def worker_client(client: Client) -> Client:
    """``client`` with ``SharedTypeAdapterPayloadConverter`` when it speaks pydantic."""
    converter = client.data_converter
    if converter.payload_converter_class is not PydanticPayloadConverter:
        return client
    config = client.config()
    config["data_converter"] = dataclasses.replace(
        converter, payload_converter_class=SharedTypeAdapterPayloadConverter
    )
    return Client(**config)


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
    worker_options.setdefault("workflow_runner", workflow_runner())
    worker_options.setdefault("max_cached_workflows", MAX_CACHED_WORKFLOWS)
    return Worker(
        worker_client(client),
        task_queue=task_queue,
        workflows=[GrievanceWorkflow, RatingRoundWorkflow],
        activities=[*activities.all(), RoundActivities(app).step],
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
