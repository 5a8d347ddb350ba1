"""Activities: every state change a workflow causes goes through the application service.

``GrievanceActivities(app, webhooks)`` is built once per worker. Its methods are
synchronous (eventsourcing is), so the worker runs them in a thread pool. Each takes
one dataclass and uses the command id the workflow derived from its own state, so a
retried activity records nothing twice; ``only_if_open`` with the deadline's instant
makes a step whose deadline was met or moved record nothing at all. Every step sends
a domain command through ``GrievanceApp.handle``; the reason it records is a code
(``domain.model.ReasonCode``) with parameters, which the API's catalogue words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from domain.application import CommandResult, GrievanceApp
from domain.commands import CloseGrievance, Command, Escalate, Urge
from domain.errors import ConcurrentWriteError, DomainError
from domain.model import SYSTEM, Action, ReasonCode
from domain.ratings import RoundStep
from workflows.messages import (
    CloseInput,
    EscalateInput,
    NotifyInput,
    NotifyResult,
    RoundStepInput,
    RoundStepResult,
    StepResult,
    UrgeInput,
    round_workflow_id,
)
from workflows.webhooks import WebhookDirectory, signed_headers

LOCAL_WRITE_ATTEMPTS = 3  # reload-and-retry on a concurrent write before Temporal retries


def _deadline_params(kind: str, due: datetime, department: str | None) -> dict[str, Any]:
    """What a deadline step's reason code is about; the catalogue words it."""
    return {"kind": kind, "due": due.isoformat(), "department": department}


def _system_step(grievance_id: str, command_id: str) -> dict[str, Any]:
    """What every workflow step's command shares: the system acts, with the command id
    the workflow derived, and records nothing once the deadline was met or moved."""
    return {
        "grievance_id": UUID(grievance_id),
        "actor": SYSTEM,
        "command_id": command_id,
        "only_if_open": True,
    }


class GrievanceActivities:
    """The activities of GrievanceWorkflow, bound to one application instance."""

    def __init__(
        self,
        app: GrievanceApp,
        webhooks: WebhookDirectory | None = None,
        *,
        http_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app = app
        self.webhooks = webhooks or WebhookDirectory()
        self._http_timeout = http_timeout
        self._transport = transport

    # ------------------------------------------------------------- plumbing

    @retry(
        retry=retry_if_exception_type(ConcurrentWriteError),
        stop=stop_after_attempt(LOCAL_WRITE_ATTEMPTS),
        reraise=True,  # still a concurrent write: retryable, Temporal tries again with backoff
    )
    def _handle(self, command: Command) -> CommandResult:
        return self.app.handle(command)

    def _run(self, command: Command, department: str | None) -> StepResult:
        try:
            result = self._handle(command)
        except ConcurrentWriteError:
            raise
        except DomainError as err:
            # The domain refused for a reason a retry cannot change.
            raise ApplicationError(
                str(err),
                {"code": err.code, "params": err.params},
                type=type(err).__name__,
                non_retryable=True,
            ) from err
        return StepResult(
            recorded=result.recorded,
            replayed=result.replayed,
            version=result.version,
            status=result.status,
            department=department,
            notify=result.recorded and department in self.webhooks,
        )

    def _deadline_step(
        self,
        command_type: type[Urge] | type[Escalate],
        input: UrgeInput | EscalateInput,
        reason_code: ReasonCode,
        **extra: Any,
    ) -> StepResult:
        """A step on a lapsing deadline, recorded only while the deadline is still open."""
        command = command_type(
            **_system_step(input.grievance_id, input.command_id),
            kind=input.kind,
            assignment_id=input.assignment_id,
            due=input.due,
            reason_code=reason_code,
            reason_params={**_deadline_params(input.kind, input.due, input.department), **extra},
            **extra,
        )
        return self._run(command, input.department)

    # ----------------------------------------------------------- activities

    @activity.defn
    def urge(self, input: UrgeInput) -> StepResult:
        """催办 whoever owns the deadline, unless it was met or moved."""
        return self._deadline_step(Urge, input, ReasonCode.DEADLINE_APPROACHING)

    @activity.defn
    def escalate(self, input: EscalateInput) -> StepResult:
        """督办 / 提级 a lapsed deadline of the department that owns it."""
        return self._deadline_step(Escalate, input, ReasonCode.DEADLINE_LAPSED, level=input.level)

    @activity.defn
    def close_no_response(self, input: CloseInput) -> StepResult:
        """归档 with outcome no_response when the 回访 window lapsed without feedback."""
        command = CloseGrievance(
            **_system_step(input.grievance_id, input.command_id),
            outcome=input.outcome,
            reason_code=ReasonCode.FEEDBACK_WINDOW_LAPSED,
            reason_params={"due": input.due.isoformat()},
        )
        return self._run(command, None)

    @activity.defn
    def notify(self, input: NotifyInput) -> NotifyResult:
        """POST a signed JSON notification to the department's callback URL.

        A non-2xx answer or a network error raises, so Temporal retries with backoff;
        a department without a configured URL is skipped.
        """
        target = self.webhooks.get(input.department)
        if target is None:
            return NotifyResult(delivered=False, skipped_reason="no webhook configured")
        body = json.dumps(
            {
                "event": input.event,
                "grievance_id": input.grievance_id,
                "number": input.number,
                "department": input.department,
                "assignment_id": input.assignment_id,
                "kind": input.kind,
                "deadline": input.deadline.isoformat() if input.deadline else None,
                "level": input.level,
                "idempotency_key": input.idempotency_key,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = signed_headers(target.secret, body, input.idempotency_key)
        with httpx.Client(timeout=self._http_timeout, transport=self._transport) as client:
            response = client.post(target.url, content=body, headers=headers)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ApplicationError(
                f"{input.department} answered {response.status_code}", type="WebhookUnavailable"
            )
        if response.status_code >= 400:
            raise ApplicationError(
                f"{input.department} refused the notification ({response.status_code})",
                type="WebhookRefused",
                non_retryable=True,
            )
        return NotifyResult(delivered=True, status_code=response.status_code)

    def all(self) -> list[Callable[..., object]]:
        """Every activity, for ``Worker(activities=...)``."""
        return [self.urge, self.escalate, self.close_no_response, self.notify]


class RoundActivities:
    """The rating round workflow's steps (``workflows.rounds``), bound to one application
    instance."""

    def __init__(self, app: GrievanceApp) -> None:
        self.app = app

    @activity.defn(name="rating_round_step")
    def step(self, data: RoundStepInput) -> RoundStepResult:
        result = self.app.handle_round(
            RoundStep(
                actor=SYSTEM,
                round_id=UUID(data.round_id),
                action=Action(data.action),
                command_id=f"{round_workflow_id(data.round_id)}/{data.action}",
            )
        )
        return RoundStepResult(result.status, result.recorded and not result.replayed)
