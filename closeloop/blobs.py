"""Wiring for attachments: the blob store and the upload policy, from settings."""

from __future__ import annotations

from api.blobs import FilesystemBlobStore, S3BlobStore
from api.evidence import UploadPolicy
from closeloop.settings import Settings, get_settings


def build_blob_store(settings: Settings | None = None) -> FilesystemBlobStore | S3BlobStore:
    """Files under the var dir (embedded), or an S3-compatible bucket (production)."""
    settings = settings or get_settings()
    if settings.blob_store == "files":
        return FilesystemBlobStore(settings.blob_path)
    if not settings.s3_bucket:
        raise ValueError("CLOSELOOP_BLOB_STORE=s3 needs CLOSELOOP_S3_BUCKET")
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=Config(
            s3={"addressing_style": settings.s3_addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
    return S3BlobStore(client, settings.s3_bucket, settings.s3_prefix)


def upload_policy(settings: Settings | None = None) -> UploadPolicy:
    settings = settings or get_settings()
    types = tuple(t for t in settings.attachment_types.split(",") if t)
    return UploadPolicy(max_bytes=settings.attachment_max_bytes, types=types)
