"""The S3 blob store against a real S3-protocol server over HTTP (moto's standalone server,
from PyPI, started by the test), through the store itself, the API and the audit check;
on SQLite and, when it is reachable, PostgreSQL."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.blobs import S3BlobStore
from closeloop.blobs import build_blob_store
from closeloop.settings import Settings
from domain.evidence import sha256_hex
from tests.conftest import FakeClock, backend_env
from tests.support.api import ApiHarness, api_harness
from tests.support.evidence import PDF, jpeg, upload

BUCKET = "closeloop-evidence"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str, tmp_path: Path) -> Iterator[S3BlobStore]:
    settings = Settings(
        var_dir=tmp_path,
        blob_store="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=BUCKET,
        s3_prefix=f"{tmp_path.name}/",
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    store = build_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    with contextlib.suppress(store.client.exceptions.BucketAlreadyOwnedByYou):
        store.client.create_bucket(Bucket=BUCKET)
    yield store
    store.close()


def test_the_store_keeps_objects_by_hash(s3_store: S3BlobStore) -> None:
    data = b"%PDF-1.4 evidence %%EOF"
    sha = sha256_hex(data)
    assert s3_store.get(sha) is None and not s3_store.exists(sha)
    assert s3_store.put(sha, data, "application/pdf") is True
    assert s3_store.put(sha, data, "application/pdf") is False  # already there
    assert s3_store.get(sha) == data and s3_store.exists(sha)
    head = s3_store.client.head_object(Bucket=BUCKET, Key=s3_store.key(sha))
    assert head["ContentType"] == "application/pdf"
    s3_store.delete(sha)
    assert s3_store.get(sha) is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock, s3_store: S3BlobStore
) -> AsyncIterator[ApiHarness]:
    env = backend_env(request.param, tmp_path, request)
    async with api_harness(env, tmp_path, clock) as harness:
        harness.services.blobs = s3_store
        yield harness


def _objects(store: S3BlobStore) -> list[str]:
    listed: dict[str, Any] = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


async def test_upload_read_and_verify_through_s3(api: ApiHarness, s3_store: S3BlobStore) -> None:
    dispatched = await api.dispatched()
    gid, lead = dispatched["id"], dispatched["assignments"][0]
    r = await upload(api, f"/v1/grievances/{gid}/attachments", "operator", jpeg())
    assert r.status_code == 200, r.text
    photo, thumb = r.json()["sha256"], r.json()["thumbnail_sha256"]
    owner = api.app.get_grievance(UUID(gid)).assignment(lead).department
    r = await upload(api, f"/v1/assignments/{lead}/attachments", "department", PDF, "r.pdf", owner)
    assert r.status_code == 200, r.text
    report = r.json()["sha256"]
    assert sorted(_objects(s3_store)) == sorted(s3_store.key(s) for s in (photo, thumb, report))

    got = await api.get(f"/v1/grievances/{gid}/attachments/{photo}", "department", owner)
    assert got.status_code == 200 and sha256_hex(got.content) == photo

    bad = await upload(api, f"/v1/grievances/{gid}/attachments", "operator", jpeg()[:1500])
    assert bad.status_code == 422
    assert len(_objects(s3_store)) == 3  # the refused file left nothing

    verified = (await api.get(f"/v1/audit/verify?grievance={gid}", "supervisor")).json()
    assert verified["intact"] and verified["objects_checked"] == 3
    s3_store.delete(thumb)
    s3_store.client.put_object(Bucket=BUCKET, Key=s3_store.key(report), Body=b"%PDF-forged")
    verified = (await api.get(f"/v1/audit/verify?grievance={gid}", "supervisor")).json()
    assert not verified["intact"]
    found = {b["sha256"]: b["reason"] for b in verified["bad_objects"]}
    assert found == {thumb: "object-missing", report: "object-hash-mismatch"}
