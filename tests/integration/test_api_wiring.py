"""``build_api_services`` from settings, as ``closeloop api`` runs it: SQLite, PostgreSQL, and
readiness against a real Temporal dev server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from closeloop.api_wiring import build_api_services, build_token_store, temporal_probe
from closeloop.settings import Settings
from closeloop.temporal import LazyClient
from tests.conftest import pg_url
from tests.support.api import grievance_body


async def exercise(settings: Settings) -> None:
    store = build_token_store(settings)
    _, token = store.create("operator", name="op-wiring")
    store.db.close()
    app = create_app(
        lambda: build_api_services(settings, with_temporal=False),
        max_body_bytes=settings.max_body_bytes,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "w-1"}
            r = await client.post("/v1/grievances", json=grievance_body(), headers=headers)
            assert r.status_code == 201, r.text
            again = await client.post("/v1/grievances", json=grievance_body(), headers=headers)
            assert again.headers.get("idempotent-replayed") == "true"
            big = {**grievance_body(), "text": "很" * 400}
            r = await client.post(
                "/v1/grievances", json=big, headers={"Authorization": headers["Authorization"]}
            )
            assert r.status_code == 413


async def test_wiring_on_sqlite(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", database_url=None, max_body_bytes=1024)
    await exercise(settings)
    assert (tmp_path / "var" / "api.sqlite").exists()
    assert (tmp_path / "var" / "events.sqlite").exists()


@pytest.mark.postgres
async def test_wiring_on_postgres(tmp_path: Path, pg_schema: str) -> None:
    settings = Settings(
        var_dir=tmp_path / "var", database_url=pg_url(pg_schema), max_body_bytes=1024
    )
    await exercise(settings)
    store = build_token_store(settings)
    try:
        names = [r.name for r in store.list()]
        tables = {
            row[0]
            for row in store.db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                (pg_schema,),
            )
        }
    finally:
        store.db.close()
    assert names == ["op-wiring"]
    assert {"api_tokens", "api_idempotency"} <= tables
    assert not (tmp_path / "var" / "api.sqlite").exists()


@pytest.mark.temporal
async def test_temporal_probe_against_the_dev_server(tmp_path: Path) -> None:
    from temporalio.testing import WorkflowEnvironment

    from tests.support.workflows import free_port, temporal_binary

    port = free_port()
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary("temporal"), port=port, ui=False
    ):
        settings = Settings(var_dir=tmp_path, temporal_address=f"127.0.0.1:{port}")
        probe = temporal_probe(LazyClient(settings))
        assert await probe() is True
    down = temporal_probe(
        LazyClient(Settings(var_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}"))
    )
    with pytest.raises(Exception):  # noqa: B017 - any connection error means "not reachable"
        await down()
