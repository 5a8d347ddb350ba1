"""Answers at intake and the workflows (time-skipping server): closed at once, nothing to
time; with the policy's 回访 after such answers, the feedback window is timed like after
a department's 办结."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from tests.support.workflows import OPERATOR, workflow_harness

pytestmark = pytest.mark.temporal


def callback_policy(tmp_path: Path) -> Path:
    """A policy directory whose SLA profiles want a 回访 after an answer at intake."""
    data = json.loads(resources.files("domain.policies").joinpath("sla.json").read_text("utf-8"))
    for profile in data["profiles"].values():
        profile["answered_at_intake_callback"] = True
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "sla.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


async def test_an_answer_at_intake_closes_it_and_starts_no_workflow(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path) as h:
        gid = await h.file("PM01")
        await h.do(h.app.answer_at_intake, gid, OPERATOR, answer="已电话答复办理渠道。")
        await h.pump()
        assert h.app.get_grievance(gid).status.value == "closed"
        assert not await h.histories_of(gid)  # no workflow was ever started


async def test_with_a_callback_policy_the_feedback_window_is_timed(tmp_path: Path) -> None:
    async with workflow_harness(tmp_path, policy_dir=callback_policy(tmp_path)) as h:
        gid = await h.file("PM01")
        await h.do(h.app.answer_at_intake, gid, OPERATOR, answer="已电话答复办理渠道。")
        await h.pump()
        g = h.app.get_grievance(gid)
        assert g.status.value == "resolved" and g.feedback_deadline is not None
        state = await h.wait_version(gid)
        assert [d.kind for d in state.deadlines] == ["feedback"]
        await h.advance_to(g.feedback_deadline + timedelta(minutes=1))
        [closed] = await h.wait_events(gid, "Closed")
        assert (closed.outcome, closed.role) == ("no_response", "system")
