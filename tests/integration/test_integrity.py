"""Tamper evidence: edit one stored event directly in the database; verification names
exactly that grievance and version, and an untouched store verifies clean."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from domain.application import GrievanceApp
from domain.integrity import GENESIS, chain_digest, event_data
from tests.conftest import SUPERVISOR, FakeClock, backend_env
from tests.support.audit import tamper_postgres, tamper_sqlite
from tests.support.domain import dispatched_case, resolved_case


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_editing_one_stored_event_is_found_precisely(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = backend_env(backend, tmp_path, request)
    app = GrievanceApp(env, clock=FakeClock())
    victim = resolved_case(app, "PM01")
    bystander = resolved_case(app, "SF02")
    dispatched_case(app, "PM02")
    checked, broken = app.verify_all()
    assert (checked, broken) == (3, [])
    assert app.verify_grievance(victim.id) is None

    resolved_version = next(
        e.originator_version for e in app.history(victim.id) if type(e).__name__ == "Resolved"
    )
    if backend == "sqlite":
        tamper_sqlite(env["SQLITE_DBNAME"], victim.id, resolved_version, "已现场处理", "未处理")
    else:
        tamper_postgres(env["POSTGRES_SCHEMA"], victim.id, resolved_version, "已现场处理", "未处理")

    fresh = GrievanceApp(env, clock=FakeClock())
    checked, broken = fresh.verify_all()
    assert checked == 3
    assert [(b.grievance_id, b.version, b.event_type) for b in broken] == [
        (victim.id, resolved_version, "Resolved")
    ]
    link = broken[0]
    assert link.found != link.expected and len(link.expected) == 64
    single = fresh.verify_grievance(victim.id)
    assert single is not None and single.version == resolved_version
    assert fresh.verify_grievance(bystander.id) is None


def test_the_hash_covers_type_version_timestamp_and_data(memory_app: GrievanceApp) -> None:
    case = dispatched_case(memory_app, "PM01")
    first, second = memory_app.history(case.id)[:2]
    assert first.chain_hash == chain_digest(  # type: ignore[attr-defined]
        GENESIS, "Received", 1, first.timestamp, event_data(vars(first))
    )
    assert second.chain_hash == chain_digest(  # type: ignore[attr-defined]
        first.chain_hash,
        "Classified",
        2,
        second.timestamp,
        event_data(vars(second)),  # type: ignore[attr-defined]
    )
    changed = dict(event_data(vars(second)), category="PM02")
    assert second.chain_hash != chain_digest(  # type: ignore[attr-defined]
        first.chain_hash,
        "Classified",
        2,
        second.timestamp,
        changed,  # type: ignore[attr-defined]
    )


def test_a_deleted_event_breaks_the_sequence(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = backend_env("sqlite", tmp_path, request)
    app = GrievanceApp(env, clock=FakeClock())
    case = dispatched_case(app, "PM01")
    app.escalate(case.id, SUPERVISOR, level=1, reason="督办")
    with sqlite3.connect(env["SQLITE_DBNAME"]) as conn:
        conn.execute(
            "DELETE FROM stored_events WHERE originator_id=? AND originator_version=2",
            (case.id.hex,),
        )
    link = GrievanceApp(env).verify_grievance(case.id)
    assert link is not None and link.version == 3 and link.reason == "missing-event"


def test_cli_verify_reports_and_exits_non_zero_on_tampering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from closeloop.cli import main
    from closeloop.settings import get_settings

    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        app = GrievanceApp(get_settings().event_store_env(), clock=FakeClock())
        case = resolved_case(app, "PM01")
        app.close()
        assert main(["audit", "verify"]) == 0
        assert "1" in capsys.readouterr().out
        tamper_sqlite(str(tmp_path / "events.sqlite"), case.id, 2, "PM01", "PM02")
        assert main(["audit", "verify", "--json"]) == 1
        out = capsys.readouterr().out
        assert f'"grievance_id": "{case.id}"' in out and '"version": 2' in out
        assert main(["audit", "verify", "--grievance", str(case.id)]) == 1
    finally:
        get_settings.cache_clear()


def test_an_event_that_no_longer_decodes_is_named_by_version(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = backend_env("sqlite", tmp_path, request)
    app = GrievanceApp(env, clock=FakeClock())
    case = dispatched_case(app, "PM01")
    with sqlite3.connect(env["SQLITE_DBNAME"]) as conn:
        conn.execute(
            "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=2",
            (b"{not json", case.id.hex),
        )
    link = GrievanceApp(env).verify_grievance(case.id)
    assert link is not None
    assert (link.version, link.event_type) == (2, "Classified")
    assert link.reason == "undecodable"
