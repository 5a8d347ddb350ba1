"""Attachments over HTTP with the filesystem blob store: operators and departments upload,
everyone allowed reads, bad files get a clear 4xx and leave nothing behind, and the audit
check names a deleted or corrupted object."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from PIL import Image

from api.blobs import FilesystemBlobStore
from api.evidence import UploadPolicy, check
from domain.evidence import sha256_hex
from tests.conftest import FakeClock
from tests.support.api import ApiHarness, sqlite_api
from tests.support.evidence import GPS_IFD, PDF, jpeg, upload


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (50, 40), (0, 128, 0, 255)).save(out, "PNG")
    return out.getvalue()


def blob_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_gps_is_stripped_other_metadata_kept_and_a_thumbnail_made() -> None:
    checked = check(jpeg((1200, 900)), "IMG_0001.JPG", UploadPolicy())
    assert checked.media_type == "image/jpeg" and checked.gps_removed
    stored = Image.open(io.BytesIO(checked.data))
    assert GPS_IFD not in stored.getexif()
    assert stored.getexif()[0x0132] == "2026:12:01 09:30:00"
    assert checked.thumbnail is not None
    assert max(Image.open(io.BytesIO(checked.thumbnail)).size) == 320
    assert checked.sha256 == sha256_hex(checked.data)


def webp() -> bytes:
    image = Image.new("RGB", (400, 300), "blue")
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (31.0, 14.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "WEBP", exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "media_type", "thumbnail"),
    [
        (webp(), "x.webp", "image/webp", True),
        (png(), "x.png", "image/png", True),
        (PDF, "looks-like.jpg", "application/pdf", False),  # the content decides, not the name
    ],
    ids=["webp", "png", "pdf-named-jpg"],
)
def test_types_by_content(data: bytes, name: str, media_type: str, thumbnail: bool) -> None:
    checked = check(data, name, UploadPolicy())
    assert checked.media_type == media_type
    assert (checked.thumbnail is not None) is thumbnail
    if media_type == "image/webp":
        assert checked.gps_removed
        assert GPS_IFD not in Image.open(io.BytesIO(checked.data)).getexif()


def test_configured_types_and_file_names() -> None:
    with pytest.raises(Exception) as info:
        check(PDF, "a.pdf", UploadPolicy(types=("image/jpeg",)))
    assert getattr(info.value, "status", None) == 415
    assert check(PDF, "../../etc/报告\x01.pdf", UploadPolicy()).filename == "报告.pdf"
    assert check(PDF, "", UploadPolicy()).filename.endswith(".pdf")


async def test_operator_and_department_attach_and_everyone_allowed_reads(
    api: ApiHarness, tmp_path: Path
) -> None:
    dispatched = await api.dispatched()
    gid, lead = dispatched["id"], dispatched["assignments"][0]
    r = await upload(api, f"/v1/grievances/{gid}/attachments", "operator", jpeg())
    assert r.status_code == 200, r.text
    photo = r.json()["sha256"]
    assert r.json()["thumbnail_sha256"]
    owner = api.app.get_grievance(UUID(gid)).assignment(lead).department
    r = await upload(
        api, f"/v1/assignments/{lead}/attachments", "department", PDF, "办结报告.pdf", owner
    )
    assert r.status_code == 200, r.text
    report = r.json()["sha256"]

    listed = await api.get(f"/v1/grievances/{gid}/attachments", "supervisor")
    items = listed.json()["items"]
    assert [i["sha256"] for i in items] == [photo, report]
    assert items[1]["department"] == owner and items[1]["assignment_id"] == lead
    assert items[1]["role"] == "department" and items[1]["media_type"] == "application/pdf"

    got = await api.get(items[0]["url"], "department", owner)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["cache-control"] == "no-store"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert sha256_hex(got.content) == photo
    assert GPS_IFD not in Image.open(io.BytesIO(got.content)).getexif()
    shown = (await api.get(f"/v1/grievances/{gid}", "department", owner)).json()
    assert [a["url"] for a in shown["attachments"]] == [i["url"] for i in items]
    thumb = await api.get(items[0]["thumbnail_url"], "operator")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

    events = (await api.get(f"/v1/audit/grievances/{gid}/events", "supervisor")).json()
    attached = [e for e in events["events"] if e["type"] == "Attached"]
    assert [e["data"]["sha256"] for e in attached] == [photo, report]
    assert attached[0]["principal"] and attached[0]["data"]["size"] > 0

    casefile = await api.get(f"/v1/audit/grievances/{gid}/casefile", "supervisor")
    assert casefile.status_code == 200
    assert "data:image/jpeg;base64," in casefile.text and "办结报告.pdf" in casefile.text


async def test_who_may_not_attach_or_read(api: ApiHarness) -> None:
    dispatched = await api.dispatched()
    gid, lead = dispatched["id"], dispatched["assignments"][0]
    owner = api.app.get_grievance(UUID(gid)).assignment(lead).department
    r = await upload(api, f"/v1/grievances/{gid}/attachments", "department", jpeg(), "a.jpg", owner)
    assert r.status_code == 403
    stranger = "hd.water" if owner != "hd.water" else "hd.urban"
    r = await upload(
        api, f"/v1/assignments/{lead}/attachments", "department", jpeg(), "a.jpg", stranger
    )
    assert r.status_code == 403
    r = await upload(api, f"/v1/grievances/{gid}/attachments", "operator", jpeg())
    sha = r.json()["sha256"]
    assert (await api.get(f"/v1/grievances/{gid}/attachments/{sha}", "open311")).status_code == 403
    assert (
        await api.get(f"/v1/grievances/{gid}/attachments/{sha}", "department", stranger)
    ).status_code == 403
    assert (
        await api.get(f"/v1/grievances/{gid}/attachments/{'0' * 64}", "operator")
    ).status_code == 404


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"GIF89a" + b"\0" * 100, 415, "unsupported-media-type"),
        (b"<html><script>alert(1)</script></html>", 415, "unsupported-media-type"),
        (jpeg()[:2000], 422, "invalid-request"),
        (PDF[:-7], 422, "invalid-request"),
        (b"", 422, "invalid-request"),
    ],
    ids=["gif", "html-named-jpg", "truncated-jpeg", "truncated-pdf", "empty"],
)
async def test_bad_files_are_refused_and_leave_nothing(
    api: ApiHarness, tmp_path: Path, data: bytes, status: int, code: str
) -> None:
    created = await api.new_grievance()
    r = await upload(api, f"/v1/grievances/{created['id']}/attachments", "operator", data)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["field"] == "file"
    assert blob_files(tmp_path / "blobs") == []
    assert len(api.app.history(UUID(created["id"]))) == 1


async def test_too_large_is_413_and_leaves_nothing(api: ApiHarness, tmp_path: Path) -> None:
    created = await api.new_grievance()
    api.services.uploads = UploadPolicy(max_bytes=20_000)
    big = jpeg((1500, 1500), color="white") + b"\0" * 30_000
    r = await upload(api, f"/v1/grievances/{created['id']}/attachments", "operator", big)
    assert r.status_code == 413 and r.json()["code"] == "payload-too-large"
    assert "20000" in r.json()["detail"]
    assert blob_files(tmp_path / "blobs") == []


async def test_a_refused_command_removes_the_objects_it_stored(
    api: ApiHarness, tmp_path: Path
) -> None:
    created = await api.new_grievance()
    gid = created["id"]
    r = await api.post(f"/v1/grievances/{gid}/reject", "operator", {"reason": "不属于受理范围"})
    assert r.status_code == 200
    r = await upload(api, f"/v1/grievances/{gid}/attachments", "operator", png(), "a.png")
    assert r.status_code == 409, r.text
    assert blob_files(tmp_path / "blobs") == []


async def test_the_same_upload_retried_with_its_key_is_recorded_once(api: ApiHarness) -> None:
    created = await api.new_grievance()
    path = f"/v1/grievances/{created['id']}/attachments"
    first = await upload(api, path, "operator", png(), "a.png", **{"Idempotency-Key": "up-1"})
    again = await upload(api, path, "operator", png(), "a.png", **{"Idempotency-Key": "up-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    twice = await upload(api, path, "operator", png(), "a.png")
    assert twice.status_code == 422  # already attached
    assert (
        len([e for e in api.app.history(UUID(created["id"])) if type(e).__name__ == "Attached"])
        == 1
    )


async def test_audit_verify_names_a_deleted_or_corrupted_object(
    api: ApiHarness, tmp_path: Path
) -> None:
    created = await api.new_grievance()
    gid = created["id"]
    path = f"/v1/grievances/{gid}/attachments"
    one = (await upload(api, path, "operator", png(), "a.png")).json()["sha256"]
    two = (await upload(api, path, "operator", PDF, "b.pdf")).json()["sha256"]
    report = (await api.get("/v1/audit/verify", "supervisor")).json()
    assert report["intact"] and report["objects_checked"] == 3  # png, its thumbnail, pdf
    store = FilesystemBlobStore(tmp_path / "blobs")
    store.path(one).unlink()
    store.path(two).write_bytes(PDF + b"tampered")
    report = (await api.get("/v1/audit/verify", "supervisor")).json()
    assert not report["intact"]
    bad = {b["sha256"]: b["reason"] for b in report["bad_objects"]}
    assert bad == {one: "object-missing", two: "object-hash-mismatch"}
    r = await api.get(f"/v1/grievances/{gid}/attachments/{two}", "operator")
    assert r.status_code == 500


async def open311_file(api: ApiHarness, key: str, data: bytes | None) -> Any:
    form = {
        "api_key": key,
        "service_code": "PM03",
        "address_id": "xyl-01",
        "phone": "13812345678",
        "description": "楼道堆放杂物，附现场照片",
    }
    files = {"media": ("IMG_2001.jpg", data, "image/jpeg")} if data is not None else None
    return await api.client.post("/open311/v2/requests.json", data=form, files=files)


async def test_an_open311_client_files_with_media_and_only_it_reads_it(
    api: ApiHarness, tmp_path: Path
) -> None:
    key = api.token("open311")
    r = await open311_file(api, key, jpeg())
    assert r.status_code == 201, r.text
    number = r.json()[0]["service_request_id"]
    g = api.app.get_by_number(number)
    [record] = g.attachments
    assert record.role == "open311" and record.filename == "IMG_2001.jpg"
    own = await api.client.get(
        f"/v1/grievances/{g.id}/attachments", headers={"Authorization": f"Bearer {key}"}
    )
    assert own.status_code == 200 and own.json()["items"][0]["sha256"] == record.sha256
    photo = await api.client.get(
        own.json()["items"][0]["url"], headers={"Authorization": f"Bearer {key}"}
    )
    assert photo.status_code == 200
    assert GPS_IFD not in Image.open(io.BytesIO(photo.content)).getexif()
    other = api.services.tokens.create("open311", name="another-app")[1]
    denied = await api.client.get(
        f"/v1/grievances/{g.id}/attachments/{record.sha256}",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert denied.status_code == 403
    public = await api.client.get(f"/open311/v2/requests/{number}.json?api_key={other}")
    assert record.sha256 not in public.text
    mine = await api.client.get(f"/open311/v2/requests/{number}.json?api_key={key}")
    assert mine.status_code == 200 and record.sha256 not in mine.text


async def test_an_open311_bad_media_files_nothing(api: ApiHarness, tmp_path: Path) -> None:
    key = api.token("open311")
    r = await open311_file(api, key, b"MZ\x90\x00 not a photo")
    assert r.status_code == 415, r.text
    assert r.json()[0]["code"] == 415
    r = await open311_file(api, key, jpeg()[:1000])
    assert r.status_code == 400
    assert blob_files(tmp_path / "blobs") == []
    assert list(api.app.iter_all_events()) == []


def test_cli_verify_names_a_deleted_or_corrupted_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from closeloop.blobs import build_blob_store
    from closeloop.cli import main
    from closeloop.settings import get_settings
    from domain.application import GrievanceApp
    from tests.conftest import OPERATOR, make_grievance

    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        store = build_blob_store()
        assert isinstance(store, FilesystemBlobStore) and store.root == tmp_path / "blobs"
        app = GrievanceApp(get_settings().event_store_env(), clock=FakeClock())
        gid = make_grievance(app)
        checked = check(PDF, "report.pdf", UploadPolicy())
        store.put(checked.sha256, checked.data, checked.media_type)
        app.attach_file(gid, OPERATOR, **_fields(checked))
        app.close()
        assert main(["audit", "verify"]) == 0
        assert "1 个附件文件" in capsys.readouterr().out
        store.path(checked.sha256).write_bytes(b"%PDF-forged %%EOF")
        assert main(["audit", "verify", "--lang", "en"]) == 1
        err = capsys.readouterr().err
        assert checked.sha256 in err and "no longer matches" in err
        store.delete(checked.sha256)
        assert main(["audit", "verify", "--json", "--grievance", str(gid)]) == 1
        assert '"reason": "object-missing"' in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def _fields(checked: Any) -> dict[str, Any]:
    from api.evidence import command_fields

    return command_fields(checked, None)


async def test_an_open311_upload_retried_with_its_key_files_once(api: ApiHarness) -> None:
    key = api.token("open311")
    form = {
        "api_key": key,
        "service_code": "PM03",
        "address_id": "xyl-01",
        "phone": "13812345678",
        "description": "路灯不亮",
    }

    async def send(api_key: str) -> Any:
        return await api.client.post(
            "/open311/v2/requests.json",
            data=form | {"api_key": api_key},
            files={"media": ("a.png", png(), "image/png")},
            headers={"Idempotency-Key": "open311-media-1"},
        )

    first, again = await send(key), await send(key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    other = await send(api.services.tokens.create("open311", name="another-app")[1])
    assert other.status_code == 201 and other.headers.get("idempotent-replayed") is None
    assert other.json()[0]["service_request_id"] != first.json()[0]["service_request_id"]
    filed = [e for e in api.app.iter_all_events() if type(e).__name__ == "Received"]
    assert len(filed) == 2


__all__ = ["sqlite_api"]  # the ``api`` fixture
