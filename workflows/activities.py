"""Activities: every state change a workflow causes goes through the application service.

``GrievanceActivities(app, webhooks)`` is built once per worker. Its methods are
synchronous (eventsourcing is), so the worker runs them in a thread pool. Each takes
one dataclass and uses the command id the workflow derived from its own state, so a
retried activity records nothing twice; ``only_if_open`` with the deadline's instant
makes a step whose deadline was met or moved record nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.application import CommandResult, GrievanceApp
from domain.errors import ConcurrentWriteError, DomainError
from domain.model import SYSTEM
from workflows.messages import (
    CloseInput,
    EscalateInput,
    NotifyInput,
    NotifyResult,
    StepResult,
    UrgeInput,
)
from workflows.webhooks import WebhookDirectory, signed_headers

KIND_LABELS = {
    "sign_for": "签收",
    "resolve": "办结",
    "report_in": "报到",
    "redispatch": "退单重新派单",
    "feedback": "回访",
}
LEVEL_LABELS = {1: "一级督办（街道领导）", 2: "二级督办（区级督查）"}
DISPATCH_CENTRE_NAMES = {"dispatch-centre": "派单中心"}
LOCAL_WRITE_ATTEMPTS = 3  # reload-and-retry on a concurrent write before Temporal retries


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

    def _local(self, moment: datetime) -> str:
        """A deadline as the people reading the reason see it: local time, to the minute."""
        return moment.astimezone(self.app.policies.calendar.tz).strftime("%Y-%m-%d %H:%M")

    def _run(self, command: Callable[[], CommandResult], department: str | None) -> StepResult:
        for attempt in range(LOCAL_WRITE_ATTEMPTS):
            try:
                result = command()
            except ConcurrentWriteError:
                if attempt + 1 == LOCAL_WRITE_ATTEMPTS:
                    raise  # retryable: Temporal tries again with backoff
                continue
            except DomainError as err:
                # The domain refused for a reason a retry cannot change.
                raise ApplicationError(
                    err.message, type=type(err).__name__, non_retryable=True
                ) from err
            return StepResult(
                recorded=result.recorded,
                replayed=result.replayed,
                version=result.version,
                status=result.status,
                department=department,
                notify=result.recorded and department in self.webhooks,
            )
        raise AssertionError("unreachable")

    def _who(self, code: str | None) -> str:
        """The department named for people: ``区住房和城乡建设委员会（hd.housing）``."""
        if not code:
            return ""
        known = self.app.policies.directory.departments.get(code)
        name = known.name if known is not None else DISPATCH_CENTRE_NAMES.get(code, code)
        return f"{name}（{code}）：" if name != code else f"{code}："

    # ----------------------------------------------------------- activities

    @activity.defn
    def urge(self, input: UrgeInput) -> StepResult:
        """催办 whoever owns the deadline, unless it was met or moved."""
        label = KIND_LABELS.get(input.kind, input.kind)
        return self._run(
            lambda: self.app.urge(
                UUID(input.grievance_id),
                SYSTEM,
                kind=input.kind,
                assignment_id=input.assignment_id,
                due=input.due,
                reason=f"{label}时限 {self._local(input.due)} 将至，请尽快处理",
                command_id=input.command_id,
                only_if_open=True,
            ),
            input.department,
        )

    @activity.defn
    def escalate(self, input: EscalateInput) -> StepResult:
        """督办 / 提级 a lapsed deadline, by name of the department that owns it."""
        label = KIND_LABELS.get(input.kind, input.kind)
        who = self._who(input.department)
        return self._run(
            lambda: self.app.escalate(
                UUID(input.grievance_id),
                SYSTEM,
                level=input.level,
                kind=input.kind,
                assignment_id=input.assignment_id,
                due=input.due,
                reason=(
                    f"{who}{label}时限 {self._local(input.due)} 已过，"
                    f"{LEVEL_LABELS.get(input.level, str(input.level))}"
                ),
                command_id=input.command_id,
                only_if_open=True,
            ),
            input.department,
        )

    @activity.defn
    def close_no_response(self, input: CloseInput) -> StepResult:
        """归档 with outcome no_response when the 回访 window lapsed without feedback."""
        return self._run(
            lambda: self.app.close_grievance(
                UUID(input.grievance_id),
                SYSTEM,
                outcome=input.outcome,
                reason=f"回访时限 {self._local(input.due)} 已过，未取得联系",
                command_id=input.command_id,
                only_if_open=True,
            ),
            None,
        )

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
