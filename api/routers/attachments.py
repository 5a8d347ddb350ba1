"""Attachments (附件 / 佐证材料): multipart uploads by operators on a grievance and by
departments on their own assignments; reads with the grievance's authorization.

An upload is checked (``api.evidence``) before anything is stored; the objects go to the
blob store by SHA-256 and the ``Attached`` event records hash, type, size and who. A
refused upload leaves no object behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import anyio.to_thread
import pydantic.dataclasses
from fastapi import APIRouter, Depends, File, Form, Path, Response, UploadFile
from pydantic import BaseModel

from api import evidence
from api.deps import AnyPrincipal, AppDep, Read, ServicesDep, guarded
from api.problems import ProblemError
from api.routers.common import (
    AssignmentIdPath,
    WriterDep,
    check_can_read,
    problems,
)
from api.schemas import CommandAccepted
from api.views import attachment_url
from domain.commands import AttachFile, AttachToAssignment
from domain.evidence import AttachmentRecord, BlobStore, attachments, find_attachment, sha256_hex
from domain.model import Action

router = APIRouter(prefix="/v1", tags=["attachments"])

UPLOAD_PROBLEMS = problems(401, 403, 404, 409, 412, 413, 422) | {
    415: {"description": "Not an accepted file type (judged by its content)"},
    503: {"description": "No blob store configured"},
}


@pydantic.dataclasses.dataclass(frozen=True)
class AttachmentPublic(AttachmentRecord):
    """One attached file: its hash (the link), type, size and who attached it when."""

    url: str
    thumbnail_url: str | None


class AttachmentsPublic(BaseModel):
    items: list[AttachmentPublic]


def attachment_public(grievance_id: UUID, record: AttachmentRecord) -> AttachmentPublic:
    thumb = record.thumbnail_sha256
    return AttachmentPublic(
        **asdict(record),
        url=attachment_url(grievance_id, record.sha256),
        thumbnail_url=attachment_url(grievance_id, thumb) if thumb else None,
    )


def blob_store(services: Any) -> BlobStore:
    if services.blobs is None:
        raise ProblemError("not-ready", message="no-blob-store")
    store: BlobStore = services.blobs
    return store


def rejected(error: evidence.UploadRejectedError) -> ProblemError:
    code = {413: "payload-too-large", 415: "unsupported-media-type"}.get(
        error.status, "invalid-request"
    )
    return ProblemError(code, message=error.message, params=error.params, field="file")


async def _checked(upload: UploadFile, policy: evidence.UploadPolicy) -> evidence.Evidence:
    data = await upload.read(policy.max_bytes + 1)
    try:  # decoding an image is CPU work: off the event loop
        checked: evidence.Evidence = await _in_thread(evidence.check, data, upload.filename, policy)
        return checked
    except evidence.UploadRejectedError as error:
        raise rejected(error) from None


FileField = Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF (by content)")]
NoteField = Annotated[str | None, Form(max_length=500)]


@dataclass(frozen=True)
class Upload:
    """A multipart upload and where it goes: the blob store (checked first: 503 without
    one) and the upload policy it is judged by."""

    file: UploadFile
    note: str | None
    store: BlobStore
    policy: evidence.UploadPolicy

    async def send(self, command: Callable[[dict[str, Any]], CommandAccepted]) -> CommandAccepted:
        """Check the file, store its objects, then send ``command(fields)``; a refused
        command leaves no new object behind."""
        checked = await _checked(self.file, self.policy)
        fields = evidence.command_fields(checked, self.note)
        accepted: CommandAccepted = await _in_thread(
            evidence.store_and_attach, self.store, checked, lambda: command(fields)
        )
        return accepted


def get_upload(file: FileField, services: ServicesDep, note: NoteField = None) -> Upload:
    return Upload(file, note, blob_store(services), services.uploads)


UploadDep = Annotated[Upload, Depends(get_upload)]
UPLOAD_ROUTE: dict[str, Any] = {"response_model": CommandAccepted, "responses": UPLOAD_PROBLEMS}


@router.post("/grievances/{grievance_id}/attachments", **UPLOAD_ROUTE, **guarded(Action.ATTACH))
async def attach_file(grievance_id: UUID, write: WriterDep, upload: UploadDep) -> CommandAccepted:
    """附件: attach a photo or document to the grievance (multipart ``file``)."""
    return await upload.send(
        lambda fields: write.send(AttachFile, grievance_id=grievance_id, **fields)
    )


@router.post(
    "/assignments/{assignment_id}/attachments",
    **UPLOAD_ROUTE,
    **guarded(Action.ATTACH_TO_ASSIGNMENT),
)
async def attach_to_assignment(
    assignment_id: AssignmentIdPath, write: WriterDep, upload: UploadDep
) -> CommandAccepted:
    """佐证材料: a department's photo or document on its own assignment (multipart ``file``)."""
    await _in_thread(write.check_owns, assignment_id)
    return await upload.send(
        lambda fields: write.send(AttachToAssignment, assignment_id=assignment_id, **fields)
    )


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(lambda: fn(*args))


@router.get(
    "/grievances/{grievance_id}/attachments",
    response_model=AttachmentsPublic,
    responses=problems(401, 403, 404),
    **guarded(Read.GRIEVANCE),
)
def list_attachments(grievance_id: UUID, app: AppDep, who: AnyPrincipal) -> AttachmentsPublic:
    """The grievance's attachments, oldest first (who may read the grievance may read them)."""
    grievance = app.get_grievance(grievance_id)
    check_can_read(grievance, who)
    return AttachmentsPublic(
        items=[attachment_public(grievance.id, a) for a in attachments(grievance)]
    )


Sha256Path = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="SHA-256, lowercase hex")]


@router.get(
    "/grievances/{grievance_id}/attachments/{sha256}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"},
        **problems(401, 403, 404),
    },
    **guarded(Read.GRIEVANCE),
)
def get_attachment(
    grievance_id: UUID, sha256: Sha256Path, app: AppDep, who: AnyPrincipal, services: ServicesDep
) -> Response:
    """One attached file or its thumbnail, by hash: never cached, never sniffed."""
    grievance = app.get_grievance(grievance_id)
    check_can_read(grievance, who)
    record = find_attachment(grievance, sha256)
    if record is None:
        raise ProblemError("not-found", message="attachment-not-found")
    data = blob_store(services).get(sha256)
    if data is None or sha256_hex(data) != sha256:
        # The event names it but the store lost or altered it: `closeloop audit verify` says so.
        raise ProblemError("internal-error", message="attachment-object-bad", status=500)
    thumbnail = sha256 == record.thumbnail_sha256 and sha256 != record.sha256
    media_type = evidence.JPEG if thumbnail else record.media_type
    name = f"thumbnail-{record.filename}.jpg" if thumbnail else record.filename
    fallback = evidence.hash_filename(sha256, media_type)
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{fallback}"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
