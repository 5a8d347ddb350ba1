"""Evidence (附件 / 佐证材料): photos and documents attached to a grievance.

Files are content-addressed blobs (SHA-256, lowercase hex) in a blob store; the
``Attached`` event records the hash, type, size and who attached it, so the hash
chain covers the evidence. ``BlobStore`` is the one small interface the stores
(files under the var dir, an S3-compatible object store) implement outside the
domain; ``verify_objects`` checks that every object an event references still
exists and still has its hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypedDict
from uuid import UUID

from domain.errors import ValidationError
from domain.model import Action, Stamp

if TYPE_CHECKING:  # pragma: no cover
    from domain.application import GrievanceApp
    from domain.grievance import Grievance

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILENAME = 200
MAX_NOTE = 500
MAX_ATTACHMENTS = 100  # per grievance: evidence, not a file share


class FileData(TypedDict):
    """What the ``Attached`` event records about the file itself (see ``attach``)."""

    sha256: str
    media_type: str
    size: int
    filename: str
    thumbnail_sha256: str | None
    note: str | None


class BlobStore(Protocol):
    """Content-addressed objects: the key of an object is the SHA-256 of its bytes."""

    def put(self, sha256: str, data: bytes, media_type: str) -> bool:
        """Store ``data`` under its hash; True when it was not there before."""

    def get(self, sha256: str) -> bytes | None:
        """The object's bytes, None when it does not exist."""

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None:
        """Remove the object (only used to undo an upload that recorded nothing)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(value: str, field: str = "sha256") -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise ValidationError("invalid-digest", field=field, value=str(value)[:80])
    return value


@dataclass(frozen=True)
class AttachmentRecord:
    """One attached file as the grievance knows it (built from its ``Attached`` event)."""

    sha256: str
    media_type: str
    size: int
    filename: str
    thumbnail_sha256: str | None
    assignment_id: str | None
    department: str | None
    note: str | None
    principal: str
    role: str
    at: datetime


def attachments(g: Grievance) -> list[AttachmentRecord]:
    """The grievance's attachments in the order they were attached."""
    found: list[AttachmentRecord] = getattr(g, "attachments", None) or []
    return list(found)


def find_attachment(g: Grievance, sha256: str) -> AttachmentRecord | None:
    """The attachment whose file or thumbnail has this hash."""
    for record in attachments(g):
        if sha256 in (record.sha256, record.thumbnail_sha256):
            return record
    return None


def referenced(event: Any) -> Iterator[str]:
    """The object hashes a stored event references (its file and thumbnail)."""
    for name in ("sha256", "thumbnail_sha256"):
        value = getattr(event, name, None)
        if isinstance(value, str) and value:
            yield value


@dataclass(frozen=True)
class BadObject:
    """An object an event references that is gone or no longer has its hash."""

    grievance_id: UUID
    version: int
    sha256: str
    reason: str  # object-missing | object-hash-mismatch


ATTACHED_TOPIC = ":Grievance.Attached"


def check_object(store: BlobStore, sha256: str) -> str | None:
    """Why the object is bad, or None when it exists with its hash."""
    data = store.get(sha256)
    if data is None:
        return "object-missing"
    if sha256_hex(data) != sha256:
        return "object-hash-mismatch"
    return None


def verify_objects(
    app: GrievanceApp, store: BlobStore, grievance_id: UUID | None = None
) -> tuple[int, list[BadObject]]:
    """Check every object the ``Attached`` events reference: (objects checked, bad ones).

    Reads the stored events themselves; one that no longer decodes is left to the hash
    chain's check, which names it."""
    from domain.audit_reader import grievance_notifications

    stored: Iterable[Any] = (
        app.recorder.select_events(grievance_id)
        if grievance_id is not None
        else grievance_notifications(app, 500)
    )
    checked: dict[str, str | None] = {}
    bad: list[BadObject] = []
    for item in stored:
        if not item.topic.endswith(ATTACHED_TOPIC):
            continue
        try:
            event = app.mapper.to_domain_event(item)
        except Exception:
            continue
        for sha in referenced(event):
            if sha not in checked:
                checked[sha] = check_object(store, sha)
            reason = checked[sha]
            if reason is not None:
                gid = UUID(str(event.originator_id))
                bad.append(BadObject(gid, int(event.originator_version), sha, reason))
    return len(checked), bad


# ------------------------------------------------------------- the command (bound)


def attach(g: Grievance, stamp: Stamp, assignment_id: str | None, file: FileData) -> None:
    """附件: on the grievance (staff, Open311), or on the actor's own assignment (departments).

    ``file``: the ``Attached`` event's data about the file (``sha256``, ``media_type``,
    ``size``, ``filename``, ``thumbnail_sha256``, ``note``), already checked."""
    department = None
    if assignment_id is None:
        g.ensure_allowed(Action.ATTACH, stamp.actor)
    else:
        own = g._own_assignment(Action.ATTACH_TO_ASSIGNMENT, stamp.actor, assignment_id)
        department = own.department
    known = attachments(g)
    if any(a.sha256 == file["sha256"] for a in known):
        raise ValidationError("already-attached", field="file", sha256=file["sha256"])
    if len(known) >= MAX_ATTACHMENTS:
        raise ValidationError("too-many-attachments", field="file", max=MAX_ATTACHMENTS)
    g.trigger_event(
        g.Attached,
        assignment_id=assignment_id,
        department=department,
        **file,
        **g._meta(stamp),
    )
