"""Shared fixtures: factories, a clock, and the three event-store backends.

PostgreSQL tests use a fresh schema each on the server at 127.0.0.1:5432. When the
server cannot be reached they are skipped on a developer's machine but FAIL in CI
(``CI=true``), so a missing database never passes silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.application import GrievanceApp
from domain.model import Actor, Location, Role

PG_HOST = os.environ.get("CLOSELOOP_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CLOSELOOP_TEST_PG_PORT", "5432"))
PG_DB = os.environ.get("CLOSELOOP_TEST_PG_DB", "test")
PG_USER = os.environ.get("CLOSELOOP_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class FakeClock:
    """A settable clock for deadlines; events still get real recording timestamps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


OPERATOR = Actor("op-li", Role.OPERATOR)
SUPERVISOR = Actor("sup-wang", Role.SUPERVISOR)


def department(code: str) -> Actor:
    return Actor(f"dept-user-{code}", Role.DEPARTMENT, code)


def make_location(**overrides: str | None) -> Location:
    data: dict[str, str | None] = {
        "district": "haidian",
        "street": "xueyuanlu",
        "community": "xyl-01",
        "grid": "xyl-01-g1",
        "address": "石油大院3号楼2单元",
    }
    data.update(overrides)
    return Location(
        district=data["district"] or "",
        street=data["street"],
        community=data["community"],
        grid=data["grid"],
        address=data["address"] or "",
    )


def make_grievance(app: GrievanceApp, **overrides: object) -> uuid.UUID:
    """File a grievance with realistic defaults; returns its id."""
    fields: dict[str, object] = {
        "channel": "hotline",
        "citizen_name": "张秀英",
        "citizen_phone": "13812345678",
        "text": "小区东门电动车在楼道里充电，存在火灾隐患，请尽快处理。",
        "location": make_location(),
    }
    fields.update(overrides)
    return app.receive_grievance(OPERATOR, **fields).grievance_id  # type: ignore[arg-type]


def pg_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=PG_USER, connect_timeout=3
        ):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    ok = pg_reachable()
    if not ok:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT}/{PG_DB} is not reachable (CI=true)")
        pytest.skip("PostgreSQL is not reachable on this machine")
    return ok


@pytest.fixture
def pg_schema(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty schema in the test database, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=PG_USER, autocommit=True
    ) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=PG_USER, autocommit=True
    ) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pg_url(schema: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}?schema={schema}"


def backend_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """eventsourcing persistence env for 'memory', 'sqlite' or 'postgres'."""
    if backend == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if backend == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        }
    schema = request.getfixturevalue("pg_schema")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG_DB,
        "POSTGRES_HOST": PG_HOST,
        "POSTGRES_PORT": str(PG_PORT),
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "4",
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    return backend_env(backend, tmp_path, request)


@pytest.fixture
def app(store_env: dict[str, str], clock: FakeClock) -> Iterator[GrievanceApp]:
    application = GrievanceApp(store_env, clock=clock)
    yield application
    application.close()


@pytest.fixture
def memory_app(clock: FakeClock) -> Iterator[GrievanceApp]:
    application = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    yield application
    application.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._closeloop_exitstatus = int(exitstatus)  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio's core can SIGSEGV at interpreter shutdown after tests passed
    # (STACK-NOTES): once pytest has printed its summary, end the process with
    # pytest's own exit status instead of running interpreter teardown.
    status = getattr(config, "_closeloop_exitstatus", None)
    if status is not None and os.environ.get("CLOSELOOP_TEST_HARD_EXIT", "1") == "1":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
