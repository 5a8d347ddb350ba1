"""The 回访 queue's contact data comes off each grievance's first event, not a replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from domain.application import GrievanceApp
from tests.conftest import FakeClock
from tests.support.domain import resolved_case


def test_contacts_read_the_intake_event_without_replaying(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    cases = [resolved_case(writer) for _ in range(3)]
    expected = {case.id: (case.g.citizen_name, case.g.citizen_phone) for case in cases}
    reader = writer  # same store; its warm copies are dropped so it must read
    for case in cases:
        reader.warm.evict(case.id)

    def no_replay(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("contacts() replayed a grievance")

    monkeypatch.setattr(reader.repository, "get", no_replay)
    found = reader.contacts(case.id for case in cases)
    assert found == expected
    assert all(name and phone.isdigit() for name, phone in found.values())
    writer.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_contacts_of_a_page_are_one_read_of_the_event_store(
    backend: str,
    clock: FakeClock,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite and PostgreSQL the intake events of a whole page come in one statement:
    no ``select_events`` per grievance; grievances not in the store are simply absent."""
    from tests.support.projections import postgres_env, sqlite_env

    if backend == "sqlite":
        env = sqlite_env(tmp_path)
    else:
        env = postgres_env(request.getfixturevalue("pg_schema"))
    writer = GrievanceApp(env, clock=clock)
    cases = [resolved_case(writer) for _ in range(4)]
    reader = GrievanceApp(env, clock=clock)  # as another process: nothing warm
    try:
        calls: list[Any] = []
        original = reader.recorder.select_events

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(reader.recorder, "select_events", counted)
        found = reader.contacts([*(case.id for case in cases), uuid4()])
        assert found == {case.id: (case.g.citizen_name, case.g.citizen_phone) for case in cases}
        assert calls == []
    finally:
        reader.close()
        writer.close()
