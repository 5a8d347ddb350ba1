"""Signed webhooks from the workflow: assigned and urged departments are notified, and a
department whose endpoint is down never holds up the deadline ladder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.workflows import (
    OPERATOR,
    department,
    eventually,
    webhook_receiver,
    workflow_harness,
)
from workflows.webhooks import WebhookDirectory, WebhookTarget, new_secret

pytestmark = pytest.mark.temporal

STREET = "st.xueyuanlu"
HOUSING = "hd.housing"
STREET_SECRET = new_secret()


async def test_assigned_and_urged_departments_get_signed_notifications(tmp_path: Path) -> None:
    with webhook_receiver(STREET_SECRET) as street:
        hooks = WebhookDirectory({STREET: WebhookTarget(street.url, STREET_SECRET)})
        async with workflow_harness(tmp_path, webhooks=hooks) as h:
            gid = await h.file("PM01")
            lead, housing_part = await h.dispatch(gid, lead=STREET, assisting=[HOUSING])
            await h.pump()
            await eventually(lambda: street.received)
            [assigned] = street.received
            assert assigned["body"]["event"] == "assigned"
            assert assigned["body"]["assignment_id"] == lead
            assert assigned["key"] == f"grievance-{gid}/assigned/{lead}"

            a = h.app.get_grievance(gid).assignment(lead)
            assert a.sign_for_deadline is not None
            await h.advance_to(h.app.policies.sla.urge_at(a.dispatched_at, a.sign_for_deadline))
            await eventually(lambda: len(street.received) >= 2)
            urged = street.received[1]["body"]
            assert (urged["event"], urged["kind"], urged["assignment_id"]) == (
                "urged",
                "sign_for",
                lead,
            )
            # hd.housing has no webhook: nothing is sent for it, and nothing was refused.
            assert all(r["body"]["department"] == STREET for r in street.received)
            assert all(r["body"]["assignment_id"] != housing_part for r in street.received)
            assert street.rejected == 0


async def test_a_department_that_is_down_does_not_block_the_ladder(tmp_path: Path) -> None:
    with webhook_receiver(STREET_SECRET, status=503) as street:
        hooks = WebhookDirectory({STREET: WebhookTarget(street.url, STREET_SECRET)})
        async with workflow_harness(tmp_path, webhooks=hooks) as h:
            gid = await h.file("PM01")
            [lead] = await h.dispatch(gid)
            await h.pump()
            a = h.app.get_grievance(gid).assignment(lead)
            assert a.sign_for_deadline is not None
            await h.advance_to(h.app.policies.sla.level2_at(a.sign_for_deadline))
            escalations = await h.wait_events(gid, "Escalated", count=2)
            assert [e.level for e in escalations] == [1, 2]
            assert len(h.events(gid, "Urged")) == 1
            assert street.attempts >= 2  # retried with backoff while the ladder moved on
            assert not street.received

            # A reopening with the webhook still down: the new round's ladder runs at
            # once; the workflow continues as new only once no webhook is in flight.
            await h.do(h.app.sign_for, lead, department(STREET))
            await h.do(h.app.resolve, lead, department(STREET), account="已处理")
            await h.do(
                h.app.record_feedback,
                gid,
                OPERATOR,
                contacted=True,
                resolved=False,
                satisfaction="unsatisfied",
            )
            new_lead = h.events(gid, "Reopened")[-1].assignments[0]["assignment_id"]
            first_run = await h.run_id(gid)
            await h.pump()
            fresh = h.app.get_grievance(gid).assignment(new_lead)
            assert fresh.sign_for_deadline is not None
            await h.advance_to(fresh.sign_for_deadline + timedelta(minutes=1))
            await h.wait_events(gid, "Escalated", level=1, assignment_id=new_lead)
            assert len(h.events(gid, "Urged", assignment_id=new_lead)) == 1
            await h.wait_continued(gid, first_run)  # the webhooks were given up meanwhile
