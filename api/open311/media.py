"""Open311 ``media``: a photo uploaded with the request (multipart/form-data), beside the
spec's ``media_url``. The file is checked like every attachment (``api.evidence``: type by
content, size, GPS removed, thumbnail) before the request is filed, and attached to the new
grievance by the filing client itself. Open311 reads never list attachments; the client
reads its own through ``/v1/grievances/{id}/attachments`` with the same key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from api import evidence
from api.catalogue import t
from api.deps import Services
from api.i18n import Lang
from api.open311.render import error
from domain.model import Actor

Media = tuple[bytes, str | None]  # the bytes (at most one over the limit) and the file name


async def read_multipart(
    request: Request, policy: evidence.UploadPolicy
) -> tuple[bytes, Media | None]:
    """The text fields as an urlencoded body (what ``parse_form`` reads) and the ``media`` file."""
    form = await request.form()
    fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    upload: Any = form.get("media")
    media: Media | None = None
    if upload is not None and not isinstance(upload, str):
        media = (await upload.read(policy.max_bytes + 1), upload.filename)
    await form.close()
    return urlencode(fields).encode(), media


def check_media(services: Services, media: Media | None, lang: Lang) -> evidence.Evidence | None:
    """The checked upload, or an Open311 error (413, 415 or 400) before anything is filed."""
    if media is None:
        return None
    if services.blobs is None:
        raise error(503, t("error.no-blob-store", lang))
    try:
        return evidence.check(media[0], media[1], services.uploads)
    except evidence.UploadRejectedError as rejected:
        status = rejected.status if rejected.status in (413, 415) else 400
        raise error(status, t(f"error.{rejected.message}", lang, **rejected.params)) from None


def attach_media(
    services: Services,
    checked: evidence.Evidence,
    grievance_id: Any,
    actor: Actor,
    command_id: str | None,
) -> None:
    """Store the checked file and attach it to the grievance the client just filed."""
    assert services.blobs is not None
    evidence.store_and_attach(
        services.blobs,
        checked,
        lambda: services.app.attach_file(
            grievance_id,
            actor,
            command_id=f"{command_id}/media" if command_id else None,
            **evidence.command_fields(checked, None),
        ),
    )
