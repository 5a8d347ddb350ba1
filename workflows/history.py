"""What the grievance's Temporal workflow did, read from Temporal's own history.

``history_reader(connect)`` gives the API's ``Services.workflow_history`` port (the
composition root passes it in; the API never imports this package): an async callable
that fetches every run of ``grievance-<id>`` (walking back through continue-as-new) and
summarises it as plain dicts, oldest first: runs started and ended, signals received,
timers (started, fired or cancelled) and activities (scheduled with their input,
completed, failed, timed out). It answers None when no such workflow exists and raises
when Temporal cannot be reached; the case file says which.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

MAX_RUNS = 20  # a grievance continues as new once per reopening and on long histories
_SCALARS = (str, int, float, bool, type(None))


def _when(event: Any) -> str:
    moment: datetime = event.event_time.ToDatetime(tzinfo=UTC)
    return moment.isoformat()


def _decode(payloads: Iterable[Any]) -> list[Any]:
    """JSON payloads (what the pydantic converter writes); anything else is left out."""
    decoded: list[Any] = []
    for payload in payloads:
        encoding = payload.metadata.get("encoding", b"").decode(errors="replace")
        if encoding.startswith("json"):
            try:
                decoded.append(json.loads(payload.data))
                continue
            except ValueError:
                pass
        decoded.append(f"<{encoding or 'binary'}>")
    return decoded


def _flat(value: Any) -> Any:
    """The scalar fields of a decoded argument (nested lists and objects are summarised)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if isinstance(v, _SCALARS)}
    return value if isinstance(value, _SCALARS) else f"<{type(value).__name__}>"


def summarise(history: Any, run_id: str) -> list[dict[str, Any]]:
    """One run's history events as entries (timers and activities merged with their ends)."""
    entries: list[dict[str, Any]] = []
    timers: dict[int, dict[str, Any]] = {}
    activities: dict[int, dict[str, Any]] = {}
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            entries.append(
                {
                    "kind": "run_started",
                    "at": _when(event),
                    "run_id": run_id,
                    "workflow_type": attrs.workflow_type.name,
                    "task_queue": attrs.task_queue.name,
                    "continued_from": attrs.continued_execution_run_id or None,
                }
            )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            args = _decode(attrs.input.payloads)
            first = args[0] if args and isinstance(args[0], dict) else {}
            entries.append(
                {
                    "kind": "signal",
                    "at": _when(event),
                    "run_id": run_id,
                    "name": attrs.signal_name,
                    "version": first.get("version"),
                    "events": [
                        e.get("type") or e.get("event_type") or e.get("name")
                        for e in first.get("events", [])
                        if isinstance(e, dict)
                    ],
                }
            )
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            seconds = attrs.start_to_fire_timeout.ToTimedelta().total_seconds()
            started = event.event_time.ToDatetime(tzinfo=UTC)
            entry = {
                "kind": "timer",
                "at": started.isoformat(),
                "run_id": run_id,
                "timer_id": attrs.timer_id,
                "duration_seconds": seconds,
                "fires_at": datetime.fromtimestamp(started.timestamp() + seconds, UTC).isoformat(),
                "outcome": "pending",
                "ended_at": None,
            }
            timers[event.event_id] = entry
            entries.append(entry)
        elif kind in (EventType.EVENT_TYPE_TIMER_FIRED, EventType.EVENT_TYPE_TIMER_CANCELED):
            fired = kind == EventType.EVENT_TYPE_TIMER_FIRED
            attrs = (
                event.timer_fired_event_attributes
                if fired
                else event.timer_canceled_event_attributes
            )
            timer = timers.get(attrs.started_event_id)
            if timer is not None:
                timer["outcome"] = "fired" if fired else "cancelled"
                timer["ended_at"] = _when(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            args = _decode(attrs.input.payloads)
            entry = {
                "kind": "activity",
                "at": _when(event),
                "run_id": run_id,
                "activity_id": attrs.activity_id,
                "activity_type": attrs.activity_type.name,
                "input": _flat(args[0]) if args else None,
                "outcome": "pending",
                "attempt": None,
                "ended_at": None,
                "result": None,
                "failure": None,
            }
            activities[event.event_id] = entry
            entries.append(entry)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            activity = activities.get(attrs.scheduled_event_id)
            if activity is not None:
                activity["attempt"] = attrs.attempt
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = event.activity_task_completed_event_attributes
            activity = activities.get(attrs.scheduled_event_id)
            if activity is not None:
                result = _decode(attrs.result.payloads)
                activity["outcome"] = "completed"
                activity["ended_at"] = _when(event)
                activity["result"] = _flat(result[0]) if result else None
        elif kind in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
        ):
            name, attrs = {
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: (
                    "failed",
                    event.activity_task_failed_event_attributes,
                ),
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: (
                    "timed_out",
                    event.activity_task_timed_out_event_attributes,
                ),
                EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: (
                    "cancelled",
                    event.activity_task_canceled_event_attributes,
                ),
            }[kind]
            activity = activities.get(attrs.scheduled_event_id)
            if activity is not None:
                activity["outcome"] = name
                activity["ended_at"] = _when(event)
                if "failure" in attrs.DESCRIPTOR.fields_by_name and attrs.HasField("failure"):
                    activity["failure"] = attrs.failure.message
        elif kind in _RUN_ENDS:
            entries.append(
                {
                    "kind": "run_ended",
                    "at": _when(event),
                    "run_id": run_id,
                    "outcome": _RUN_ENDS[kind],
                }
            )
    return entries


_RUN_ENDS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
}


async def fetch_workflow_history(client: Client, workflow_id: str) -> list[dict[str, Any]] | None:
    """Every run of ``workflow_id``, oldest first, summarised; None if it never existed."""
    runs: list[list[dict[str, Any]]] = []
    run_id: str | None = None
    for _ in range(MAX_RUNS):
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            history = await handle.fetch_history()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                if not runs:
                    return None
                break  # an older run already removed by retention
            raise
        if not history.events:
            break
        started = history.events[0].workflow_execution_started_event_attributes
        this_run = run_id or started.original_execution_run_id
        runs.append(summarise(history, this_run))
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            break
    return [entry for run in reversed(runs) for entry in run]


def history_reader(
    connect: Callable[[], Awaitable[Client]], timeout: float = 5.0
) -> Callable[[str], Awaitable[list[dict[str, Any]] | None]]:
    """The API's ``Services.workflow_history``: ``connect`` gives the (shared) client."""

    async def read(workflow_id: str) -> list[dict[str, Any]] | None:
        client = await asyncio.wait_for(connect(), timeout)
        return await asyncio.wait_for(fetch_workflow_history(client, workflow_id), timeout)

    return read
