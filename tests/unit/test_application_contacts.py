"""The 回访 queue's contact data comes off each grievance's first event, not a replay."""

from __future__ import annotations

from typing import Any

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
