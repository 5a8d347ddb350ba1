"""Structured intake data on ``Received`` (class_version 2), the one upcaster that reads old
``【Open311】`` blocks, and filing as one atomic command."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from domain.application import GrievanceApp
from domain.errors import PermissionDeniedError, ValidationError
from domain.grievance import Grievance
from domain.intake import Intake
from domain.integrity import verify_chain
from domain.model import Actor, Location, Role, Status
from tests.conftest import OPERATOR
from tests.support.domain import load_stored_events

CLIENT = Actor("fixmystreet", Role.OPEN311)
PLACE = Location("haidian", "xueyuanlu", "xyl-01", None, "学院路石油大院社区 3号楼")
DATA = Path(__file__).parent / "data" / "stored_open311_v1.json"


def _app() -> GrievanceApp:
    return GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"})


def _file(app: GrievanceApp, actor: Actor = CLIENT, **kw: Any) -> Any:
    data: dict[str, Any] = {
        "channel": "open311",
        "citizen_name": "张秀英",
        "citizen_phone": "13812345678",
        "text": "整栋楼停电了",
        "location": PLACE,
        "intake": Intake(
            service_code="PU02",
            attributes={"households": 120.0, "since": "2026-11-23T07:00:00+00:00"},
            lat=39.9931,
            long=116.3489,
            media=("https://img.example.cn/a.jpg",),
            address_id="xyl-01",
            client_id="c-1",
        ),
    }
    data.update(kw)
    return app.receive_grievance(actor, **data)


def test_intake_is_stored_as_data_next_to_the_text_as_given() -> None:
    app = _app()
    result = _file(app, text="  整栋楼停电了\n【Open311】\nlat: 1  ")
    g = app.get_grievance(result.grievance_id)
    assert g.text == "整栋楼停电了\n【Open311】\nlat: 1"  # trimmed only, no block added
    assert g.intake == {
        "service_code": "PU02",
        "attributes": {"households": 120.0, "since": "2026-11-23T07:00:00+00:00"},
        "point": {"lat": 39.9931, "long": 116.3489},
        "media": ["https://img.example.cn/a.jpg"],
        "address_id": "xyl-01",
        "client_id": "c-1",
        "placed_by": None,
    }
    events = app.history(g.id)
    assert verify_chain(g.id, events) is None
    assert events[0].intake == g.intake  # type: ignore[attr-defined]


def test_no_description_is_allowed_only_with_intake_data() -> None:
    app = _app()
    assert app.get_grievance(_file(app, text="").grievance_id).text == ""
    with pytest.raises(ValidationError) as refused:
        _file(app, text="", intake=None)
    assert refused.value.code == "required"


@pytest.mark.parametrize(
    "intake",
    [
        Intake(service_code="PU02", lat=91.5, long=116.0),
        Intake(service_code="PU02", lat=math.nan, long=116.0),
        Intake(service_code="PU02", lat=39.9),
        Intake(service_code="PU02", media=("javascript:alert(1)",)),
        Intake(service_code="PU02", media=("https://a.example/x\u2028media_url: x",)),
        Intake(service_code="PU\u20282"),
        Intake(service_code="PU02", attributes={"n": math.inf}),
        Intake(service_code="PU02", attributes={"s": "x" * 1001}),
        Intake(service_code="PU02", address_id="a b"),
        Intake(service_code="PU02", placed_by="guessed"),
    ],
)
def test_bad_intake_data_is_refused_and_nothing_is_recorded(intake: Intake) -> None:
    app = _app()
    with pytest.raises(ValidationError):
        _file(app, intake=intake)
    assert list(app.iter_events()) == []


def test_filing_with_a_category_classifies_in_the_same_save() -> None:
    app = _app()
    result = _file(app, OPERATOR, category="PU02", command_id="file-1")
    assert result.status == Status.CLASSIFIED.value
    events = app.history(result.grievance_id)
    assert [type(e).__name__ for e in events] == ["Received", "Classified"]
    assert verify_chain(result.grievance_id, events) is None
    again = _file(app, OPERATOR, category="PU02", command_id="file-1")
    assert again.replayed and again.number == result.number
    # A client that may not classify, or an unknown category: nothing is recorded.
    before = len(list(app.iter_events()))
    with pytest.raises(PermissionDeniedError):
        _file(app, category="PU02")
    with pytest.raises(ValidationError):
        _file(app, OPERATOR, category="XX99")
    assert len(list(app.iter_events())) == before


def _stored_app() -> tuple[GrievanceApp, dict[str, Any]]:
    app = _app()
    return app, load_stored_events(app, DATA)


def test_old_open311_blocks_are_parsed_once_by_the_upcaster_and_still_verify() -> None:
    app, data = _stored_app()
    grievances = [
        e for e in app.iter_all_events() if isinstance(e, Grievance.Received)
    ]  # in filing order
    assert len(grievances) == 3
    checked, broken = app.verify_all()
    assert (checked, broken) == (3, [])
    first, second, hotline = (app.get_grievance(e.originator_id) for e in grievances)
    assert first.text == "整栋楼停电两个小时了，电梯也停了"
    assert first.intake == {
        "service_code": "PU02",
        "attributes": {"since": "2026-11-23T15:00:00+08:00", "households": "120"},
        "point": {"lat": 39.9931, "long": 116.3489},
        "media": ["http://img.example.cn/outage/2212426634.jpg"],
        "address_id": "xyl-01",
        "client_id": None,
        "placed_by": None,
    }
    assert first.status is Status.CLASSIFIED
    assert second.text == ""
    assert second.intake is not None
    assert second.intake["attributes"] == {"time_of_day": ["evening", "night"]}
    assert second.intake["service_code"] == "EN02" and second.intake["point"] is None
    # A hotline grievance whose text holds the marker keeps it: it is not Open311 data.
    assert hotline.text == data["texts"][2] and hotline.intake is None
    # A new event on an upcast grievance chains on the stored hash.
    app.classify_grievance(second.id, OPERATOR, category="EN02")
    assert app.verify_grievance(second.id) is None


def test_an_open311_client_attaches_to_what_its_client_filed() -> None:
    app = _app()
    filed = _file(app, Actor("fixmystreet", Role.OPEN311, client="c-1")).grievance_id
    photo = {"sha256": "a" * 64, "media_type": "image/jpeg", "size": 10, "filename": "x.jpg"}
    # Another client's token of the same name may not; a second key of the client may.
    with pytest.raises(PermissionDeniedError):
        app.attach_file(filed, Actor("fixmystreet", Role.OPEN311, client="c-2"), **photo)
    app.attach_file(filed, Actor("fixmystreet-key-2", Role.OPEN311, client="c-1"), **photo)
    assert len(app.get_grievance(filed).attachments) == 1
