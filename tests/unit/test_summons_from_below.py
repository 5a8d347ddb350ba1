"""吹哨 from the street or community, under the policy, and the rating after a summons
(街道评部门), on every event-store backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from domain.application import GrievanceApp
from domain.errors import (
    AssignmentStateError,
    NegativeListError,
    PermissionDeniedError,
    SummonRefusedError,
    ValidationError,
)
from domain.grievance import Grievance
from domain.model import AssignmentRole, Satisfaction
from domain.policies import load_policies
from domain.summons import ratings
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, department
from tests.support.domain import Case, dispatched_case, work_through

STREET = department("st.xueyuanlu")
COMMUNITY = department("cm.xyl-01")


def test_a_street_holding_an_assignment_summons_district_bureaus_and_utilities(
    app: GrievanceApp,
) -> None:
    case = dispatched_case(app, "SF02")  # lead: the street office; assisting: fire, community
    result = app.summon_departments(
        case.id, STREET, departments=["hd.urban", "ent.power"], reason="楼道线路隐患需联合处置"
    )
    summoned = case.g.current_assignments(AssignmentRole.SUMMONED)
    assert [a.department for a in summoned] == ["hd.urban", "ent.power"]
    event = app.history(case.id)[-1]
    assert isinstance(event, Grievance.Summoned)
    assert event.summoned_by == "st.xueyuanlu" and event.principal == STREET.principal
    assert result.extra["summons_id"] == event.summons_id


def test_a_community_may_call_only_its_own_streets_office(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM03")  # lead: the community committee
    with pytest.raises(SummonRefusedError) as beyond:
        app.summon_departments(case.id, COMMUNITY, departments=["hd.urban"], reason="x")
    assert beyond.value.code == "summon-beyond-policy"
    assert beyond.value.params == {"actor_department": "cm.xyl-01", "departments": ["hd.urban"]}
    with pytest.raises(SummonRefusedError) as elsewhere:
        app.summon_departments(case.id, COMMUNITY, departments=["st.qinghe"], reason="x")
    assert elsewhere.value.code == "summon-outside-street"
    version = case.g.version
    app.summon_departments(case.id, COMMUNITY, departments=["st.xueyuanlu"], reason="需街道牵头")
    assert case.g.version == version + 1  # the refusals recorded nothing


def test_only_a_holder_of_an_assignment_summons_and_operators_never(app: GrievanceApp) -> None:
    case = dispatched_case(app, "SF02")
    with pytest.raises(SummonRefusedError) as refused:
        app.summon_departments(
            case.id, department("st.qinghe"), departments=["hd.urban"], reason="x"
        )
    assert refused.value.code == "summon-without-assignment"
    with pytest.raises(PermissionDeniedError):
        app.summon_departments(case.id, OPERATOR, departments=["hd.urban"], reason="x")
    # Supervisors keep their own right, beyond the departments' policy.
    app.summon_departments(case.id, SUPERVISOR, departments=["cm.xyl-02"], reason="x")


def test_the_negative_list_applies_to_every_summons(app: GrievanceApp) -> None:
    case = dispatched_case(app, "UM01")  # on the negative list
    with pytest.raises(NegativeListError):
        app.summon_departments(case.id, SUPERVISOR, departments=["cm.xyl-01"], reason="x")


def test_who_may_summon_whom_is_policy_data(tmp_path: Path, clock: FakeClock) -> None:
    packaged = resources.files("domain.policies").joinpath("summons.json")
    data = json.loads(packaged.read_text(encoding="utf-8"))
    data["who_may_summon"]["street"].append({"level": "community", "scope": "own-street"})
    (tmp_path / "summons.json").write_text(json.dumps(data), encoding="utf-8")
    app = GrievanceApp(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        policies=load_policies(directory=tmp_path),
        clock=clock,
    )
    case = dispatched_case(app, "SF02")
    app.summon_departments(case.id, STREET, departments=["cm.xyl-02"], reason="x")
    with pytest.raises(SummonRefusedError, match="summon-outside-street"):
        app.summon_departments(case.id, STREET, departments=["cm.qh-01"], reason="x")
    shutil.rmtree(tmp_path)


# ---------------------------------------------------------------- rating


def _summoned_and_reported(app: GrievanceApp) -> tuple[Case, str]:
    case = dispatched_case(app, "SF02")
    result = app.summon_departments(case.id, STREET, departments=["hd.urban"], reason="联合处置")
    (urban,) = result.extra["assignments"]
    return case, urban


def test_the_street_rates_a_summoned_department_once_it_reported_in(
    app: GrievanceApp,
) -> None:
    case, urban = _summoned_and_reported(app)
    with pytest.raises(AssignmentStateError) as early:
        app.rate_summoned(case.id, STREET, assignment_id=urban, rating="satisfied")
    assert early.value.reason == "summons-not-ended"
    app.report_in(urban, department("hd.urban"))
    with pytest.raises(ValidationError, match="required"):
        app.rate_summoned(case.id, STREET, assignment_id=urban, rating="unsatisfied")
    with pytest.raises(SummonRefusedError, match="not-the-summoner"):
        app.rate_summoned(case.id, COMMUNITY, assignment_id=urban, rating="satisfied")
    app.rate_summoned(
        case.id, STREET, assignment_id=urban, rating="unsatisfied", reason="报到后未派人到场"
    )
    event = app.history(case.id)[-1]
    assert isinstance(event, Grievance.SummonsRated)
    assert (event.rater, event.department, event.rating, event.on_time, event.revision) == (
        "st.xueyuanlu",
        "hd.urban",
        "unsatisfied",
        True,
        1,
    )
    assert event.reason == "报到后未派人到场" and event.principal == STREET.principal


def test_a_rating_is_corrected_within_the_window_then_fixed(
    app: GrievanceApp, clock: FakeClock
) -> None:
    case, urban = _summoned_and_reported(app)
    app.report_in(urban, department("hd.urban"))
    app.rate_summoned(case.id, STREET, assignment_id=urban, rating="basically_satisfied")
    clock.advance(hours=24)
    # A supervisor corrects it for the street: still the street's rating, revision 2.
    app.rate_summoned(case.id, SUPERVISOR, assignment_id=urban, rating="satisfied")
    record = ratings(case.g)[urban]
    assert (record.rater, record.rating, record.revision) == (
        "st.xueyuanlu",
        Satisfaction.SATISFIED,
        2,
    )
    clock.advance(hours=49)  # 73 h after the first rating: the 72 h window closed
    with pytest.raises(AssignmentStateError) as late:
        app.rate_summoned(case.id, STREET, assignment_id=urban, rating="unsatisfied", reason="x")
    assert late.value.reason == "rating-window-closed"
    assert ratings(case.g)[urban].revision == 2


def test_a_closed_grievance_still_takes_the_rating_and_a_repeat_records_nothing(
    app: GrievanceApp,
) -> None:
    case = dispatched_case(app, "SF02")
    (urban,) = app.summon_departments(
        case.id, SUPERVISOR, departments=["hd.urban"], reason="x"
    ).extra["assignments"]
    work_through(case)  # resolved: the summons that never reported in ends too
    app.record_feedback(case.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    assert case.g.status.value == "closed"
    first = app.rate_summoned(  # a supervisor's summons: the grievance's street office rates it
        case.id, STREET, assignment_id=urban, rating="unsatisfied", reason="未报到", command_id="r1"
    )
    again = app.rate_summoned(
        case.id, STREET, assignment_id=urban, rating="unsatisfied", reason="未报到", command_id="r1"
    )
    assert again.replayed and again.version == first.version == case.g.version
    assert ratings(case.g)[urban].on_time is None  # never reported in
