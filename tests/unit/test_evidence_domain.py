"""The Attached event on every backend: who may attach, what it records, the hash chain
covering it, repeats, and refusals that record nothing."""

from __future__ import annotations

from typing import Any

import pytest

from domain.application import GrievanceApp
from domain.errors import (
    IllegalTransitionError,
    NotAssignedError,
    PermissionDeniedError,
    ValidationError,
)
from domain.evidence import attachments, find_attachment
from domain.model import Actor, AssignmentRole, Role
from tests.conftest import OPERATOR, department, make_location
from tests.support.domain import dispatched_case, new_case

SHA_A, SHA_B, SHA_T = "a" * 64, "b" * 64, "c" * 64


def photo(sha: str = SHA_A, **overrides: Any) -> dict[str, Any]:
    return {
        "sha256": sha,
        "media_type": "image/jpeg",
        "size": 1234,
        "filename": "井盖.jpg",
        "thumbnail_sha256": SHA_T,
        "note": "破损井盖",
    } | overrides


def test_operator_and_department_attach_and_the_chain_covers_it(app: GrievanceApp) -> None:
    case = dispatched_case(app)
    app.attach_file(case.id, OPERATOR, **photo())
    lead = case.aid(AssignmentRole.LEAD)
    result = app.attach_to_assignment(lead, case.dept(lead), **photo(SHA_B, thumbnail_sha256=None))
    assert result.extra == {"sha256": SHA_B, "thumbnail_sha256": None}
    first, second = attachments(case.g)
    assert (first.principal, first.role, first.assignment_id) == ("op-li", "operator", None)
    assert (second.role, second.assignment_id) == ("department", lead)
    assert second.department == case.g.assignment(lead).department
    assert find_attachment(case.g, SHA_T) == first
    events = app.history(case.id)
    assert type(events[-1]).__name__ == "Attached" and events[-1].sha256 == SHA_B
    assert app.verify_grievance(case.id) is None
    assert case.g.state()["attachments"][0]["sha256"] == SHA_A


def test_a_repeated_command_id_records_once(app: GrievanceApp) -> None:
    case = new_case(app)
    first = app.attach_file(case.id, OPERATOR, command_id="up-1", **photo())
    again = app.attach_file(case.id, OPERATOR, command_id="up-1", **photo())
    assert again.replayed and again.version == first.version
    assert len(attachments(case.g)) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sha256": "A" * 64}, "invalid-digest"),
        ({"thumbnail_sha256": "xyz"}, "invalid-digest"),
        ({"size": 0}, "out-of-range"),
        ({"media_type": ""}, "required"),
        ({"note": "x" * 501}, "text-too-long"),
    ],
)
def test_malformed_attachments_are_refused(
    app: GrievanceApp, change: dict[str, Any], code: str
) -> None:
    case = new_case(app)
    with pytest.raises(ValidationError) as info:
        app.attach_file(case.id, OPERATOR, **photo(**change))
    assert info.value.code == code
    assert len(app.history(case.id)) == 2  # received, classified


def test_who_may_not_attach(app: GrievanceApp) -> None:
    case = dispatched_case(app)
    lead = case.aid(AssignmentRole.LEAD)
    with pytest.raises(PermissionDeniedError):
        app.attach_file(case.id, case.dept(lead), **photo())
    with pytest.raises(NotAssignedError):
        app.attach_to_assignment(lead, department("hd.water"), **photo())
    stranger = Actor("another-app", Role.OPEN311)
    with pytest.raises(PermissionDeniedError):
        app.attach_file(case.id, stranger, **photo())
    app.attach_file(case.id, OPERATOR, **photo())
    with pytest.raises(ValidationError) as info:
        app.attach_file(case.id, OPERATOR, **photo())
    assert info.value.code == "already-attached"


def test_an_open311_client_attaches_to_what_it_filed(app: GrievanceApp) -> None:
    client = Actor("wechat-miniapp", Role.OPEN311)
    result = app.receive_grievance(
        client,
        channel="open311",
        citizen_name="张三",
        citizen_phone="13812345678",
        text="井盖破损",
        location=make_location(),
    )
    app.attach_file(result.grievance_id, client, **photo())
    assert attachments(app.get_grievance(result.grievance_id))[0].role == "open311"


def test_a_final_grievance_takes_no_attachment(app: GrievanceApp) -> None:
    case = new_case(app)
    app.reject_grievance(case.id, OPERATOR, reason="不属于受理范围")
    with pytest.raises(IllegalTransitionError) as info:
        app.attach_file(case.id, OPERATOR, **photo())
    assert info.value.reason == "final-status"
