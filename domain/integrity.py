"""Tamper evidence: each grievance event carries a SHA-256 hash chaining it to the
previous event of the same grievance, over its type, version, timestamp and data.

The hash is computed once, when the aggregate triggers the event, so every writer
(API, workflows, CLI) gets it; ``verify_chain`` recomputes it from stored events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

GENESIS = "0" * 64
# Structural attributes hashed separately (version, timestamp) or not at all.
_NOT_DATA = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "chain_hash"}
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return _canonical(value.value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


# An upcaster that rewrites a stored event keeps, under this key, what the event stored
# (``keep_as_stored``): the hash covers the event as it was written.
AS_STORED = "as_stored"


def _as_stored(attributes: Mapping[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in attributes.items() if k != AS_STORED}
    undo = attributes.get(AS_STORED)
    if undo:
        for name in undo["added"]:
            data.pop(name, None)
        data.update(undo["values"])
    return data


def keep_as_stored(before: Mapping[str, Any], state: dict[str, Any]) -> None:
    """After an upcaster turned an event's stored ``before`` into ``state``: remember the
    stored values it changed or removed and the names it added (no entry: nothing changed)."""
    stored = _as_stored(before)
    state.pop(AS_STORED, None)
    missing = object()
    values = {k: v for k, v in stored.items() if state.get(k, missing) != v}
    added = [k for k in state if k not in stored]
    if values or added:
        state[AS_STORED] = {"values": values, "added": added}


def event_data(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an event's attributes that is its data, as it was stored."""
    return {k: v for k, v in _as_stored(attributes).items() if k not in _NOT_DATA}


def chain_digest(
    previous: str, type_name: str, version: int, timestamp: datetime, data: Mapping[str, Any]
) -> str:
    payload = json.dumps(
        [previous, type_name, version, _canonical(timestamp), _canonical(data)],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """The first event whose stored hash does not match its recomputed one."""

    grievance_id: UUID
    version: int
    event_type: str
    expected: str
    found: str
    # a code: missing-event, hash-mismatch or undecodable; the API's catalogue words
    # them (integrity.<code>)
    reason: str


def verify_chain_step(
    grievance_id: UUID, event: Any, previous: str, expected_version: int
) -> BrokenLink | None:
    """Check one event against the hash of the event before it."""
    version = int(event.originator_version)
    type_name = type(event).__name__
    found = str(getattr(event, "chain_hash", "") or "")
    if version != expected_version:
        return BrokenLink(
            grievance_id,
            version,
            type_name,
            expected=f"version {expected_version}",
            found=f"version {version}",
            reason="missing-event",
        )
    expected = chain_digest(previous, type_name, version, event.timestamp, event_data(vars(event)))
    if found != expected:
        return BrokenLink(
            grievance_id,
            version,
            type_name,
            expected=expected,
            found=found,
            reason="hash-mismatch",
        )
    return None


def verify_chain(grievance_id: UUID, events: Iterable[Any]) -> BrokenLink | None:
    """Walk one grievance's stored events in order; None when the chain is intact."""
    previous = GENESIS
    for expected_version, event in enumerate(events, start=1):
        link = verify_chain_step(grievance_id, event, previous, expected_version)
        if link is not None:
            return link
        previous = event.chain_hash
    return None
