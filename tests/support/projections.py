"""Fixtures for read-model tests: a scenario that walks grievances through every path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from domain.application import GrievanceApp
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, department, make_grievance

ENFORCEMENT = "hd.enforcement"
MARKET = "hd.market"
FIRE = "hd.fire"


@dataclass
class Scenario:
    """Grievance ids by the path each one took."""

    ids: dict[str, UUID] = field(default_factory=dict)

    def __getitem__(self, key: str) -> UUID:
        return self.ids[key]


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        "PROJECTIONS_SQLITE_DBNAME": str(tmp_path / "projections.sqlite"),
    }


def _dispatched(app: GrievanceApp, category: str, **kw: object) -> tuple[UUID, list[str]]:
    gid = make_grievance(app, **kw)
    app.classify_grievance(gid, OPERATOR, category=category)
    result = app.dispatch_grievance(gid, OPERATOR)
    return gid, list(result.extra["assignments"])


def lead_of(app: GrievanceApp, gid: UUID) -> str:
    lead = app.get_grievance(gid).lead_assignment()
    assert lead is not None
    return lead.id


def run_scenario(app: GrievanceApp, clock: FakeClock) -> Scenario:
    """Eight grievances: closed satisfied, reopened, merged, returned and confirmed,
    overdue and escalated, resolved awaiting callback, withdrawn, and just received."""
    s = Scenario()
    enf = department(ENFORCEMENT)

    # Closed satisfied: signed for and resolved in time, citizen satisfied.
    gid, (aid,) = _dispatched(app, "UM04")
    clock.advance(minutes=20)
    app.sign_for(aid, enf)
    clock.advance(hours=2)
    app.resolve(aid, enf, account="已现场处置，违停车辆已拖离。")
    clock.advance(hours=1)
    app.record_feedback(gid, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
    s.ids["closed"] = gid

    # Lead + assisting, resolved, citizen unsatisfied: reopened (重办), signed for again.
    gid, aids = _dispatched(app, "HS01")
    lead_id = lead_of(app, gid)
    assisting_id = next(a for a in aids if a != lead_id)
    app.sign_for(lead_id, department(MARKET))
    app.sign_for(assisting_id, department(FIRE))
    clock.advance(hours=1)
    app.complete_part(assisting_id, department(FIRE), account="消防通道已清理")
    app.resolve(lead_id, department(MARKET), account="已责令商户整改")
    clock.advance(hours=1)
    app.record_feedback(
        gid,
        OPERATOR,
        contacted=True,
        resolved=False,
        satisfaction="unsatisfied",
        comment="问题依旧",
    )
    app.sign_for(lead_of(app, gid), department(MARKET))
    s.ids["reopened"] = gid

    # A duplicate merged into the reopened one.
    dup = make_grievance(app, citizen_name="李四", citizen_phone="13900001111")
    app.classify_grievance(dup, OPERATOR, category="HS01")
    app.merge_grievance(dup, OPERATOR, into=gid, reason="同一商户")
    s.ids["merged"] = dup

    # Returned by the lead (退单), then confirmed by arbitration: back to the same department.
    gid, (aid,) = _dispatched(app, "UM04")
    app.return_assignment(aid, enf, reason="不属于本单位职责")
    s.ids["returned"] = gid
    gid2, (aid2,) = _dispatched(app, "UM04")
    app.return_assignment(aid2, enf, reason="地址不清")
    app.arbitrate_return(gid2, SUPERVISOR, assignment_id=aid2, decision="confirm")
    s.ids["arbitrated"] = gid2

    # Never signed for: the sign-for deadline passes, a supervisor escalates.
    gid, (aid,) = _dispatched(app, "UM04")
    deadline = app.get_grievance(gid).assignments[aid].sign_for_deadline
    assert deadline is not None
    clock.now = deadline + timedelta(minutes=5)
    app.escalate(gid, SUPERVISOR, level=1, reason="超时未签收", kind="sign_for", assignment_id=aid)
    s.ids["escalated"] = gid

    # Resolved late, awaiting the callback.
    gid, (aid,) = _dispatched(app, "UM04")
    app.sign_for(aid, enf)
    resolve_by = app.get_grievance(gid).assignments[aid].resolve_deadline
    assert resolve_by is not None
    clock.now = resolve_by + timedelta(hours=1)
    app.resolve(aid, enf, account="已处理")
    app.record_feedback(gid, OPERATOR, contacted=False)
    s.ids["awaiting_callback"] = gid

    s.ids["withdrawn"] = make_grievance(app)
    app.withdraw_grievance(s.ids["withdrawn"], OPERATOR, reason="诉求人撤回")
    s.ids["received"] = make_grievance(app, citizen_name="王五")
    return s


def postgres_env(schema: str) -> dict[str, str]:
    from tests.conftest import PG_DB, PG_HOST, PG_PORT, PG_USER

    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG_DB,
        "POSTGRES_HOST": PG_HOST,
        "POSTGRES_PORT": str(PG_PORT),
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "2",
    }


def dump_tables(env: dict[str, str]) -> dict[str, list[tuple[object, ...]]]:
    """Every read-model table (and tracking position), rows sorted: to compare builds."""
    from projections.db import open_datastore
    from projections.registry import PROJECTIONS
    from projections.runner import build_view

    datastore, dialect = open_datastore(env)
    try:
        tables: dict[str, list[tuple[object, ...]]] = {}
        for spec in PROJECTIONS.values():
            view = build_view(spec, datastore, dialect)
            for table in (*view.tables, view.tracking_table_name):
                with datastore.transaction(commit=False) as c:
                    c.execute(dialect.sql("SELECT * FROM {t}", t=table))
                    found = [tuple(dict(row).items()) for row in c.fetchall()]
                tables[table] = sorted(found, key=repr)
        return tables
    finally:
        datastore.close()


def run_more_paths(app: GrievanceApp, clock: FakeClock) -> Scenario:
    """The rest of the events: progress, extensions, urging, 吹哨/报到, re-dispatch,
    rejection and a close without an answer."""
    s = Scenario()
    enf = department(ENFORCEMENT)
    gid, (aid,) = _dispatched(app, "UM04")
    app.sign_for(aid, enf)
    app.report_progress(aid, enf, note="已联系物业")
    resolve_by = app.get_grievance(gid).assignments[aid].resolve_deadline
    assert resolve_by is not None
    app.request_extension(aid, enf, new_deadline=resolve_by + timedelta(hours=4), reason="需协调")
    app.decide_extension(gid, SUPERVISOR, assignment_id=aid, granted=True)
    app.request_extension(aid, enf, new_deadline=resolve_by + timedelta(hours=6), reason="再延")
    app.decide_extension(gid, SUPERVISOR, assignment_id=aid, granted=False, reason="不予延期")
    app.urge(gid, SUPERVISOR, kind="resolve", assignment_id=aid, reason="请抓紧")
    summoned = app.summon_departments(gid, SUPERVISOR, departments=[MARKET], reason="联合执法")
    (summons_aid,) = summoned.extra["assignments"]
    app.report_in(summons_aid, department(MARKET))
    app.resolve(aid, enf, account="联合处置完毕")
    clock.advance(days=10)
    app.close_grievance(gid, SUPERVISOR, outcome="no_response", reason="回访期满未接通")
    s.ids["closed_no_response"] = gid

    gid, (aid,) = _dispatched(app, "UM04")
    app.return_assignment(aid, enf, reason="非本单位职责")
    app.arbitrate_return(
        gid, SUPERVISOR, assignment_id=aid, decision="redispatch", department="hd.urban"
    )
    s.ids["redispatched"] = gid

    s.ids["rejected"] = make_grievance(app)
    app.reject_grievance(s.ids["rejected"], OPERATOR, reason="不属于受理范围")
    return s
