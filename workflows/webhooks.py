"""Outbound webhooks to departments' own systems, signed per Standard Webhooks.

The secrets file (``CLOSELOOP_WEBHOOK_SECRETS_FILE``) is JSON
``{"<department code>": {"url": "https://...", "secret": "whsec_..."}}``; during a
rotation ``secret`` may be a list (new first): every POST is then signed with each,
so the department can switch at its own pace. A secret is ``whsec_`` followed by the
base64 of 24 to 64 random bytes (``new_secret()``, or
``echo "whsec_$(openssl rand -base64 32)"``).

Each POST carries the three headers of https://www.standardwebhooks.com:

- ``webhook-id``: derived from the notification's idempotency key, so it is the same
  on every retry and a receiver can drop repeats;
- ``webhook-timestamp``: Unix seconds when it was signed;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>``
  (several, space-separated, during a rotation).

A department verifies with any Standard Webhooks library, e.g. in Python
``standardwebhooks.Webhook(secret).verify(raw_body, headers)``, which also rejects
timestamps more than five minutes off.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
# A fixed namespace: the same idempotency key always gives the same webhook-id.
_ID_NAMESPACE = uuid.UUID("6f1c0b9e-3a52-5d1e-9d0e-6c6f73656c6f")


def new_secret(nbytes: int = 32) -> str:
    """A fresh secret in the format Standard Webhooks libraries accept."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def check_secret(secret: str) -> None:
    """Refuse what a Standard Webhooks library could not verify with (or would weaken)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_' (see new_secret())")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as error:
        raise ValueError("a webhook secret is 'whsec_' + base64") from error
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 random bytes")


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: str | tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("a webhook target needs at least one secret")
        for secret in self.secrets:
            check_secret(secret)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret,) if isinstance(self.secret, str) else tuple(self.secret)


class WebhookDirectory:
    """Which departments have a callback URL, and their secrets."""

    def __init__(self, targets: dict[str, WebhookTarget] | None = None) -> None:
        self._targets = dict(targets or {})

    @classmethod
    def from_file(cls, path: Path | None) -> WebhookDirectory:
        if path is None:
            return cls()
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of departments")
        targets: dict[str, WebhookTarget] = {}
        for code, entry in data.items():
            if not isinstance(entry, dict) or not entry.get("url") or not entry.get("secret"):
                raise ValueError(f"{path}: department {code!r} needs 'url' and 'secret'")
            secret = entry["secret"]
            given = tuple(str(s) for s in secret) if isinstance(secret, list) else str(secret)
            try:
                targets[str(code)] = WebhookTarget(str(entry["url"]), given)
            except ValueError as error:
                # The message names the rule, never the secret itself.
                raise ValueError(f"{path}: department {code!r}: {error}") from None
        return cls(targets)

    def get(self, department: str | None) -> WebhookTarget | None:
        return self._targets.get(department) if department else None

    def __contains__(self, department: object) -> bool:
        return department in self._targets


def webhook_id(idempotency_key: str) -> str:
    return "msg_" + uuid.uuid5(_ID_NAMESPACE, idempotency_key).hex


def signed_headers(
    secret: str | Sequence[str], body: bytes, idempotency_key: str, now: float | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers for one POST of ``body`` (the exact bytes sent)."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    msg_id = webhook_id(idempotency_key)
    at = datetime.fromtimestamp(int(now if now is not None else time.time()), tz=UTC)
    text = body.decode()
    return {
        "Content-Type": "application/json",
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(at.timestamp())),
        SIGNATURE_HEADER: " ".join(Webhook(key).sign(msg_id, at, text) for key in keys),
    }
