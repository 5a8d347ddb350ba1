"""Property: any sequence of commands either applies or raises a domain error, a refused
command changes nothing and names a listed code (never offering the refused action), and
the aggregate rebuilt from its stored events equals the live one."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import GrievanceApp
from domain.errors import ERROR_CODES, DomainError, IllegalTransitionError
from domain.grievance import Grievance
from domain.model import SYSTEM, Actor, Role
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, department, make_grievance

DEPARTMENTS = ["st.xueyuanlu", "hd.housing", "hd.fire", "cm.xyl-01", "hd.urban"]
CATEGORIES = ["PM01", "PM02", "SF02", "LB01", "HS01"]
FEEDBACK = [
    (True, True, "satisfied"),
    (True, True, "basically_satisfied"),
    (True, False, "unsatisfied"),
    (True, True, "unsatisfied"),
    (False, None, None),
]
COMMANDS = [
    "classify",
    "dispatch",
    "dispatch_explicit",
    "reject",
    "sign_for",
    "return",
    "arbitrate_confirm",
    "arbitrate_redispatch",
    "progress",
    "request_extension",
    "grant",
    "deny",
    "complete_part",
    "resolve",
    "summon",
    "report_in",
    "urge",
    "escalate",
    "feedback",
    "close",
    "withdraw",
    "merge",
    "advance_clock",
]


class SharedWarm:
    """The command pipeline's warm aggregates, but never taken out: every command gets the
    same live instance (stricter than ``WarmAggregates``, which discards a refused one)."""

    def __init__(self, live: dict[UUID, Grievance]) -> None:
        self.live = live

    def take(self, grievance_id: UUID) -> Grievance | None:
        return self.live.get(grievance_id)

    def put(self, grievance: Grievance) -> None:
        self.live[grievance.id] = grievance

    def evict(self, grievance_id: UUID) -> None:
        self.live.pop(grievance_id, None)


class LiveApp(GrievanceApp):
    """Hands out one live instance per grievance, so refused commands that mutated it
    would show up as a difference from the stored events."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.live: dict[UUID, Grievance] = {}
        self.warm = SharedWarm(self.live)  # type: ignore[assignment]

    def get_grievance(self, grievance_id: UUID, version: int | None = None) -> Grievance:
        if version is None and grievance_id in self.live:
            return self.live[grievance_id]
        grievance = super().get_grievance(grievance_id, version)
        if version is None:
            self.live[grievance_id] = grievance
        return grievance

    def rebuilt(self, grievance_id: UUID) -> Grievance:
        return GrievanceApp.get_grievance(self, grievance_id)


TERMINAL = {"reject", "withdraw", "merge", "close"}
# Work commands are drawn more often than the ones that end the loop, so sequences
# get deep into dispatch, extensions, summons, feedback and reopening.
WEIGHTED = [c for c in COMMANDS for _ in range(1 if c in TERMINAL else 4)]
PREFIXES = ["resolved", "signed_for", "dispatched", "classified", "received"]

step = st.tuples(
    st.sampled_from(WEIGHTED),
    st.integers(0, 7),
    st.integers(0, 7),
    st.sampled_from([True, True, True, True, False]),  # mostly the right actor
)


