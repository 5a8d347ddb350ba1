"""GrievanceWorkflow scenarios on the time-skipping test server.

Each test drives the real application (SQLite event store), the real relay and a real
worker; time is skipped on the server, and every assertion reads the events recorded
in the event store.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from temporalio.api.enums.v1 import EventType

from domain.errors import IllegalTransitionError
from tests.support.workflows import (
    OPERATOR,
    SUPERVISOR,
    Harness,
    department,
    workflow_harness,
)

pytestmark = pytest.mark.temporal

STREET = "st.xueyuanlu"
HOUSING = "hd.housing"
URBAN = "hd.urban"


async def test_late_sign_for_is_urged_then_escalated_to_level_1_and_2(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        await h.pump()
        g = h.app.get_grievance(gid)
        a = g.assignment(lead)
        sla = h.app.policies.sla
        due = a.sign_for_deadline
        assert due is not None
        urge_at = sla.urge_at(a.dispatched_at, due)
        level2_at = sla.level2_at(due)

        await h.advance_to(urge_at)
        [urged] = await h.wait_events(gid, "Urged", kind="sign_for")
        assert urged.department == STREET and urged.assignment_id == lead
        assert urged.deadline == due
        assert not h.events(gid, "Escalated")

        await h.advance_to(due)
        [level1] = await h.wait_events(gid, "Escalated", level=1)
        assert (level1.kind, level1.department, level1.assignment_id) == ("sign_for", STREET, lead)
        assert level1.role == "system"

        await h.advance_to(level2_at)
        [level2] = await h.wait_events(gid, "Escalated", level=2)
        assert (level2.kind, level2.department) == ("sign_for", STREET)

        # The department finally signs for: the sign-for ladder is over, nothing repeats.
        await h.do(h.app.sign_for, lead, department(STREET))
        await h.pump()
        state = await h.wait_version(gid)
        assert [d.kind for d in state.deadlines] == ["resolve"]
        assert len(h.events(gid, "Urged")) == 1
        assert [e.level for e in h.events(gid, "Escalated")] == [1, 2]
        assert h.app.get_grievance(gid).assignment(lead).escalation_level == 2


async def test_granted_extension_moves_the_deadline_and_a_denied_one_does_not(
    tmp_path: Path,
) -> None:
    async with workflow_harness(tmp_path) as h:
        granted_id = await h.file("PM01")
        denied_id = await h.file("PM01")
        [granted_lead] = await h.dispatch(granted_id)
        [denied_lead] = await h.dispatch(denied_id)
        for aid in (granted_lead, denied_lead):
            await h.do(h.app.sign_for, aid, department(STREET))
        old_due = h.app.get_grievance(granted_id).assignment(granted_lead).resolve_deadline
        assert old_due is not None
        new_due = old_due + timedelta(days=3)
        for aid in (granted_lead, denied_lead):
            await h.do(
                h.app.request_extension,
                aid,
                department(STREET),
                new_deadline=new_due,
                reason="需协调产权单位，申请延期",
            )
        await h.do(
            h.app.decide_extension, granted_id, SUPERVISOR, assignment_id=granted_lead, granted=True
        )
        await h.do(
            h.app.decide_extension,
            denied_id,
            SUPERVISOR,
            assignment_id=denied_lead,
            granted=False,
            reason="理由不充分",
        )
        await h.pump()
        granted_state = await h.wait_version(granted_id)
        assert [(d.kind, d.due) for d in granted_state.deadlines] == [("resolve", new_due)]
        assert [d.due for d in (await h.wait_version(denied_id)).deadlines] == [old_due]

        # The old deadline passes: only the denied grievance is escalated.
        await h.advance_to(old_due + timedelta(minutes=1))
        [denied_l1] = await h.wait_events(denied_id, "Escalated", level=1)
        assert (denied_l1.kind, denied_l1.deadline) == ("resolve", old_due)
        assert [e.deadline for e in h.events(denied_id, "Urged")] == [old_due]
        assert not h.events(granted_id, "Escalated")

        # The moved deadline passes: the re-armed ladder urges and escalates at the new one.
        await h.advance_to(new_due + timedelta(minutes=1))
        [granted_l1] = await h.wait_events(granted_id, "Escalated", level=1)
        assert (granted_l1.kind, granted_l1.deadline) == ("resolve", new_due)
        assert [e.deadline for e in h.events(granted_id, "Urged")] == [new_due]


async def test_lead_resolution_waits_for_both_assisting_departments(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        lead, housing, urban = await h.dispatch(gid, lead=STREET, assisting=[HOUSING, URBAN])
        for aid, code in ((lead, STREET), (housing, HOUSING), (urban, URBAN)):
            await h.do(h.app.sign_for, aid, department(code))
        await h.pump()
        state = await h.wait_version(gid)
        roles = {a.assignment_id: (a.role, a.department) for a in state.assignments}
        assert roles == {
            lead: ("lead", STREET),
            housing: ("assisting", HOUSING),
            urban: ("assisting", URBAN),
        }
        assert sorted(d.assignment_id for d in state.deadlines) == sorted([lead, housing, urban])

        await h.do(h.app.complete_part, housing, department(HOUSING), account="已完成收费核查")
        with pytest.raises(IllegalTransitionError, match=URBAN):
            await h.do(h.app.resolve, lead, department(STREET), account="已处理")
        await h.pump()
        state = await h.wait_version(gid)
        assert sorted(d.assignment_id for d in state.deadlines) == sorted([lead, urban])

        # The resolve deadline lapses: the lead and the late assisting department are
        # escalated, each by name; the department that finished its part is not.
        due = h.app.get_grievance(gid).assignment(lead).resolve_deadline
        assert due is not None
        await h.advance_to(due + timedelta(minutes=1))
        escalated = await h.wait_events(gid, "Escalated", count=2, level=1)
        assert {(e.department, e.assignment_id) for e in escalated} == {
            (STREET, lead),
            (URBAN, urban),
        }

        await h.do(h.app.complete_part, urban, department(URBAN), account="已完成")
        await h.do(h.app.resolve, lead, department(STREET), account="已处理完毕")
        await h.pump()
        state = await h.wait_version(gid)
        assert state.status == "resolved"
        assert [d.kind for d in state.deadlines] == ["feedback"]
        assert {e.department for e in h.events(gid, "Escalated")} == {STREET, URBAN}


async def test_summoned_department_that_never_reports_in_is_escalated_by_name(
    tmp_path: Path,
) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        await h.do(h.app.sign_for, lead, department(STREET))
        summons = await h.do(
            h.app.summon_departments,
            gid,
            SUPERVISOR,
            departments=[HOUSING, URBAN],
            reason="街道吹哨，部门报到",
        )
        housing_part, urban_part = summons.extra["assignments"]
        await h.pump()
        state = await h.wait_version(gid)
        assert {a.role for a in state.assignments} == {"lead", "summoned"}
        await h.do(h.app.report_in, housing_part, department(HOUSING))
        await h.pump()
        await h.wait_version(gid)

        g = h.app.get_grievance(gid)
        due = g.assignment(urban_part).report_in_deadline
        assert due is not None
        await h.advance_to(h.app.policies.sla.level2_at(due) + timedelta(minutes=1))
        escalations = await h.wait_events(gid, "Escalated", count=2, kind="report_in")
        assert [(e.level, e.department, e.assignment_id) for e in escalations] == [
            (1, URBAN, urban_part),
            (2, URBAN, urban_part),
        ]
        assert escalations[0].reason_code == "deadline-lapsed"
        assert escalations[0].reason_params["department"] == URBAN
        urged = h.events(gid, "Urged")
        assert [(e.kind, e.department) for e in urged] == [("report_in", URBAN)]


async def test_unsatisfied_feedback_reopens_and_the_loop_closes_when_satisfied(
    tmp_path: Path,
) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        await resolve_round(h, gid, lead)
        await h.do(
            h.app.record_feedback,
            gid,
            OPERATOR,
            contacted=True,
            resolved=False,
            satisfaction="unsatisfied",
            comment="问题依旧",
        )
        [reopened] = h.events(gid, "Reopened")
        [new_lead] = [a["assignment_id"] for a in reopened.assignments]
        first_run = await h.run_id(gid)
        await h.pump()
        await h.wait_continued(gid, first_run)
        state = await h.wait_version(gid)
        assert state.runs == 2  # continued as new for the new round
        assert (state.round, state.reopen_count) == (1, 1)
        assert {(d.kind, d.assignment_id) for d in state.deadlines} == {
            ("sign_for", new_lead),
            ("resolve", new_lead),
        }

        await resolve_round(h, gid, new_lead)
        await h.do(
            h.app.record_feedback,
            gid,
            OPERATOR,
            contacted=True,
            resolved=True,
            satisfaction="satisfied",
        )
        await h.pump()
        outcome = await h.outcome(gid)
        assert (outcome.status, outcome.runs) == ("closed", 2)
        [closed] = h.events(gid, "Closed")
        assert closed.outcome == "satisfied"
        assert not h.events(gid, "Escalated")


async def test_no_feedback_in_the_window_closes_with_no_response(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        await resolve_round(h, gid, lead)
        due = h.app.get_grievance(gid).feedback_deadline
        assert due is not None
        await h.advance_to(due + timedelta(minutes=1))
        [closed] = await h.wait_events(gid, "Closed")
        assert (closed.outcome, closed.role) == ("no_response", "system")
        [callback] = h.events(gid, "Urged", kind="feedback")
        assert callback.department == "dispatch-centre"
        await h.pump()
        outcome = await h.outcome(gid)
        assert outcome.status == "closed"
        assert h.app.get_grievance(gid).outcome.value == "no_response"


async def test_third_reopening_escalates_to_level_3(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        threshold = h.app.policies.sla.profile.reopen_escalation_threshold
        for _ in range(threshold):
            await resolve_round(h, gid, lead)
            await h.do(
                h.app.record_feedback,
                gid,
                OPERATOR,
                contacted=True,
                resolved=False,
                satisfaction="unsatisfied",
            )
            lead = h.events(gid, "Reopened")[-1].assignments[0]["assignment_id"]
            previous_run = await h.run_id(gid)
            await h.pump()
            await h.wait_continued(gid, previous_run)
        [level3] = h.events(gid, "Escalated", level=3)
        assert level3.department == STREET
        state = await h.wait_version(gid)
        assert (state.reopen_count, state.runs, state.status) == (3, 4, "dispatched")
        assert {d.assignment_id for d in state.deadlines} == {lead}


async def test_returned_assignment_escalates_when_the_redispatch_window_lapses(
    tmp_path: Path,
) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        [lead] = await h.dispatch(gid)
        await h.do(h.app.return_assignment, lead, department(STREET), reason="不属于本街道职责")
        await h.pump()
        state = await h.wait_version(gid)
        assert [(d.kind, d.department) for d in state.deadlines] == [
            ("redispatch", "dispatch-centre")
        ]
        due = h.app.get_grievance(gid).assignment(lead).redispatch_deadline
        assert due is not None
        await h.advance_to(due + timedelta(minutes=1))
        [level1] = await h.wait_events(gid, "Escalated", level=1)
        assert (level1.kind, level1.department) == ("redispatch", "dispatch-centre")


async def resolve_round(h: Harness, gid: UUID, lead: str) -> None:
    """Sign for and resolve the lead assignment, then relay it."""
    await h.do(h.app.sign_for, lead, department(STREET))
    await h.do(h.app.resolve, lead, department(STREET), account="已清理楼道并张贴告示")
    await h.pump()
    await h.wait_version(gid)


async def test_a_final_status_ends_the_workflow_and_its_timers(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path) as h:
        rejected = await h.file("PM01")
        await h.do(h.app.reject_grievance, rejected, OPERATOR, reason="不属于受理范围")
        withdrawn = await h.file("PM01")
        [lead] = await h.dispatch(withdrawn)
        await h.pump()
        # Rejected at intake, before any deadline: no workflow was ever started.
        assert not await h.histories_of(rejected)
        state = await h.wait_version(withdrawn)
        assert len(state.deadlines) == 2
        await h.do(h.app.withdraw_grievance, withdrawn, OPERATOR, reason="市民来电撤回")
        await h.pump()
        assert (await h.outcome(withdrawn)).status == "withdrawn"
        due = h.app.get_grievance(withdrawn).assignment(lead).resolve_deadline
        assert due is not None
        await h.advance_to(due + timedelta(days=2))
        assert not h.events(withdrawn, "Urged") and not h.events(withdrawn, "Escalated")


async def event_kinds(h: Harness, grievance_id: UUID) -> list[EventType.ValueType]:
    """The event types of the grievance's one workflow run, in order."""
    [history] = await h.histories_of(grievance_id)
    return [e.event_type for e in history.events]


