"""Commands are values, and GrievanceApp.handle is the one pipeline that runs them."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from domain import commands as c
from domain.application import GrievanceApp
from domain.errors import DomainError, IllegalTransitionError, StaleVersionError
from domain.handlers import HANDLERS
from domain.model import Actor, Role, Status
from domain.ratings import RoundCommand
from tests.conftest import OPERATOR, department, make_location
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
    # Knowledge-base articles and rating rounds have their own pipelines
    # (domain.knowledge.handle_article, domain.ratings.handle_round).
    articles = {c.ArticleCommand} | _command_types(c.ArticleCommand)
    rounds = {RoundCommand} | _command_types(RoundCommand)
    assert concrete - {c.ReceiveGrievance} - articles - rounds == set(HANDLERS)


def test_a_command_is_a_frozen_value() -> None:
    command = c.RejectGrievance(grievance_id=uuid4(), actor=OPERATOR, reason="x")
    with pytest.raises(FrozenInstanceError):
        command.reason = "y"  # type: ignore[misc]
    assert command == c.RejectGrievance(
        grievance_id=command.grievance_id, actor=OPERATOR, reason="x"
    )


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


# ------------------------------------------------------------ warm aggregates


def test_a_refused_command_leaves_the_warm_aggregate_as_stored(app: GrievanceApp) -> None:
    case = dispatched_case(app)
    warm = app.warm.take(case.id)
    assert warm is not None and warm.version == app.get_grievance(case.id).version
    app.warm.put(warm)
    with pytest.raises(DomainError):  # dispatched: classifying again is refused
        app.handle(c.ClassifyGrievance(grievance_id=case.id, actor=OPERATOR, category="SF02"))
    stored = app.get_grievance(case.id)
    # The guards ran before any event: the instance the refused command had is unchanged…
    assert warm.state() == stored.state() and warm.version == stored.version
    assert warm.pending_events == []
    # …and it is not handed out again (a refusal is judged on a fresh load, then dropped).
    assert app.warm.take(case.id) is None
    assert (
        app.handle(c.WithdrawGrievance(grievance_id=case.id, actor=OPERATOR, reason="撤")).version
        == stored.version + 1
    )


def test_a_command_on_a_warm_aggregate_reads_nothing(
    app: GrievanceApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = new_case(app)
    loads: list[object] = []
    monkeypatch.setattr(app, "get_grievance", lambda *a, **k: loads.append(a))
    app.handle(c.DispatchGrievance(grievance_id=case.id, actor=OPERATOR))
    assert loads == []  # no replay: the aggregate the classify left warm


def test_a_stale_warm_aggregate_is_judged_again_on_the_stored_events(tmp_path: Path) -> None:
    """Two processes on one event store: each one's warm copy goes stale when the other
    writes; the save fails on its version and the command runs on a fresh load."""
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    api, worker = GrievanceApp(env), GrievanceApp(env)
    try:
        case = new_case(api)  # warm in ``api`` at the classified version
        worker.handle(c.DispatchGrievance(grievance_id=case.id, actor=OPERATOR, command_id="d"))
        # ``api``'s copy is stale (classified): it would refuse; the stored events accept.
        aid = worker.get_grievance(case.id).lead_assignment().id  # type: ignore[union-attr]
        street = department(worker.get_grievance(case.id).assignment(aid).department)
        assert api.handle(c.SignFor(assignment_id=aid, actor=street)).version == 4
        # The repeat of a command the other process recorded answers its first result.
        again = api.handle(
            c.DispatchGrievance(grievance_id=case.id, actor=OPERATOR, command_id="d")
        )
        assert again.replayed and again.version == 3
        # The worker's copy (dispatched, v3) is stale too: its save fails, a fresh load records.
        api.handle(c.ReportProgress(assignment_id=aid, actor=street, note="在办"))
        g = worker.get_grievance(case.id)
        lead = g.assignment(aid)
        urged = worker.handle(
            c.Urge(
                grievance_id=case.id,
                actor=Actor("workflow", Role.SYSTEM),
                kind="resolve",
                assignment_id=aid,
                due=lead.resolve_deadline,
                reason_code="deadline-approaching",
                only_if_open=True,
            )
        )
        assert urged.recorded and urged.version == 6
        assert [e.originator_version for e in api.history(case.id)] == list(range(1, 7))
    finally:
        api.close()
        worker.close()


def test_a_refused_dispatch_names_a_missing_classification_only_when_it_is_missing(
    app: GrievanceApp,
) -> None:
    unclassified = new_case(app, category=None)
    with pytest.raises(IllegalTransitionError) as refused:
        app.handle(c.DispatchGrievance(grievance_id=unclassified.id, actor=OPERATOR))
    assert refused.value.reason == "not-classified"

    dispatched = dispatched_case(app)
    with pytest.raises(IllegalTransitionError) as again:
        app.handle(c.DispatchGrievance(grievance_id=dispatched.id, actor=OPERATOR))
    assert again.value.status == Status.DISPATCHED.value
    assert again.value.reason is None
