"""An API harness for tests: the real app factory, real stores, one token per role.

``api_harness(env, tmp_path, clock)`` builds ``Services`` the way the composition root
does (GrievanceApp + ReadModels on the given event-store env, token and idempotency
tables in SQLite or PostgreSQL), runs the lifespan, and hands out an httpx client on the
ASGI app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.deps import Services
from api.stores import Database, IdempotencyStore, PostgresDatabase, SqliteDatabase, TokenStore
from domain.application import GrievanceApp
from tests.conftest import FakeClock

GRIEVANCE_BODY: dict[str, Any] = {
    "channel": "hotline",
    "citizen_name": "张秀英",
    "citizen_phone": "13812345678",
    "text": "小区东门电动车在楼道里充电，存在火灾隐患，请尽快处理。",
    "location": {
        "district": "haidian",
        "street": "xueyuanlu",
        "community": "xyl-01",
        "grid": "xyl-01-g1",
        "address": "石油大院3号楼2单元",
    },
}


def grievance_body(**overrides: Any) -> dict[str, Any]:
    body = {**GRIEVANCE_BODY, "location": dict(GRIEVANCE_BODY["location"])}
    body.update(overrides)
    return body


def api_database(env: Mapping[str, str], tmp_path: Path) -> Database:
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        return PostgresDatabase(
            {
                "dbname": env["POSTGRES_DBNAME"],
                "host": env["POSTGRES_HOST"],
                "port": int(env["POSTGRES_PORT"]),
                "user": env["POSTGRES_USER"],
                "password": env.get("POSTGRES_PASSWORD") or None,
            },
            schema=env.get("POSTGRES_SCHEMA", ""),
            pool_size=2,
        )
    return SqliteDatabase(tmp_path / "api.sqlite")


@dataclass
class ApiHarness:
    client: httpx.AsyncClient
    services: Services
    env: dict[str, str]
    clock: FakeClock
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> GrievanceApp:
        return self.services.app

    def token(self, role: str, department: str | None = None, name: str | None = None) -> str:
        """A token for this role (and department), created on first use."""
        key = f"{role}:{department or ''}:{name or ''}"
        if key not in self.tokens:
            _, token = self.services.tokens.create(role, department=department, name=name)
            self.tokens[key] = token
        return self.tokens[key]

    def auth(self, role: str, department: str | None = None, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, department)}", **headers}

    def catch_up(self) -> int:
        """Bring the read models up to date (what the projector process does)."""
        from projections.runner import catch_up

        return catch_up(self.env)

    async def post(
        self, path: str, role: str, body: Any = None, department: str | None = None, **headers: str
    ) -> httpx.Response:
        return await self.client.post(
            path, json=body, headers=self.auth(role, department, **headers)
        )

    async def get(
        self, path: str, role: str, department: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.client.get(path, headers=self.auth(role, department), **kwargs)

    async def new_grievance(self, **overrides: Any) -> dict[str, Any]:
        response = await self.post("/v1/grievances", "operator", grievance_body(**overrides))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def dispatched(self, category: str = "PM03", **dispatch: Any) -> dict[str, Any]:
        """A grievance classified and dispatched; returns the dispatch response."""
        created = await self.new_grievance()
        gid = created["id"]
        r = await self.post(f"/v1/grievances/{gid}/classify", "operator", {"category": category})
        assert r.status_code == 200, r.text
        r = await self.post(f"/v1/grievances/{gid}/dispatch", "operator", dispatch or None)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


def build_services(
    env: Mapping[str, str],
    tmp_path: Path,
    clock: FakeClock,
    temporal_reachable: Callable[[], Awaitable[bool]] | None = None,
    app_class: type[GrievanceApp] = GrievanceApp,
) -> Services:
    from api.blobs import FilesystemBlobStore
    from projections.queries import ReadModels

    app = app_class(dict(env), clock=clock)
    read_models = ReadModels.from_env(env)
    db = api_database(env, tmp_path)
    return Services(
        app=app,
        read_models=read_models,
        tokens=TokenStore(db),
        idempotency=IdempotencyStore(db),
        temporal_reachable=temporal_reachable,
        blobs=FilesystemBlobStore(tmp_path / "blobs"),
        closers=[app.close, read_models.close, db.close],
    )


@contextlib.asynccontextmanager
async def api_harness(
    env: Mapping[str, str],
    tmp_path: Path,
    clock: FakeClock,
    *,
    max_body_bytes: int = 64 * 1024,
    temporal_reachable: Callable[[], Awaitable[bool]] | None = None,
    app_class: type[GrievanceApp] = GrievanceApp,
) -> AsyncIterator[ApiHarness]:
    fastapi_app = create_app(
        lambda: build_services(env, tmp_path, clock, temporal_reachable, app_class),
        max_body_bytes=max_body_bytes,
    )
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield ApiHarness(client, fastapi_app.state.services, dict(env), clock)


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
    }


@pytest.fixture(name="api")
async def sqlite_api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    """The ``api`` fixture of a test module that imports it: the harness on SQLite."""
    async with api_harness(sqlite_env(tmp_path), tmp_path, clock) as harness:
        yield harness
