"""Policy what-if (domain.whatif): a small period whose answer is computed by hand.

Monday 2026-11-23, Beijing time (working hours 09:00-12:00, 13:30-18:00). The
proposal shortens class B (UM04: hd.enforcement) to sign for within 60 minutes and
resolve within 6 hours; class A emergencies (HS01: hd.market lead, hd.fire assisting)
keep their windows. Judged at Tuesday 12:00.

| case | dispatched | signed | done | now: sign / resolve due | proposed: due |
| --- | --- | --- | --- | --- | --- |
| G1 UM04 | 09:00 | 09:45 | resolved 12:00 | 11:00 / 12-02: met, met | 10:00 / 15:00: met, met |
| G2 UM04 | 09:10 | 10:40 | resolved 16:00 | 11:10 / 12-02: met, met | 10:10 / 15:10: missed ×2 |
| G3 UM04 | 09:20 | never | open | 11:20 / 12-02: missed, pending | 10:20 / 15:20: missed ×2 |
| G4 HS01 market | 09:30 | 09:35 | resolved 10:30 | 09:40 / 11:30: met, met | the same |
| G4 HS01 fire | 09:30 | 09:50 | part done 10:00 | 09:40 / 11:30: missed, met | the same |
| G5 UM04 | Tue 09:00 | – | – | outside the period | |

hd.enforcement now: met 4, missed 1, pending 1, 响应率 2/3; proposed: met 2, missed 4,
响应率 1/3. hd.market: met 2, 响应率 1/1. hd.fire: met 1, missed 1, 响应率 0/1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from domain.application import GrievanceApp
from domain.errors import ValidationError
from domain.policies import SlaPolicy
from domain.whatif import (
    DepartmentWhatIf,
    Tally,
    propose,
    propose_routing,
    reroute_period,
    total,
    what_if,
)
from tests.conftest import OPERATOR, FakeClock, department, make_grievance

MONDAY_0900 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
PROPOSAL = {"classes": {"B": {"sign_for": {"minutes": 60}, "resolve": {"hours": 6}}}}
ENF, MARKET, FIRE = "hd.enforcement", "hd.market", "hd.fire"


def at(clock: FakeClock, minutes: float, day: int = 0) -> None:
    clock.now = MONDAY_0900 + timedelta(days=day, minutes=minutes)


def dispatched(app: GrievanceApp, category: str) -> tuple[UUID, dict[str, str]]:
    gid = make_grievance(app)
    app.classify_grievance(gid, OPERATOR, category=category)
    aids = app.dispatch_grievance(gid, OPERATOR).extra["assignments"]
    g = app.get_grievance(gid)
    return gid, {g.assignments[a].department: a for a in aids}


def hand_period(app: GrievanceApp, clock: FakeClock) -> None:
    at(clock, 0)
    _, g1 = dispatched(app, "UM04")
    at(clock, 10)
    _, g2 = dispatched(app, "UM04")
    at(clock, 20)
    dispatched(app, "UM04")  # G3: never signed for
    at(clock, 30)
    _, g4 = dispatched(app, "HS01")
    assert set(g4) == {MARKET, FIRE}
    timeline: list[tuple[float, Callable[[], object]]] = [
        (35, lambda: app.sign_for(g4[MARKET], department(MARKET))),
        (45, lambda: app.sign_for(g1[ENF], department(ENF))),
        (50, lambda: app.sign_for(g4[FIRE], department(FIRE))),
        (60, lambda: app.complete_part(g4[FIRE], department(FIRE), account="消防通道已清理")),
        (90, lambda: app.resolve(g4[MARKET], department(MARKET), account="已处置")),
        (100, lambda: app.sign_for(g2[ENF], department(ENF))),
        (180, lambda: app.resolve(g1[ENF], department(ENF), account="已处置")),
        (420, lambda: app.resolve(g2[ENF], department(ENF), account="已处置")),
    ]
    for minute, act in timeline:
        at(clock, minute)
        act()
    at(clock, 0, day=1)
    dispatched(app, "UM04")  # G5: Tuesday, outside the period
    at(clock, 180, day=1)  # judged at Tuesday 12:00


def by_department(
    app: GrievanceApp, proposal: SlaPolicy, day: date, as_of: datetime | None = None
) -> dict[str, DepartmentWhatIf]:
    return {r.department: r for r in what_if(app, proposal, day, day, as_of=as_of)}


def counts(t: Tally) -> tuple[int, int, int, int, int, float | None]:
    return (t.met, t.missed, t.pending, t.dispatched, t.signed_for_in_time, t.response_rate)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_0900)


def test_a_hand_computed_period(clock: FakeClock) -> None:
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    hand_period(app, clock)
    written = app.recorder.max_notification_id()
    proposal = propose(app.policies.sla, PROPOSAL)
    monday = date(2026, 11, 23)
    rows = by_department(app, proposal, monday)

    assert list(rows) == [ENF, FIRE, MARKET]
    assert counts(rows[ENF].now) == (4, 1, 1, 3, 2, 0.6667)
    assert counts(rows[ENF].proposed) == (2, 4, 0, 3, 1, 0.3333)
    for code, expected in ((MARKET, (2, 0, 0, 1, 1, 1.0)), (FIRE, (1, 1, 0, 1, 0, 0.0))):
        assert counts(rows[code].now) == expected
        assert counts(rows[code].proposed) == expected
    summed = total(rows.values())
    assert counts(summed.now)[:5] == (7, 2, 1, 5, 3)
    assert counts(summed.proposed)[:5] == (5, 5, 0, 5, 2)
    assert app.recorder.max_notification_id() == written  # nothing was written

    # The current policy as the "proposal" changes nothing.
    same = what_if(app, propose(app.policies.sla), monday, monday)
    assert all(counts(r.now) == counts(r.proposed) for r in same)
    # Tuesday holds only G5; judged at 10:30 it is still within its sign-for deadline
    # (11:00), but not within the proposed one (10:00).
    tuesday = date(2026, 11, 24)
    (g5,) = what_if(
        app, proposal, tuesday, tuesday, as_of=MONDAY_0900 + timedelta(days=1, minutes=90)
    )
    assert counts(g5.now) == (0, 0, 2, 1, 0, 0.0)
    assert counts(g5.proposed) == (0, 1, 1, 1, 0, 0.0)  # due 10:00 under the proposal


def test_a_proposed_calendar_moves_working_time_deadlines(clock: FakeClock) -> None:
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    hand_period(app, clock)
    monday, tuesday_1030 = date(2026, 11, 23), MONDAY_0900 + timedelta(days=1, minutes=90)
    now = by_department(app, propose(app.policies.sla), monday)
    # Monday a holiday: UM04's 2 working hours to sign for run Tuesday 09:00-11:00, so at
    # Tuesday 10:30 G3 is not late yet (it was due Monday 11:20); HS01's clock-time
    # windows do not move.
    holiday = propose(app.policies.sla, calendar={"holidays": ["2026-11-23"]})
    rows = by_department(app, holiday, monday, tuesday_1030)
    assert counts(rows[ENF].now)[:5] == (4, 1, 1, 3, 2)
    assert counts(rows[ENF].proposed)[:5] == (4, 0, 2, 3, 2)
    assert counts(rows[FIRE].proposed) == counts(now[FIRE].now)
    # Shorter working hours (09:00-10:00, 17:00-18:00): G1's 2 working hours to sign for
    # end at 18:00, the same for G2, G3 (from 09:20: 40 min, then 17:00-18:00, Tuesday
    # 09:00-09:20) at Tuesday 09:20: still missed at 10:30.
    short = propose(
        app.policies.sla,
        calendar={
            "working_hours": [
                {"start": "09:00", "end": "10:00"},
                {"start": "17:00", "end": "18:00"},
            ]
        },
    )
    rows = by_department(app, short, monday, tuesday_1030)
    assert counts(rows[ENF].proposed)[:5] == (4, 1, 1, 3, 2)


def test_proposed_routing_rules_move_the_leads(clock: FakeClock) -> None:
    app = GrievanceApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    hand_period(app, clock)
    at(clock, 200)  # Monday 12:20: an operator sends one to the city administration himself
    gid = make_grievance(app)
    app.classify_grievance(gid, OPERATOR, category="UM04")
    app.dispatch_grievance(gid, OPERATOR, lead="hd.urban")
    p = app.policies
    rules = [{"category": "UM", "street": "xueyuanlu", "lead": "street", "assisting": []}]
    routing = propose_routing(p.routing, rules, p.categories, p.directory)
    monday = date(2026, 11, 23)
    found = reroute_period(app, routing, monday, monday)
    # G1-G3 (UM04 by the category's default: hd.enforcement) go to the street office;
    # G4 (HS01) has no rule; the operator's own choice stays; G5 is on Tuesday.
    assert (found.by_rules, found.moved, found.by_operator) == (4, 3, 1)
    assert found.now == {ENF: 3, MARKET: 1, "hd.urban": 1}
    assert found.proposed == {"st.xueyuanlu": 3, MARKET: 1, "hd.urban": 1}
    with pytest.raises(ValidationError):
        propose_routing(p.routing, [{**rules[0], "lead": "hd.nowhere"}], p.categories, p.directory)
