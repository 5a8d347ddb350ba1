"""Settings map onto eventsourcing's own persistence: SQLite under var/ or PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from closeloop.bootstrap import build_app
from closeloop.settings import Settings
from tests.conftest import make_grievance, pg_url


def test_default_is_an_sqlite_file_under_the_var_dir(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    env = settings.event_store_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(tmp_path / "var" / "events.sqlite")
    app = build_app(settings)
    gid = make_grievance(app)
    app.close()
    again = build_app(settings)
    assert again.get_grievance(gid).citizen_phone == "13812345678"
    assert (tmp_path / "var" / "events.sqlite").exists()


def test_postgres_url_is_mapped_onto_eventsourcing_settings(pg_schema: str) -> None:
    settings = Settings(database_url=pg_url(pg_schema), db_pool_size=2, db_max_waiting=3)
    env = settings.event_store_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_SCHEMA"] == pg_schema
    assert env["POSTGRES_POOL_SIZE"] == "2" and env["POSTGRES_MAX_WAITING"] == "3"
    first = build_app(settings)
    gid = make_grievance(first)
    second = build_app(settings)
    assert second.get_grievance(gid).number == first.get_grievance(gid).number


def test_environment_variables_are_read_with_the_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOSELOOP_SLA_PROFILE", "drill")
    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path))
    settings = Settings()
    assert settings.sla_profile == "drill" and settings.var_dir == tmp_path
    assert build_app(settings).policies.sla.profile.name == "drill"


def test_a_non_postgres_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="postgresql"):
        Settings(database_url="mysql://root@localhost/db")
