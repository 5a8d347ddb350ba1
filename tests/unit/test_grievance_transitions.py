"""Every legal and illegal step of the loop, on the in-memory store.

An illegal command raises a domain error that names the current status and what is
allowed, and records nothing.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

import pytest

from domain.application import GrievanceApp
from domain.errors import (
    AssignmentStateError,
    GrievanceNotFoundError,
    IllegalTransitionError,
    NegativeListError,
    NotAssignedError,
    PermissionDeniedError,
    StaleVersionError,
    UnknownAssignmentError,
    ValidationError,
)
from domain.model import SYSTEM, AssignmentRole, AssignmentState, DeadlineKind, Status
from tests.conftest import (
    OPERATOR,
    SUPERVISOR,
    FakeClock,
    department,
    make_grievance,
    make_location,
)
from tests.support.domain import dispatched_case, new_case, resolved_case, work_through

pytestmark = pytest.mark.usefixtures("memory_app")


@pytest.fixture
def app(memory_app: GrievanceApp) -> GrievanceApp:
    return memory_app


def event_names(app: GrievanceApp, grievance_id) -> list[str]:  # type: ignore[no-untyped-def]
    return [type(e).__name__ for e in app.history(grievance_id)]


# ---------------------------------------------------------------- intake


def test_receive_records_everything_and_a_readable_number(app: GrievanceApp) -> None:
    gid = make_grievance(app, text="  楼道堆物  ", occurred_at=app.clock() - timedelta(hours=1))
    g = app.get_grievance(gid)
    assert g.status is Status.RECEIVED
    assert g.text == "楼道堆物"
    assert g.citizen_phone == "13812345678"
    assert g.location["community"] == "xyl-01"
    assert len(g.number) == 14 and g.number.isdigit() and g.number.startswith("20261123")
    assert app.get_by_number(g.number).id == gid
    assert event_names(app, gid) == ["Received"]


def test_text_is_stored_nfc_normalised(app: GrievanceApp) -> None:
    decomposed = unicodedata.normalize("NFD", "Café 噪音")
    g = app.get_grievance(make_grievance(app, text=decomposed))
    assert g.text == unicodedata.normalize("NFC", "Café 噪音")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"citizen_phone": "12345"}, "citizen_phone"),
        ({"citizen_phone": "1381234567"}, "citizen_phone"),
        ({"text": "   "}, "text"),
        ({"text": "长" * 4001}, "text"),
        ({"channel": "fax"}, "channel"),
        ({"citizen_name": ""}, "citizen_name"),
        ({"location": make_location(street="qinghe")}, "location.community"),
    ],
)
def test_bad_intake_is_refused_with_the_field(
    app: GrievanceApp, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        make_grievance(app, **overrides)
    assert info.value.field == field


def test_phone_formats_are_normalised(app: GrievanceApp) -> None:
    g = app.get_grievance(make_grievance(app, citizen_phone="+86 138 1234 5678"))
    assert g.citizen_phone == "13812345678"
    g = app.get_grievance(make_grievance(app, citizen_phone="010-62345678"))
    assert g.citizen_phone == "010-62345678"


def test_receiving_twice_with_one_command_id_files_once(app: GrievanceApp) -> None:
    first = make_grievance(app, command_id="intake-42")
    again = app.receive_grievance(
        OPERATOR,
        channel="hotline",
        citizen_name="张秀英",
        citizen_phone="13812345678",
        text="重复提交",
        location=make_location(),
        command_id="intake-42",
    )
    assert again.grievance_id == first and again.replayed
    assert app.get_grievance(first).text != "重复提交"


def test_departments_cannot_file(app: GrievanceApp) -> None:
    with pytest.raises(PermissionDeniedError):
        app.receive_grievance(
            department("st.xueyuanlu"),
            channel="web",
            citizen_name="王五",
            citizen_phone="13900001111",
            text="x",
            location=make_location(),
        )


def test_unknown_grievance_and_number(app: GrievanceApp) -> None:
    import uuid

    with pytest.raises(GrievanceNotFoundError):
        app.get_grievance(uuid.uuid4())
    with pytest.raises(GrievanceNotFoundError):
        app.get_by_number("20260101000000")


def test_classify_then_reclassify_until_dispatched(app: GrievanceApp) -> None:
    case = new_case(app, "PM01")
    app.classify_grievance(case.id, OPERATOR, category="HS01")
    g = case.g
    assert (g.category, g.urgency, g.sla_class) == ("HS01", "emergency", "A")
    app.dispatch_grievance(case.id, OPERATOR)
    with pytest.raises(IllegalTransitionError) as info:
        app.classify_grievance(case.id, OPERATOR, category="PM01")
    assert info.value.status == "dispatched"
    assert "sign_for" in info.value.allowed


def test_classify_refuses_top_categories_and_bad_urgency(app: GrievanceApp) -> None:
    case = new_case(app, None)
    with pytest.raises(ValidationError, match="category-not-leaf"):
        app.classify_grievance(case.id, OPERATOR, category="UM")
    with pytest.raises(ValidationError) as info:
        app.classify_grievance(case.id, OPERATOR, category="UM01", urgency="whenever")
    assert info.value.field == "urgency"
    assert case.g.version == 1


def test_reject_only_at_intake_and_then_nothing_more(app: GrievanceApp) -> None:
    case = new_case(app, None)
    app.reject_grievance(case.id, OPERATOR, reason="不属于本市受理范围")
    assert case.g.status is Status.REJECTED
    with pytest.raises(IllegalTransitionError) as info:
        app.classify_grievance(case.id, OPERATOR, category="PM01")
    assert info.value.status == "rejected" and info.value.allowed == []
    dispatched = dispatched_case(app)
    with pytest.raises(IllegalTransitionError):
        app.reject_grievance(dispatched.id, OPERATOR, reason="太晚了")


# --------------------------------------------------------------- dispatch


def test_dispatch_before_classification_names_the_status(app: GrievanceApp) -> None:
    case = new_case(app, None)
    with pytest.raises(IllegalTransitionError) as info:
        app.dispatch_grievance(case.id, OPERATOR)
    assert info.value.status == "received"
    assert "classify" in info.value.allowed
    assert "received" in str(info.value)


def test_dispatch_by_routing_rules_stores_deadlines(app: GrievanceApp, clock: FakeClock) -> None:
    case = dispatched_case(app, "SF02")
    g = case.g
    assert g.status is Status.DISPATCHED
    assert g.lead_department == "st.xueyuanlu"
    assert g.assisting_departments == ["hd.fire", "cm.xyl-01"]
    lead = g.assignment(case.aid())
    assert lead.sign_for_deadline is not None and lead.resolve_deadline is not None
    assert clock.now < lead.sign_for_deadline <= lead.resolve_deadline
    dispatched = app.history(case.id)[-1]
    assert dispatched.routed_by == "category:SF02"  # type: ignore[attr-defined]
    assert [a["sign_for_deadline"] for a in dispatched.assignments] == [  # type: ignore[attr-defined]
        a.sign_for_deadline for a in g.current_assignments()
    ]


def test_dispatch_to_a_community_on_the_negative_list_records_nothing(app: GrievanceApp) -> None:
    case = new_case(app, "LB01")
    with pytest.raises(NegativeListError):
        app.dispatch_grievance(case.id, OPERATOR, lead="cm.xyl-01")
    with pytest.raises(NegativeListError):
        app.dispatch_grievance(case.id, OPERATOR, lead="hd.hrss", assisting=["cm.xyl-01"])
    assert case.g.status is Status.CLASSIFIED and case.g.version == 2


def test_dispatch_refuses_unknown_or_repeated_departments(app: GrievanceApp) -> None:
    case = new_case(app, "PM01")
    with pytest.raises(ValidationError, match="unknown-department"):
        app.dispatch_grievance(case.id, OPERATOR, lead="nobody")
    with pytest.raises(ValidationError, match="department-twice"):
        app.dispatch_grievance(case.id, OPERATOR, lead="hd.housing", assisting=["hd.housing"])


def test_departments_and_system_cannot_dispatch(app: GrievanceApp) -> None:
    case = new_case(app, "PM01")
    with pytest.raises(PermissionDeniedError):
        app.dispatch_grievance(case.id, department("st.xueyuanlu"))
    with pytest.raises(PermissionDeniedError):
        app.dispatch_grievance(case.id, SYSTEM)


# ------------------------------------------------------------ departments


def test_only_the_assigned_department_signs_for_and_only_once(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    with pytest.raises(NotAssignedError):
        app.sign_for(lead, department("hd.housing"))
    with pytest.raises(PermissionDeniedError):
        app.sign_for(lead, OPERATOR)
    app.sign_for(lead, case.dept(lead))
    assert case.g.status is Status.IN_PROGRESS
    with pytest.raises(AssignmentStateError) as info:
        app.sign_for(lead, case.dept(lead))
    assert info.value.assignment_state == "signed_for"


def test_unknown_assignment(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    with pytest.raises(UnknownAssignmentError):
        app.sign_for(f"{case.id}.99", department("st.xueyuanlu"))
    with pytest.raises(ValidationError):
        app.sign_for("not-an-assignment", department("st.xueyuanlu"))


def test_resolve_needs_sign_for_first(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    with pytest.raises(IllegalTransitionError) as info:
        app.resolve(lead, case.dept(lead), account="done")
    assert info.value.status == "dispatched"
    assert info.value.reason == "not-signed-for"
    assert "resolve" not in info.value.allowed


def test_progress_needs_sign_for(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    with pytest.raises(AssignmentStateError):
        app.report_progress(lead, case.dept(lead), note="已联系物业")
    app.sign_for(lead, case.dept(lead))
    app.report_progress(lead, case.dept(lead), note="已联系物业")
    assert case.g.assignment(lead).progress_notes == 1


def test_lead_resolution_waits_for_every_assisting_part(app: GrievanceApp) -> None:
    case = dispatched_case(app, "SF02")  # lead street office + fire + community
    lead = case.aid()
    app.sign_for(lead, case.dept(lead))
    assisting = [a.id for a in case.g.current_assignments(AssignmentRole.ASSISTING)]
    for aid in assisting:
        app.sign_for(aid, case.dept(aid))
    with pytest.raises(AssignmentStateError) as refused:
        app.complete_part(lead, case.dept(lead), account="x")  # the lead has no "part"
    assert refused.value.reason == "assignment-role"
    assert refused.value.params["roles"] == ["assisting"]
    app.complete_part(assisting[0], case.dept(assisting[0]), account="消防检查完毕")
    with pytest.raises(IllegalTransitionError) as early:
        app.resolve(lead, case.dept(lead), account="done")
    assert early.value.reason == "waiting-for-assisting"
    assert early.value.params["departments"] == [case.dept(assisting[1]).department]
    assert "resolve" not in early.value.allowed
    with pytest.raises(AssignmentStateError):
        app.resolve(assisting[1], case.dept(assisting[1]), account="not the lead")
    app.complete_part(assisting[1], case.dept(assisting[1]), account="社区已劝导")
    app.resolve(lead, case.dept(lead), account="楼道充电已清理")
    g = case.g
    assert g.status is Status.RESOLVED and g.feedback_deadline is not None


def test_lead_return_goes_to_arbitration_then_redispatch(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    with pytest.raises(ValidationError):
        app.return_assignment(lead, case.dept(lead), reason="  ")
    app.return_assignment(lead, case.dept(lead), reason="不属于街道职责，应由区住建委办理")
    g = case.g
    assert g.status is Status.RETURNED
    assert [d.kind for d in g.open_deadlines()] == [DeadlineKind.REDISPATCH]
    with pytest.raises(ValidationError, match="redispatch-same-department"):
        app.arbitrate_return(
            case.id, OPERATOR, assignment_id=lead, decision="redispatch", department="st.xueyuanlu"
        )
    result = app.arbitrate_return(
        case.id, OPERATOR, assignment_id=lead, decision="redispatch", department="hd.housing"
    )
    g = case.g
    assert g.status is Status.DISPATCHED
    assert g.assignment(lead).state is AssignmentState.SUPERSEDED
    assert g.lead_department == "hd.housing"
    assert result.extra["assignment_id"] == case.aid()
    with pytest.raises(AssignmentStateError):
        app.arbitrate_return(case.id, OPERATOR, assignment_id=lead, decision="confirm")


def test_arbitration_can_confirm_the_department_keeps_it(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    app.return_assignment(lead, case.dept(lead), reason="人手不足")
    app.arbitrate_return(case.id, OPERATOR, assignment_id=lead, decision="confirm")
    g = case.g
    assert g.lead_department == "st.xueyuanlu" and case.aid() != lead
    assert g.assignment(case.aid()).state is AssignmentState.DISPATCHED


def test_assisting_return_blocks_resolution_until_arbitrated(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM02")  # street + housing
    lead, helper = case.aid(), case.aid(AssignmentRole.ASSISTING)
    app.sign_for(lead, case.dept(lead))
    app.return_assignment(helper, case.dept(helper), reason="不涉及本单位")
    assert case.g.status is Status.IN_PROGRESS
    with pytest.raises(IllegalTransitionError) as early:
        app.resolve(lead, case.dept(lead), account="done")
    assert early.value.reason == "waiting-for-assisting"
    assert early.value.params["departments"] == [case.dept(helper).department]
    app.arbitrate_return(
        case.id, OPERATOR, assignment_id=helper, decision="redispatch", department="hd.urban"
    )
    new_helper = case.aid(AssignmentRole.ASSISTING)
    app.sign_for(new_helper, case.dept(new_helper))
    app.complete_part(new_helper, case.dept(new_helper), account="ok")
    app.resolve(lead, case.dept(lead), account="done")
    assert case.g.status is Status.RESOLVED


# -------------------------------------------------------------- extensions


def test_extension_granted_moves_the_deadline_denied_does_not(
    app: GrievanceApp, clock: FakeClock
) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    dept = case.dept(lead)
    app.sign_for(lead, dept)
    before = case.g.assignment(lead).resolve_deadline
    assert before is not None
    with pytest.raises(ValidationError, match="deadline-not-later"):
        app.request_extension(lead, dept, new_deadline=before - timedelta(days=1), reason="x")
    with pytest.raises(ValidationError, match="deadline-too-late"):
        app.request_extension(lead, dept, new_deadline=before + timedelta(days=400), reason="x")
    app.request_extension(
        lead, dept, new_deadline=before + timedelta(days=3), reason="需协调产权单位"
    )
    with pytest.raises(AssignmentStateError, match="extension-pending"):
        app.request_extension(lead, dept, new_deadline=before + timedelta(days=4), reason="again")
    with pytest.raises(PermissionDeniedError):
        app.decide_extension(case.id, dept, assignment_id=lead, granted=True)
    with pytest.raises(ValidationError):
        app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=False)
    app.decide_extension(
        case.id, SUPERVISOR, assignment_id=lead, granted=False, reason="理由不充分"
    )
    assert case.g.assignment(lead).resolve_deadline == before
    with pytest.raises(AssignmentStateError, match="no-extension-pending"):
        app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=True)
    app.request_extension(lead, dept, new_deadline=before + timedelta(days=3), reason="再次申请")
    app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=True, reason="同意")
    a = case.g.assignment(lead)
    assert a.resolve_deadline == before + timedelta(days=3) and a.extensions_granted == 1
    assert [type(e).__name__ for e in app.history(case.id)][-4:] == [
        "ExtensionRequested",
        "ExtensionDenied",
        "ExtensionRequested",
        "ExtensionGranted",
    ]


# ------------------------------------------------------------ 吹哨 / 报到


def test_summons_and_report_in(app: GrievanceApp) -> None:
    case = dispatched_case(app, "UM01")
    with pytest.raises(PermissionDeniedError):
        app.summon_departments(case.id, OPERATOR, departments=["hd.planning"], reason="x")
    result = app.summon_departments(
        case.id,
        SUPERVISOR,
        departments=["hd.planning", "hd.police"],
        reason="违建拆除需多部门联合执法",
    )
    planning, police = result.extra["assignments"]
    g = case.g
    assert {d.kind for d in g.open_deadlines()} >= {DeadlineKind.REPORT_IN}
    with pytest.raises(ValidationError, match="already-summoned"):
        app.summon_departments(case.id, SUPERVISOR, departments=["hd.police"], reason="again")
    with pytest.raises(NotAssignedError):
        app.report_in(planning, department("hd.police"))
    with pytest.raises(AssignmentStateError):
        app.sign_for(planning, department("hd.planning"))  # summoned: report in, not sign for
    app.report_in(planning, department("hd.planning"))
    open_report_ins = [d for d in case.g.open_deadlines() if d.kind is DeadlineKind.REPORT_IN]
    assert [d.department for d in open_report_ins] == ["hd.police"]
    app.urge(case.id, SYSTEM, kind="report_in", assignment_id=police, reason="未按时报到")
    app.escalate(
        case.id, SYSTEM, level=1, kind="report_in", assignment_id=police, reason="逾期未报到"
    )
    escalation = case.g.escalations[-1]
    assert (escalation.department, escalation.level) == ("hd.police", 1)


# ------------------------------------------------------- urge and escalate


def test_urge_needs_an_open_deadline(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    app.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead)
    app.sign_for(lead, case.dept(lead))
    with pytest.raises(IllegalTransitionError, match="no-open-deadline"):
        app.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead)
    quiet = app.urge(case.id, SYSTEM, kind="sign_for", assignment_id=lead, only_if_open=True)
    assert quiet.recorded is False
    assert case.g.assignment(lead).urges == 1


def test_a_timer_for_a_moved_deadline_records_nothing(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    app.sign_for(lead, case.dept(lead))
    old_due = case.g.assignment(lead).resolve_deadline
    assert old_due is not None
    app.request_extension(
        lead, case.dept(lead), new_deadline=old_due + timedelta(days=2), reason="x"
    )
    app.decide_extension(case.id, SUPERVISOR, assignment_id=lead, granted=True)
    result = app.escalate(
        case.id,
        SYSTEM,
        level=1,
        kind="resolve",
        assignment_id=lead,
        due=old_due,
        reason="逾期",
        only_if_open=True,
    )
    assert result.recorded is False and case.g.escalation_level == 0


def test_escalation_levels_and_roles(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    with pytest.raises(ValidationError):
        app.escalate(case.id, SUPERVISOR, level=4, reason="x")
    with pytest.raises(PermissionDeniedError):
        app.escalate(case.id, OPERATOR, level=1, reason="x")
    app.escalate(case.id, SUPERVISOR, level=2, reason="群众反映强烈，区级督办")
    app.escalate(case.id, SUPERVISOR, level=1, reason="街道督办")
    assert case.g.escalation_level == 2
    assert [e.level for e in case.g.escalations] == [2, 1]


# ---------------------------------------------------------------- feedback


def test_feedback_only_after_resolution(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    with pytest.raises(IllegalTransitionError) as info:
        app.record_feedback(
            case.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied"
        )
    assert info.value.status == "dispatched"


def test_satisfied_feedback_closes(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    app.record_feedback(
        case.id, OPERATOR, contacted=True, resolved=True, satisfaction="basically_satisfied"
    )
    g = case.g
    assert g.status is Status.CLOSED and g.outcome is not None
    assert g.outcome.value == "basically_satisfied"
    assert g.open_deadlines() == []


def test_not_reached_keeps_it_waiting_and_no_response_closes(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    with pytest.raises(ValidationError):
        app.record_feedback(case.id, OPERATOR, contacted=False, satisfaction="satisfied")
    with pytest.raises(ValidationError):
        app.record_feedback(case.id, OPERATOR, contacted=True, resolved=True)
    app.record_feedback(case.id, OPERATOR, contacted=False, comment="无人接听")
    assert case.g.status is Status.RESOLVED
    with pytest.raises(ValidationError):
        app.close_grievance(case.id, SYSTEM, outcome="satisfied")
    with pytest.raises(PermissionDeniedError):
        app.close_grievance(case.id, OPERATOR, outcome="no_response")
    app.close_grievance(case.id, SYSTEM, outcome="no_response", reason="回访期内未联系上")
    assert case.g.status is Status.CLOSED
    again = app.close_grievance(case.id, SYSTEM, outcome="no_response", only_if_open=True)
    assert again.recorded is False


def test_unsatisfied_feedback_reopens_to_the_same_departments(
    app: GrievanceApp, clock: FakeClock
) -> None:
    case = resolved_case(app, "PM02")
    first_lead = case.aid()
    clock.advance(days=1)
    app.record_feedback(
        case.id,
        OPERATOR,
        contacted=True,
        resolved=False,
        satisfaction="unsatisfied",
        comment="没解决",
    )
    g = case.g
    assert g.status is Status.DISPATCHED and g.reopen_count == 1 and g.round == 1
    new_lead = g.assignment(case.aid())
    assert new_lead.id != first_lead and new_lead.department == "st.xueyuanlu"
    assert new_lead.round == 1
    assert g.assisting_departments == ["hd.housing"]
    assert new_lead.sign_for_deadline is not None and new_lead.sign_for_deadline > clock.now
    assert [type(e).__name__ for e in app.history(case.id)][-2:] == [
        "FeedbackRecorded",
        "Reopened",
    ]


def test_resolved_no_but_satisfied_still_reopens(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    app.record_feedback(case.id, OPERATOR, contacted=True, resolved=False, satisfaction="satisfied")
    assert case.g.status is Status.DISPATCHED


def test_third_reopening_escalates_to_level_three(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    for round_ in range(1, 4):
        app.record_feedback(
            case.id, OPERATOR, contacted=True, resolved=False, satisfaction="unsatisfied"
        )
        assert case.g.reopen_count == round_
        assert case.g.escalation_level == (3 if round_ == 3 else 0)
        if round_ < 3:
            work_through(case)
    assert [type(e).__name__ for e in app.history(case.id)][-3:] == [
        "FeedbackRecorded",
        "Reopened",
        "Escalated",
    ]
    work_through(case)
    app.record_feedback(case.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    assert case.g.status is Status.CLOSED


# ----------------------------------------------------- merge and withdraw


def test_merge_links_both_sides_atomically(app: GrievanceApp) -> None:
    primary = dispatched_case(app, "TR01")
    duplicate = new_case(app, "TR01")
    result = app.merge_grievance(duplicate.id, OPERATOR, into=primary.id, reason="同一小区停车问题")
    assert result.status == "merged" and result.extra["into_number"] == primary.g.number
    assert duplicate.g.merged_into == str(primary.id)
    assert primary.g.duplicates == [str(duplicate.id)]
    with pytest.raises(IllegalTransitionError) as info:
        app.classify_grievance(duplicate.id, OPERATOR, category="PM01")
    assert info.value.status == "merged" and info.value.allowed == []


def test_merge_into_itself_or_a_closed_grievance_records_nothing(app: GrievanceApp) -> None:
    closed = resolved_case(app, "PM01")
    app.record_feedback(
        closed.id, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied"
    )
    duplicate = new_case(app, "PM01")
    with pytest.raises(ValidationError):
        app.merge_grievance(duplicate.id, OPERATOR, into=duplicate.id)
    with pytest.raises(IllegalTransitionError, match="primary-final"):
        app.merge_grievance(duplicate.id, OPERATOR, into=closed.id)
    assert duplicate.g.status is Status.CLASSIFIED and duplicate.g.version == 2
    assert closed.g.duplicates == []


def test_withdraw_cancels_open_work(app: GrievanceApp) -> None:
    case = dispatched_case(app, "SF02")
    app.withdraw_grievance(case.id, OPERATOR, reason="市民来电撤诉")
    g = case.g
    assert g.status is Status.WITHDRAWN
    assert all(a.state is AssignmentState.CANCELLED for a in g.assignments.values())
    assert g.open_deadlines() == []
    lead = case.g.current_assignments(AssignmentRole.LEAD)[0]
    with pytest.raises(IllegalTransitionError):
        app.sign_for(lead.id, department(lead.department))


def test_resolved_grievance_cannot_be_withdrawn(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    with pytest.raises(IllegalTransitionError) as info:
        app.withdraw_grievance(case.id, OPERATOR, reason="x")
    assert info.value.allowed == [
        "attach",
        "attach_to_assignment",
        "close",
        "escalate",
        "record_feedback",
        "urge",
    ]


# ---------------------------------------------- idempotency and versions


def test_repeating_a_command_id_records_once_and_answers_the_same(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    first = app.sign_for(lead, case.dept(lead), command_id="sign-1")
    second = app.sign_for(lead, case.dept(lead), command_id="sign-1")
    assert second.replayed and (second.version, second.status) == (first.version, first.status)
    assert event_names(app, case.id).count("SignedFor") == 1


def test_multi_event_command_replays_its_final_result(app: GrievanceApp) -> None:
    case = resolved_case(app, "PM01")
    first = app.record_feedback(
        case.id,
        OPERATOR,
        contacted=True,
        resolved=False,
        satisfaction="unsatisfied",
        command_id="fb",
    )
    again = app.record_feedback(
        case.id,
        OPERATOR,
        contacted=True,
        resolved=False,
        satisfaction="unsatisfied",
        command_id="fb",
    )
    assert first.status == again.status == "dispatched" and again.version == first.version
    assert event_names(app, case.id).count("Reopened") == 1


def test_stale_expected_version_is_refused(app: GrievanceApp) -> None:
    case = new_case(app, "PM01")
    with pytest.raises(StaleVersionError):
        app.dispatch_grievance(case.id, OPERATOR, expected_version=1)
    app.dispatch_grievance(case.id, OPERATOR, expected_version=2)
    assert case.g.version == 3


def test_early_resolve_names_every_pending_assisting_department(app: GrievanceApp) -> None:
    case = dispatched_case(app, "SF02")  # lead street office; fire and community assist
    lead = case.aid()
    app.sign_for(lead, case.dept(lead))
    pending = sorted(a.department for a in case.g.current_assignments(AssignmentRole.ASSISTING))
    with pytest.raises(IllegalTransitionError) as info:
        app.resolve(lead, case.dept(lead), account="先办结")
    error = info.value
    assert error.reason == "waiting-for-assisting"
    assert sorted(error.params["departments"]) == pending == ["cm.xyl-01", "hd.fire"]
    assert "resolve" not in error.allowed and "resolve" not in error.params["allowed"]
    assert error.allowed == [
        "attach_to_assignment",
        "report_progress",
        "request_extension",
        "return",
    ]
    assert case.g.status is Status.IN_PROGRESS


def test_refusals_never_list_the_refused_action(app: GrievanceApp) -> None:
    case = dispatched_case(app, "PM01")
    lead = case.aid()
    with pytest.raises(IllegalTransitionError) as dispatched:
        app.resolve(lead, case.dept(lead), account="x")
    assert dispatched.value.reason == "not-signed-for"
    app.sign_for(lead, case.dept(lead))
    with pytest.raises(AssignmentStateError) as again:
        app.sign_for(lead, case.dept(lead))
    assert "sign_for" not in again.value.allowed
    assert again.value.allowed == [
        "attach_to_assignment",
        "report_progress",
        "request_extension",
        "resolve",
        "return",
    ]
