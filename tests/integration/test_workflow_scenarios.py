"""GrievanceWorkflow scenarios on the time-skipping test server.

Each test drives the real application (SQLite event store), the real relay and a real
worker; time is skipped on the server, and every assertion reads the events recorded
in the event store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.workflows import department, workflow_harness

pytestmark = pytest.mark.temporal

STREET = "st.xueyuanlu"


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
