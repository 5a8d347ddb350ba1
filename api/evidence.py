"""Uploaded evidence, checked before anything is stored: the type by its content (never by
its name), the size, an image that decodes completely; GPS removed from image metadata;
a thumbnail for images. Then the file and its thumbnail go to the blob store, keyed by
SHA-256, and ``attach`` sends the command that records them; if the command is refused,
the objects this upload created are removed again, so a refused upload leaves nothing.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.evidence import BlobStore, sha256_hex

JPEG, PNG, WEBP, PDF = "image/jpeg", "image/png", "image/webp", "application/pdf"
DEFAULT_TYPES: tuple[str, ...] = (JPEG, PNG, WEBP, PDF)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
THUMBNAIL_PX = 320
MAX_PIXELS = 60_000_000  # larger images are refused (decompression bombs)
_GPS_IFD = 0x8825
EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp", PDF: "pdf"}
_PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}


@dataclass(frozen=True)
class UploadPolicy:
    """What an upload may be (settings: ``CLOSELOOP_ATTACHMENT_MAX_BYTES`` / ``_TYPES``)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    types: tuple[str, ...] = DEFAULT_TYPES


class UploadRejectedError(Exception):
    """A file the policy refuses: ``status`` (413, 415 or 422) and a catalogue message."""

    def __init__(self, status: int, message: str, **params: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Evidence:
    """A checked upload, ready to store: its bytes (metadata cleaned) and thumbnail; the
    client's file name is cleaned here (``clean_filename``, with the hash computed once)."""

    data: bytes
    media_type: str
    filename: str
    thumbnail: bytes | None = None
    gps_removed: bool = False
    sha256: str = field(init=False)
    thumbnail_sha256: str | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", sha256_hex(self.data))
        name = clean_filename(self.filename, self.media_type, self.sha256)
        object.__setattr__(self, "filename", name)
        thumb = sha256_hex(self.thumbnail) if self.thumbnail is not None else None
        object.__setattr__(self, "thumbnail_sha256", thumb)


def sniff(data: bytes) -> str | None:
    """The type the bytes themselves declare (magic numbers), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def clean_filename(name: str | None, media_type: str, sha256: str) -> str:
    """The client's file name without directories or control characters (a made-up
    ``<hash prefix>.<ext>`` when none is left)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(
        c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C"
    )
    base = base.strip().strip(".")[:150]
    return base or hash_filename(sha256, media_type)


def hash_filename(sha256: str, media_type: str) -> str:
    """A file name made from the hash: ``<hash prefix>.<ext>`` (ASCII only)."""
    return f"{sha256[:12]}.{EXTENSIONS.get(media_type, 'bin')}"


def check(data: bytes, filename: str | None, policy: UploadPolicy) -> Evidence:
    """Refuse or clean one upload (nothing is stored here)."""
    if len(data) > policy.max_bytes:
        raise UploadRejectedError(413, "attachment-too-large", max_bytes=policy.max_bytes)
    if not data:
        raise UploadRejectedError(422, "attachment-empty")
    media_type = sniff(data)
    if media_type is None or media_type not in policy.types:
        raise UploadRejectedError(
            415, "attachment-type", types=", ".join(policy.types), found=media_type or "?"
        )
    if media_type == PDF:
        if b"%%EOF" not in data[-2048:]:
            raise UploadRejectedError(422, "attachment-truncated")
        return Evidence(data, media_type, filename or "")
    cleaned, thumbnail, gps = _clean_image(data, media_type)
    if len(cleaned) > policy.max_bytes:
        raise UploadRejectedError(413, "attachment-too-large", max_bytes=policy.max_bytes)
    return Evidence(cleaned, media_type, filename or "", thumbnail, gps)


def _clean_image(data: bytes, media_type: str) -> tuple[bytes, bytes, bool]:
    """Decode all of it (a truncated image is refused), re-encode without GPS, XMP or
    comments (other EXIF such as the capture time is kept), and make a JPEG thumbnail."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise UploadRejectedError(422, "attachment-too-many-pixels", max=MAX_PIXELS)
            if image.format != _PIL_FORMATS[media_type]:
                raise UploadRejectedError(422, "attachment-unreadable")
            image.load()
    except UploadRejectedError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning):
        raise UploadRejectedError(422, "attachment-truncated") from None
    exif = image.getexif()
    gps = _GPS_IFD in exif
    if gps:
        del exif[_GPS_IFD]
    options: dict[str, Any] = {"exif": exif.tobytes()} if len(exif) else {}
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]
    out = io.BytesIO()
    if media_type == JPEG:
        image.save(out, "JPEG", quality="keep", subsampling="keep", **options)
    elif media_type == PNG:
        image.save(out, "PNG", save_all=getattr(image, "is_animated", False), **options)
    else:
        lossless = image.info.get("lossless", False)
        image.save(
            out,
            "WEBP",
            quality=90,
            lossless=lossless,
            save_all=getattr(image, "is_animated", False),
            **options,
        )
    thumb = ImageOps.exif_transpose(image.copy()).convert("RGB")
    thumb.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    small = io.BytesIO()
    thumb.save(small, "JPEG", quality=80)
    return out.getvalue(), small.getvalue(), gps


def store_and_attach(store: BlobStore, evidence: Evidence, attach: Callable[[], Any]) -> Any:
    """Store the file (and thumbnail), then ``attach()``; undo the new objects if it fails."""
    created: list[str] = []
    try:
        if store.put(evidence.sha256, evidence.data, evidence.media_type):
            created.append(evidence.sha256)
        thumb, thumb_sha = evidence.thumbnail, evidence.thumbnail_sha256
        if thumb is not None and thumb_sha is not None and store.put(thumb_sha, thumb, JPEG):
            created.append(thumb_sha)
        return attach()
    except BaseException:
        for sha in created:
            store.delete(sha)
        raise


def command_fields(evidence: Evidence, note: str | None) -> dict[str, Any]:
    """The fields of ``AttachFile`` / ``AttachToAssignment`` for this upload."""
    return {
        "sha256": evidence.sha256,
        "media_type": evidence.media_type,
        "size": len(evidence.data),
        "filename": evidence.filename,
        "thumbnail_sha256": evidence.thumbnail_sha256,
        "note": note or None,
    }
