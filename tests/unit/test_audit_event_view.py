"""The audit route's event view: its own JSON conversion gives what FastAPI's
``jsonable_encoder`` gives, for every event of a grievance and for odd values."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.encoders import jsonable_encoder

from api.routers.audit import audit_events
from api.schemas import AuditEvents
from api.views import _jsonable, audit_event
from domain.application import GrievanceApp
from tests.conftest import OPERATOR, FakeClock
from tests.support.audit import tamper_sqlite, walk_story
from tests.support.domain import new_case


class Colour(enum.StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": 2.5, "c": None, "d": True, "e": "文本"},
        {"at": datetime(2026, 11, 23, 8, 30, tzinfo=UTC), "id": uuid.uuid4()},
        {"nested": [{"x": (1, 2)}, [datetime(2026, 1, 1, tzinfo=UTC)]], "_sa_hidden": 1},
        {"odd": [Decimal("1.5"), date(2026, 1, 2), Colour.RED, {1, 2}], 3: "int key"},
        [],
        "plain",
    ],
)
def test_jsonable_gives_what_jsonable_encoder_gives(value: object) -> None:
    assert _jsonable(value) == jsonable_encoder(value)


def test_every_event_of_a_grievance_converts_as_jsonable_encoder_does() -> None:
    clock = FakeClock()
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    story = walk_story(app, clock)  # returned, redispatched, urged, escalated, extended …
    for event in app.history(story.id):
        state = {k: v for k, v in vars(event).items() if not k.startswith("_")}
        assert _jsonable(state) == jsonable_encoder(state)
        for unmasked in (True, False):
            assert audit_event(event, unmasked=unmasked).data


def expected_json(app: GrievanceApp, grievance_id: uuid.UUID, *, unmasked: bool) -> str:
    """What the route answered when it built the whole AuditEvents model per request."""
    events = app.history(grievance_id)
    return AuditEvents(
        grievance_id=grievance_id,
        number=events[0].number,  # type: ignore[attr-defined]
        events=[audit_event(e, unmasked=unmasked) for e in events],
    ).model_dump_json()


@pytest.mark.parametrize("unmasked", [True, False])
def test_the_history_route_answers_the_json_of_audit_events_read_again_or_not(
    unmasked: bool,
) -> None:
    clock = FakeClock()
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    who = SimpleNamespace(sees_personal_data=unmasked)
    story = walk_story(app, clock)
    expected = expected_json(app, story.id, unmasked=unmasked)
    first = audit_events(story.id, app, who)  # type: ignore[arg-type]
    again = audit_events(story.id, app, who)  # type: ignore[arg-type]
    assert bytes(first.body).decode() == bytes(again.body).decode() == expected
    # New events: the earlier ones as rendered before, the new ones rendered now.
    case = new_case(app, "PM01", citizen_phone="13912345678", text="电话13912345678")
    before = audit_events(case.id, app, who)  # type: ignore[arg-type]
    assert bytes(before.body).decode() == expected_json(app, case.id, unmasked=unmasked)
    app.dispatch_grievance(case.id, OPERATOR)
    after = audit_events(case.id, app, who)  # type: ignore[arg-type]
    assert bytes(after.body).decode() == expected_json(app, case.id, unmasked=unmasked)
    assert len(json.loads(after.body)["events"]) > len(json.loads(before.body)["events"])


def test_an_event_edited_behind_the_application_is_read_as_now_stored(tmp_path: Path) -> None:
    path = str(tmp_path / "events.sqlite")
    clock = FakeClock()
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    app = GrievanceApp(env, clock=clock)
    try:
        case = new_case(app, "PM01", text="楼道堆物")
        who = SimpleNamespace(sees_personal_data=True)
        before = json.loads(audit_events(case.id, app, who).body)  # type: ignore[arg-type]
        tamper_sqlite(path, case.id, 1, "楼道堆物", "楼道干净")
        after = json.loads(audit_events(case.id, app, who).body)  # type: ignore[arg-type]
    finally:
        app.close()
    assert before["events"][0]["data"]["text"] == "楼道堆物"
    assert after["events"][0]["data"]["text"] == "楼道干净"
