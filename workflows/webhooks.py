"""Signed outbound webhooks to departments' own systems.

The secrets file (``CLOSELOOP_WEBHOOK_SECRETS_FILE``) is JSON
``{"<department code>": {"url": "https://...", "secret": "..."}}``. Each POST carries

- ``X-Closeloop-Timestamp``: Unix seconds when it was signed;
- ``X-Closeloop-Signature``: ``sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``;
- ``Idempotency-Key``: stable across retries, so a receiver can drop repeats.

A receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes,
compares in constant time and rejects stale timestamps (see ``verify``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

SIGNATURE_HEADER = "X-Closeloop-Signature"
TIMESTAMP_HEADER = "X-Closeloop-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: str


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
            targets[str(code)] = WebhookTarget(str(entry["url"]), str(entry["secret"]))
        return cls(targets)

    def get(self, department: str | None) -> WebhookTarget | None:
        return self._targets.get(department) if department else None

    def __contains__(self, department: object) -> bool:
        return department in self._targets


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiving department does: constant-time compare, bounded clock skew."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(
        sign(secret, timestamp, body), signature
    )


def signed_headers(
    secret: str, body: bytes, idempotency_key: str, now: float | None = None
) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }
