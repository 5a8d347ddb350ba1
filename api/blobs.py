"""The blob stores behind ``domain.evidence.BlobStore``: files under a directory (embedded)
and any S3-compatible object store (MinIO, Ceph RGW, the S3 modes of cloud object storage).

Objects are keyed by their SHA-256; a store never overwrites an object it already has
(the same key is the same bytes), and writes a file atomically (temporary name, then
rename), so a reader never sees half an object.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from domain.evidence import check_sha256


class FilesystemBlobStore:
    """``<root>/ab/cd/abcd…``: two levels of fan-out keep directories small."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        sha256 = check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes, media_type: str) -> bool:
        target = self.path(sha256)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return True

    def get(self, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def close(self) -> None:
        pass


class S3BlobStore:
    """An S3-compatible bucket, objects under ``<prefix>sha256/<hash>``.

    ``client`` is a boto3 S3 client (the composition root builds it from settings).
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, sha256: str) -> str:
        return f"{self.prefix}sha256/{check_sha256(sha256)}"

    def _missing(self, error: Exception) -> bool:
        response = getattr(error, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def put(self, sha256: str, data: bytes, media_type: str) -> bool:
        if self.exists(sha256):
            return False
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(sha256),
            Body=data,
            ContentType=media_type,
            Metadata={"sha256": sha256},
        )
        return True

    def get(self, sha256: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as error:
            if self._missing(error):
                return None
            raise
        data: bytes = answer["Body"].read()
        return data

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as error:
            if self._missing(error):
                return False
            raise
        return True

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
