"""Signed outbound webhooks against a tiny local HTTP server that checks the signature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.application import GrievanceApp
from tests.support.workflows import Receiver, webhook_receiver
from workflows.activities import GrievanceActivities
from workflows.messages import NotifyInput
from workflows.webhooks import (
    WebhookDirectory,
    WebhookTarget,
    sign,
    verify,
)

SECRET = "s3cret-street"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver(SECRET) as running:
        yield running


def notification() -> NotifyInput:
    return NotifyInput(
        grievance_id="7d0f8f7e-0000-0000-0000-000000000001",
        department="st.xueyuanlu",
        event="escalated",
        idempotency_key="grievance-x/escalate-1/a.1/sign_for/2026-11-24T02:30:00+00:00",
        number="20261123000001",
        assignment_id="a.1",
        kind="sign_for",
        deadline=datetime(2026, 11, 24, 2, 30, tzinfo=UTC),
        level=1,
    )


def activities_for(
    app: GrievanceApp, receiver: Receiver, secret: str = SECRET
) -> GrievanceActivities:
    directory = WebhookDirectory({"st.xueyuanlu": WebhookTarget(receiver.url, secret)})
    return GrievanceActivities(app, directory, http_timeout=5)


def test_notification_is_signed_and_delivered(memory_app: GrievanceApp, receiver: Receiver) -> None:
    result = ActivityEnvironment().run(activities_for(memory_app, receiver).notify, notification())
    assert (result.delivered, result.status_code) == (True, 200)
    [got] = receiver.received
    assert got["key"] == notification().idempotency_key
    assert got["body"]["event"] == "escalated"
    assert got["body"]["level"] == 1
    assert got["body"]["deadline"] == "2026-11-24T02:30:00+00:00"


def test_a_wrong_secret_is_refused_and_not_retried(
    memory_app: GrievanceApp, receiver: Receiver
) -> None:
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(
            activities_for(memory_app, receiver, secret="wrong").notify, notification()
        )
    assert caught.value.non_retryable and caught.value.type == "WebhookRefused"
    assert receiver.rejected == 1 and not receiver.received


def test_a_department_that_is_down_is_retried(memory_app: GrievanceApp, receiver: Receiver) -> None:
    receiver.status = 503
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(activities_for(memory_app, receiver).notify, notification())
    assert not caught.value.non_retryable and caught.value.type == "WebhookUnavailable"


def test_an_unreachable_department_raises_a_retryable_error(memory_app: GrievanceApp) -> None:
    directory = WebhookDirectory({"st.xueyuanlu": WebhookTarget("http://127.0.0.1:9/x", SECRET)})
    activities = GrievanceActivities(memory_app, directory, http_timeout=2)
    with pytest.raises(Exception) as caught:
        ActivityEnvironment().run(activities.notify, notification())
    assert not isinstance(caught.value, ApplicationError) or not caught.value.non_retryable


def test_signature_rejects_a_tampered_body_and_a_stale_timestamp() -> None:
    body = b'{"event":"urged"}'
    signature = sign(SECRET, "1700000000", body)
    assert verify(SECRET, "1700000000", body, signature, now=1700000010)
    assert not verify(SECRET, "1700000000", body + b" ", signature, now=1700000010)
    assert not verify(SECRET, "1700000000", body, signature, now=1700009999)
    assert not verify("other", "1700000000", body, signature, now=1700000010)


def test_directory_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "hooks.json"
    good.write_text(json.dumps({"st.xueyuanlu": {"url": "https://x.invalid/", "secret": "k"}}))
    directory = WebhookDirectory.from_file(good)
    assert "st.xueyuanlu" in directory and "hd.urban" not in directory
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"st.xueyuanlu": {"url": "https://x.invalid/"}}))
    with pytest.raises(ValueError, match="secret"):
        WebhookDirectory.from_file(bad)