async def test_the_workflow_starts_at_dispatch_and_keeps_its_timer_across_signals(
    tmp_path: Path,
) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        await h.pump()
        assert not await h.histories_of(gid)  # received and classified: no deadline

        lead, housing, urban = await h.dispatch(gid, lead=STREET, assisting=[HOUSING, URBAN])
        await h.pump()
        await h.wait_version(gid)
        # The assisting departments sign for one by one: each signal leaves the next step
        # (the lead's sign-for urge) where it was, so no timer is cancelled or restarted.
        for aid, code in ((housing, HOUSING), (urban, URBAN)):
            await h.do(h.app.sign_for, aid, department(code))
            await h.pump()
            await h.wait_version(gid)
        kinds = await event_kinds(h, gid)
        assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 3
        assert kinds.count(EventType.EVENT_TYPE_TIMER_STARTED) == 1
        assert EventType.EVENT_TYPE_TIMER_CANCELED not in kinds

        # The lead signs for: the next step moves to a resolve urge, one timer re-armed.
        await h.do(h.app.sign_for, lead, department(STREET))
        await h.pump()
        await h.wait_version(gid)
        kinds = await event_kinds(h, gid)
        assert kinds.count(EventType.EVENT_TYPE_TIMER_STARTED) == 2
        assert kinds.count(EventType.EVENT_TYPE_TIMER_CANCELED) == 1
