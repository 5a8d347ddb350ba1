"""GrievanceWorkflow: one per grievance (``grievance-<uuid>``); it owns time for the loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.activities import GrievanceActivities
    from workflows.ladder import (
        NOTIFY_RETRY,
        NOTIFY_SCHEDULE_TO_CLOSE,
        NOTIFY_START_TO_CLOSE,
        STEP_RETRY,
        STEP_TIMEOUT,
        Step,
        ladder,
    )
    from workflows.messages import (
        FINAL_STATUSES,
        AssignmentInfo,
        CloseInput,
        EscalateInput,
        GrievanceOutcome,
        GrievanceUpdate,
        GrievanceWorkflowInput,
        NotifyInput,
        StepResult,
        UrgeInput,
        WorkflowState,
        workflow_id_for,
    )

if TYPE_CHECKING:
    # Annotations only: importing datetime at run time would build the sandbox's
    # restricted proxy of the module for every workflow instance.
    from collections.abc import Iterator
    from datetime import datetime

HISTORY_LIMIT = 2_000  # events; continue-as-new beyond it
RECENT_VERSIONS = 32
# Runs that start after this patch keep one timer for the next step's instant and re-arm
# it only when that instant changes; older runs re-waited (a new timer) on every signal.
STEADY_TIMER_PATCH = "steady-next-step-timer"


@workflow.defn
class GrievanceWorkflow:
    """Deadlines, urges, escalations and the feedback window of one grievance.

    Contract (what the relay and operators rely on):

    - signal ``update(GrievanceUpdate)``: sent by the relay (``signal_with_start``) for
      new domain events, from the grievance's first deadline (dispatch) on; one signal
      covers all of a grievance's events in one relay batch. Updates whose ``version``
      was already applied are ignored.
    - query ``state() -> WorkflowState``: applied version, status, the open deadlines,
      the current round's assignments (lead, assisting and summoned tracked separately),
      the ladder steps already acted on, and counters.
    - query ``pending_steps() -> list[str]``: the next steps, ``<iso time> <command id>``.

    Each open deadline from the events gets its ladder: urge (催办) at the profile's share
    of the window, escalate level 1 at the deadline, level 2 after the profile's lapse;
    the 回访 window gets an urge to the dispatch centre and, at its end, a close with
    outcome ``no_response``. Every step is an activity calling the application with
    ``only_if_open`` and the deadline's own instant, so a step whose deadline was met or
    moved records nothing. A granted extension or a reopening arrives as new deadlines,
    which re-arm the ladder. One durable timer waits for the next step's instant and is
    re-armed only when that instant changes, so a signal that leaves it as it was starts
    and cancels no timer (runs started before ``STEADY_TIMER_PATCH`` keep their
    timer per wait). The run ends when the grievance is final; it continues as
    new after each reopening and when the history grows long.
    """

    def __init__(self) -> None:
        self._inbox: list[GrievanceUpdate] = []
        self._state = WorkflowState()
        self._grievance_id = ""
        self._notifications: list[asyncio.Task[None]] = []
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None

    # ------------------------------------------------------------- handlers

    @workflow.signal
    def update(self, update: GrievanceUpdate) -> None:
        self._inbox.append(update)

    @workflow.query
    def state(self) -> WorkflowState:
        return self._state

    @workflow.query
    def pending_steps(self) -> list[str]:
        return [f"{s.at.isoformat()} {s.key}" for s in self._open_steps()]

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, input: GrievanceWorkflowInput) -> GrievanceOutcome:
        self._grievance_id = input.grievance_id
        if input.state is not None:
            self._state = input.state
        start_round = self._state.round
        steady_timer = workflow.patched(STEADY_TIMER_PATCH)
        while True:
            self._drain()
            if self._state.status in FINAL_STATUSES:
                break
            wants_new_run = self._state.round != start_round or self._history_is_long()
            if wants_new_run and not self._notifications_pending():
                # Only between webhooks: an attempt in flight must not outlive its run.
                # Until then the loop goes on in this run, so a department whose
                # endpoint is down delays the new run, never a deadline step.
                workflow.continue_as_new(
                    GrievanceWorkflowInput(
                        self._grievance_id, replace(self._state, runs=self._state.runs + 1)
                    )
                )
            step = self._next_step()
            now = workflow.now()
            if step is not None and step.at <= now:
                await self._perform(step)
                continue
            next_at = None if step is None else step.at
            del step  # a waiting run holds no Step (it may wait for days, cached)
            if steady_timer:
                self._arm(next_at, now)
                await workflow.wait_condition(functools.partial(self._should_wake, wants_new_run))
                continue
            timeout = None if next_at is None else next_at - now
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    functools.partial(self._should_wake, wants_new_run), timeout=timeout
                )
        await self._flush_notifications()
        return GrievanceOutcome(
            grievance_id=self._grievance_id,
            status=self._state.status,
            version=self._state.version,
            runs=self._state.runs,
        )

    # -------------------------------------------------------------- updates

    def _drain(self) -> None:
        inbox, self._inbox = self._inbox, []
        for update in sorted(inbox, key=lambda u: u.version):
            self._apply(update)

    def _apply(self, update: GrievanceUpdate) -> None:
        state = self._state
        if update.version <= state.version:
            state.duplicates_ignored += 1
            return
        known = {a.assignment_id for a in state.assignments}
        state.version = update.version
        state.status = update.status
        state.number = update.number or state.number
        state.round = update.round
        state.reopen_count = update.reopen_count
        state.deadlines = list(update.deadlines)
        state.assignments = list(update.assignments)
        state.updates_applied += 1
        state.applied_versions = [*state.applied_versions, update.version][-RECENT_VERSIONS:]
        live = {s.key for d in state.deadlines for s in ladder(self._grievance_id, d)}
        state.done = [key for key in state.done if key in live]
        if state.status not in FINAL_STATUSES:
            for assignment in update.assignments:
                if (
                    assignment.notify
                    and assignment.assignment_id not in known
                    and assignment.state == "dispatched"
                ):
                    self._announce(assignment)

    def _unfinished_steps(self) -> Iterator[Step]:
        """The ladder steps of the open deadlines not yet acted on, in no order."""
        done = set(self._state.done)
        for deadline in self._state.deadlines:
            for step in ladder(self._grievance_id, deadline):
                if step.key not in done:
                    yield step

    def _next_step(self) -> Step | None:
        """``_open_steps()[0]``, without building and sorting the list."""
        return min(self._unfinished_steps(), key=lambda s: s.sort_key, default=None)

    def _open_steps(self) -> list[Step]:
        return sorted(self._unfinished_steps(), key=lambda s: s.sort_key)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > HISTORY_LIMIT
        )

    # ---------------------------------------------------------------- steps

    def _activity_for(self, step: Step) -> tuple[Any, Any]:
        """The activity that takes a ladder step, and its one input."""
        deadline = step.deadline
        if step.name == "close":
            closing = CloseInput(
                grievance_id=self._grievance_id, due=deadline.due, command_id=step.key
            )
            return GrievanceActivities.close_no_response, closing
        on_deadline: dict[str, Any] = {
            "grievance_id": self._grievance_id,
            "kind": deadline.kind,
            "due": deadline.due,
            "command_id": step.key,
            "assignment_id": deadline.assignment_id,
            "department": deadline.department,
        }
        if step.name == "urge":
            return GrievanceActivities.urge, UrgeInput(**on_deadline)
        level = 1 if step.name == "escalate-1" else 2
        return GrievanceActivities.escalate, EscalateInput(**on_deadline, level=level)

    async def _perform(self, step: Step) -> None:
        deadline = step.deadline
        result: StepResult | None = None
        activity, arg = self._activity_for(step)
        try:
            result = await workflow.execute_activity_method(
                activity, arg, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
            )
        except ActivityError as err:
            workflow.logger.warning("deadline step %s refused: %s", step.key, err.cause or err)
        self._state.done.append(step.key)
        if result is None or not result.recorded:
            return
        self._state.steps_recorded += 1
        if result.status in FINAL_STATUSES:
            self._state.status = result.status
        if result.notify and result.department and step.name != "close":
            self._start_notification(
                NotifyInput(
                    grievance_id=self._grievance_id,
                    department=result.department,
                    event="urged" if step.name == "urge" else "escalated",
                    idempotency_key=step.key,
                    number=self._state.number,
                    assignment_id=deadline.assignment_id,
                    kind=deadline.kind,
                    deadline=deadline.due,
                    level=None if step.name == "urge" else int(step.name[-1]),
                )
            )

    # -------------------------------------------------------- notifications

    def _announce(self, assignment: AssignmentInfo) -> None:
        due = next(
            (d.due for d in self._state.deadlines if d.assignment_id == assignment.assignment_id),
            None,
        )
        event = "summoned" if assignment.role == "summoned" else "assigned"
        self._start_notification(
            NotifyInput(
                grievance_id=self._grievance_id,
                department=assignment.department,
                event=event,
                idempotency_key=(
                    f"{workflow_id_for(self._grievance_id)}/{event}/{assignment.assignment_id}"
                ),
                number=self._state.number,
                assignment_id=assignment.assignment_id,
                deadline=due,
            )
        )

    def _start_notification(self, notification: NotifyInput) -> None:
        self._notifications = [t for t in self._notifications if not t.done()]
        self._notifications.append(asyncio.create_task(self._deliver(notification)))

    async def _deliver(self, notification: NotifyInput) -> None:
        try:
            await workflow.execute_activity_method(
                GrievanceActivities.notify,
                notification,
                start_to_close_timeout=NOTIFY_START_TO_CLOSE,
                schedule_to_close_timeout=NOTIFY_SCHEDULE_TO_CLOSE,
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning(
                "notification %s to %s given up: %s",
                notification.idempotency_key,
                notification.department,
                err.cause or err,
            )

    # ---------------------------------------------------------------- timer

    def _arm(self, at: datetime | None, now: datetime) -> None:
        """One durable timer for the next step's instant: a signal that leaves that instant
        as it was starts and cancels nothing."""
        if at == self._timer_at and self._timer is not None and not self._timer.done():
            return
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer, self._timer_at = None, at
        if at is not None:
            self._timer = asyncio.create_task(workflow.sleep(at - now))

    def _should_wake(self, wants_new_run: bool) -> bool:
        return (
            bool(self._inbox)
            or (self._timer is not None and self._timer.done())
            or (wants_new_run and not self._notifications_pending())
        )

    def _notifications_pending(self) -> bool:
        return any(not task.done() for task in self._notifications)

    async def _flush_notifications(self) -> None:
        pending, self._notifications = self._notifications, []
        if pending:
            await asyncio.gather(*pending)
