"""Commands are values, and GrievanceApp.handle is the one pipeline that runs them."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import timedelta

import pytest

from domain import commands as c
from domain.application import GrievanceApp
from domain.errors import StaleVersionError
from domain.handlers import HANDLERS
from domain.model import Status
from tests.conftest import OPERATOR, make_location
from tests.support.domain import dispatched_case, new_case

pytestmark = pytest.mark.usefixtures("memory_app")


@pytest.fixture
def app(memory_app: GrievanceApp) -> GrievanceApp:
    return memory_app


def _command_types(base: type[c.Command]) -> set[type[c.Command]]:
    found = set()
    for sub in base.__subclasses__():
        found |= {sub} | _command_types(sub)
    return found


def test_every_command_has_one_decide_function() -> None:
    concrete = {
        t for t in _command_types(c.Command) if t not in (c.GrievanceCommand, c.AssignmentCommand)
    }
    assert concrete - {c.ReceiveGrievance} == set(HANDLERS)


def test_a_command_is_a_frozen_value() -> None:
    command = c.RejectGrievance(grievance_id=new_id(), actor=OPERATOR, reason="x")
    with pytest.raises(FrozenInstanceError):
        command.reason = "y"  # type: ignore[misc]
    assert command == c.RejectGrievance(
        grievance_id=command.grievance_id, actor=OPERATOR, reason="x"
    )


def new_id():  # type: ignore[no-untyped-def]
    import uuid

    return uuid.uuid4()


def test_handle_runs_receive_classify_and_dispatch(app: GrievanceApp) -> None:
    received = app.handle(
        c.ReceiveGrievance(
            actor=OPERATOR,
            command_id="intake-1",
            channel="hotline",
            citizen_name="张三",
            citizen_phone="13812345678",
            text="楼道堆物",
            location=make_location(),
        )
    )
    gid = received.grievance_id
    app.handle(c.ClassifyGrievance(grievance_id=gid, actor=OPERATOR, category="PM01"))
    dispatched = app.handle(c.DispatchGrievance(grievance_id=gid, actor=OPERATOR))
    assert dispatched.status == "dispatched" and len(dispatched.extra["assignments"]) == 1


def test_a_repeated_command_id_answers_the_first_result(app: GrievanceApp) -> None:
    case = new_case(app, "PM01")
    command = c.DispatchGrievance(grievance_id=case.id, actor=OPERATOR, command_id="d-1")
    first = app.handle(command)
    again = app.handle(command)
    assert again.replayed and (again.version, again.extra) == (first.version, first.extra)
    assert case.g.version == first.version


def test_expected_version_is_checked_before_deciding(app: GrievanceApp) -> None:
    case = new_case(app, "PM01")
    stale = c.DispatchGrievance(grievance_id=case.id, actor=OPERATOR, expected_version=1)
    with pytest.raises(StaleVersionError) as info:
        app.handle(stale)
    assert info.value.params == {"number": case.g.number, "version": 2, "expected": 1}
    assert case.g.status is Status.CLASSIFIED


def test_the_command_carries_its_business_instant(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    at = app.now() + timedelta(minutes=5)
    app.handle(c.SignFor(assignment_id=lead, actor=case.dept(lead), at=at))
    assert case.g.assignment(lead).signed_for_at == at


def test_merge_saves_both_sides_in_one_pipeline(app: GrievanceApp) -> None:
    primary, duplicate = dispatched_case(app, "TR01"), new_case(app, "TR01")
    result = app.handle(
        c.MergeGrievance(grievance_id=duplicate.id, actor=OPERATOR, into=primary.id)
    )
    assert result.extra == {"into": str(primary.id), "into_number": primary.g.number}
    assert primary.g.duplicates == [str(duplicate.id)]