def run_step(
    app: LiveApp, clock: FakeClock, gid: UUID, other: UUID, cmd: tuple[str, int, int, bool]
) -> None:
    name, i, j, own = cmd
    g = app.get_grievance(gid)
    # Mostly an assignment still in play (newest first), sometimes any at all.
    in_play = [a.id for a in reversed(g.assignments.values()) if a.is_open]
    aids = in_play if in_play and i < 6 else list(g.assignments)
    aid = aids[i % len(aids)] if aids else f"{gid}.1"
    owner = g.assignments[aid].department if aid in g.assignments else DEPARTMENTS[0]
    dept: Actor = department(owner if own else DEPARTMENTS[j % len(DEPARTMENTS)])
    staff = OPERATOR if own else Actor("x", Role.SUPERVISOR)
    match name:
        case "classify":
            app.classify_grievance(gid, staff, category=CATEGORIES[i % len(CATEGORIES)])
        case "dispatch":
            app.dispatch_grievance(gid, staff)
        case "dispatch_explicit":
            app.dispatch_grievance(
                gid, staff, lead=DEPARTMENTS[i % 5], assisting=[DEPARTMENTS[j % 5]]
            )
        case "reject":
            app.reject_grievance(gid, staff, reason="不属于受理范围")
        case "sign_for":
            app.sign_for(aid, dept)
        case "return":
            app.return_assignment(aid, dept, reason="非本单位职责")
        case "arbitrate_confirm":
            app.arbitrate_return(gid, staff, assignment_id=aid, decision="confirm")
        case "arbitrate_redispatch":
            app.arbitrate_return(
                gid, staff, assignment_id=aid, decision="redispatch", department=DEPARTMENTS[j % 5]
            )
        case "progress":
            app.report_progress(aid, dept, note="正在协调")
        case "request_extension":
            a = g.assignments.get(aid)
            base = a.resolve_deadline if a and a.resolve_deadline else clock.now
            app.request_extension(
                aid, dept, new_deadline=base + timedelta(days=j - 2), reason="需要协调"
            )
        case "grant":
            app.decide_extension(gid, SUPERVISOR if own else dept, assignment_id=aid, granted=True)
        case "deny":
            app.decide_extension(
                gid, SUPERVISOR, assignment_id=aid, granted=False, reason="不同意" if own else ""
            )
        case "complete_part":
            app.complete_part(aid, dept, account="已完成")
        case "resolve":
            app.resolve(aid, dept, account="已办结")
        case "summon":
            app.summon_departments(
                gid, SUPERVISOR, departments=[DEPARTMENTS[i % 5], DEPARTMENTS[j % 5]], reason="吹哨"
            )
        case "report_in":
            app.report_in(aid, dept)
        case "urge":
            kinds = ["sign_for", "resolve", "report_in", "redispatch", "feedback"]
            app.urge(
                gid,
                SYSTEM,
                kind=kinds[j % 5],
                assignment_id=None if kinds[j % 5] == "feedback" else aid,
                only_if_open=own,
            )
        case "escalate":
            app.escalate(gid, SYSTEM if own else SUPERVISOR, level=1 + i % 4, reason="逾期")
        case "feedback":
            contacted, resolved, satisfaction = FEEDBACK[i % len(FEEDBACK)]
            app.record_feedback(
                gid, OPERATOR, contacted=contacted, resolved=resolved, satisfaction=satisfaction
            )
        case "close":
            app.close_grievance(gid, SYSTEM if own else OPERATOR, outcome="no_response")
        case "withdraw":
            app.withdraw_grievance(gid, staff, reason="撤诉")
        case "merge":
            app.merge_grievance(gid, staff, into=other if own else gid)
        case "advance_clock":
            clock.advance(hours=3 * (i + 1))


def start_from(app: LiveApp, gid: UUID, prefix: str) -> None:
    """Walk the grievance legally up to ``prefix`` before the random steps."""
    if prefix == "received":
        return
    app.classify_grievance(gid, OPERATOR, category="PM02")
    if prefix == "classified":
        return
    app.dispatch_grievance(gid, OPERATOR)
    if prefix == "dispatched":
        return
    g = app.get_grievance(gid)
    for a in g.current_assignments():
        app.sign_for(a.id, department(a.department))
    if prefix == "signed_for":
        return
    for a in app.get_grievance(gid).current_assignments():
        if a.role.value == "assisting":
            app.complete_part(a.id, department(a.department), account="完成")
    lead = app.get_grievance(gid).lead_assignment()
    assert lead is not None
    app.resolve(lead.id, department(lead.department), account="办结")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@pytest.mark.parametrize("prefix", PREFIXES)
@given(st.lists(step, min_size=5, max_size=60))
def test_any_command_sequence_applies_or_raises_a_domain_error(
    prefix: str, steps: list[tuple[str, int, int, bool]]
) -> None:
    """Each parametrised prefix starts the random steps from a deeper point of the loop."""
    clock = FakeClock()
    app = LiveApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    gid = make_grievance(app)
    other = make_grievance(app, text="同一地点的另一件诉求")
    start_from(app, gid, prefix)
    for cmd in steps:
        before = app.get_grievance(gid).version
        try:
            run_step(app, clock, gid, other, cmd)
        except DomainError as error:
            live = app.get_grievance(gid)
            assert live.version == before, f"{cmd[0]} raised but recorded events"
            assert live.pending_events == []
            assert error.code in ERROR_CODES, error
            if isinstance(error, IllegalTransitionError):
                assert error.action not in error.allowed, error
                assert error.reason is None or error.reason in ERROR_CODES, error
    live = app.get_grievance(gid)
    rebuilt = app.rebuilt(gid)
    assert rebuilt.state() == live.state()
    assert [e.originator_version for e in app.history(gid)] == list(range(1, live.version + 1))
    assert app.rebuilt(other).state() == app.get_grievance(other).state()
