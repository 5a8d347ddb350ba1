"""The audit route's event view: its own JSON conversion gives what FastAPI's
``jsonable_encoder`` gives, for every event of a grievance and for odd values."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.encoders import jsonable_encoder

from api.views import _jsonable, audit_event
from domain.application import GrievanceApp
from tests.conftest import FakeClock
from tests.support.audit import walk_story


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
