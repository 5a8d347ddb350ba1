"""Outbound webhooks signed per Standard Webhooks, against a tiny local HTTP server that
verifies them with the ``standardwebhooks`` library, as a department would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.application import GrievanceApp
from tests.support.workflows import Receiver, webhook_receiver
from workflows.activities import GrievanceActivities
from workflows.messages import NotifyInput
from workflows.webhooks import (
    WebhookDirectory,
    WebhookTarget,
    new_secret,
    signed_headers,
    webhook_id,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example


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
    assert got["id"] == webhook_id(notification().idempotency_key)
    assert got["id"].startswith("msg_")
    assert got["body"]["event"] == "escalated"
    assert got["body"]["level"] == 1
    assert got["body"]["deadline"] == "2026-11-24T02:30:00+00:00"


def test_a_wrong_secret_is_refused_and_not_retried(
    memory_app: GrievanceApp, receiver: Receiver
) -> None:
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(
            activities_for(memory_app, receiver, secret=new_secret()).notify, notification()
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


def test_a_department_verifies_with_the_standardwebhooks_library() -> None:
    body = b'{"event":"urged","number":"20261123000001"}'
    headers = signed_headers(SECRET, body, "grievance-x/urged/a.1")
    assert Webhook(SECRET).verify(body, headers) == {
        "event": "urged",
        "number": "20261123000001",
    }
    # Retries of one notification carry the same webhook-id (the receiver's dedup key).
    assert (
        signed_headers(SECRET, body, "grievance-x/urged/a.1")["webhook-id"]
        == (headers["webhook-id"])
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    stale = signed_headers(SECRET, body, "grievance-x/urged/a.1", now=time.time() - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(body, stale)


def test_the_signature_matches_the_specification_example() -> None:
    # https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
    body = b'{"test": 2432232314}'
    headers = signed_headers(SECRET, body, "x", now=1614265330)
    expected = Webhook(SECRET).sign(
        headers["webhook-id"], datetime.fromtimestamp(1614265330, tz=UTC), body.decode()
    )
    assert headers["webhook-signature"] == expected
    assert headers["webhook-timestamp"] == "1614265330"


def test_during_a_rotation_both_secrets_verify() -> None:
    new = new_secret()
    body = b'{"event":"assigned"}'
    headers = signed_headers((new, SECRET), body, "k")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, SECRET):
        Webhook(secret).verify(body, headers)


def test_secrets_must_be_standard_webhooks_secrets() -> None:
    assert new_secret().startswith("whsec_")
    WebhookTarget("https://x.invalid/", new_secret())
    for bad in ("s3cret-street", "whsec_not base64!", "whsec_" + "QUJD"):
        with pytest.raises(ValueError, match=r"whsec_|base64|bytes"):
            WebhookTarget("https://x.invalid/", bad)


def test_directory_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "hooks.json"
    good.write_text(
        json.dumps(
            {
                "st.xueyuanlu": {"url": "https://x.invalid/", "secret": SECRET},
                "hd.water": {"url": "https://y.invalid/", "secret": [new_secret(), SECRET]},
            }
        )
    )
    directory = WebhookDirectory.from_file(good)
    assert "st.xueyuanlu" in directory and "hd.urban" not in directory
    water = directory.get("hd.water")
    assert water is not None and len(water.secrets) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"st.xueyuanlu": {"url": "https://x.invalid/"}}))
    with pytest.raises(ValueError, match="secret"):
        WebhookDirectory.from_file(bad)
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps({"st.xueyuanlu": {"url": "https://x.invalid/", "secret": "k"}}))
    with pytest.raises(ValueError, match=r"'st\.xueyuanlu': a webhook secret starts") as caught:
        WebhookDirectory.from_file(weak)
    assert "'k'" not in str(caught.value)
