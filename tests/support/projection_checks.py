"""Checks shared by the SQLite (unit) and PostgreSQL (integration) projection tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import Tracking

from domain.application import GrievanceApp
from projections.db import parse_iso
from projections.queries import ReadModels
from projections.runner import Projector, catch_up, rebuild
from projections.views import ReadModelView
from tests.conftest import FakeClock
from tests.support.projections import (
    ENFORCEMENT,
    Scenario,
    dump_tables,
    run_more_paths,
    run_scenario,
)


class CrashAfter(Exception):
    """Stands for the process dying in the middle of a batch."""


def crash_view(view: ReadModelView) -> ReadModelView:
    """The same view whose process dies once it has written the rows of a batch (one
    that touched a grievance), before its tracking record."""

    class Crashing(type(view)):  # type: ignore[misc]
        def write(self, c: Any, changes: Any) -> None:
            super().write(c, changes)
            if changes:
                raise CrashAfter

    crashing = Crashing(datastore=view.datastore)
    crashing.tz = view.tz
    return crashing


def check_rows(env: dict[str, str], app: GrievanceApp, clock: FakeClock, s: Scenario) -> None:
    read = ReadModels.from_env(env)
    try:
        now = clock.now

        def summary(key: str) -> dict[str, Any]:
            item = read.get_summary(s[key], now=now)
            assert item is not None, key
            return item

        assert summary("closed")["status"] == "closed"
        assert summary("closed")["outcome"] == "satisfied"
        assert summary("closed")["deadlines"] == []
        reopened = summary("reopened")
        assert (reopened["status"], reopened["reopen_count"]) == ("in_progress", 1)
        assert reopened["last_feedback"]["satisfaction"] == "unsatisfied"
        assert reopened["lead_department"] == "hd.market"
        assert reopened["duplicates"] == 1
        merged = summary("merged")
        assert (merged["status"], merged["merged_into"]) == ("merged", str(s["reopened"]))
        assert merged["deadlines"] == []
        escalated = summary("escalated")
        assert escalated["escalation_level"] == 1 and escalated["overdue"]
        assert escalated["overdue_deadlines"][0]["kind"] == "sign_for"
        assert summary("returned")["status"] == "returned"
        assert summary("returned")["next_deadline"]["kind"] == "redispatch"
        assert summary("arbitrated")["status"] == "dispatched"
        assert summary("withdrawn")["status"] == "withdrawn"
        assert summary("received")["citizen_name"] == "王*"
        assert summary("received")["citizen_phone"] == "138****5678"

        everything = read.list_grievances(now=now, limit=200).items
        assert len(everything) == len(s.ids)
        overdue = read.list_grievances(now=now, overdue=True).items
        assert s["escalated"] in {x["id"] for x in overdue} or str(s["escalated"]) in {
            x["id"] for x in overdue
        }
        assert all(x["overdue"] for x in overdue)
        level1 = read.list_grievances(now=now, escalation_level=1).items
        assert [x["id"] for x in level1] == [str(s["escalated"])]
        market = read.list_grievances(now=now, department="hd.fire").items
        assert {x["id"] for x in market} == {str(s["reopened"])}

        closed_number = summary("closed")["number"]
        found = read.list_grievances(now=now, q=closed_number[-8:]).items
        assert [x["id"] for x in found] == [str(s["closed"])]
        assert read.list_grievances(now=now, q="%").items == []  # literal, not a wildcard
        assert len(read.list_grievances(now=now, q="石油大院").items) == len(s.ids)
        assert read.list_grievances(now=now, department="hd_fire").items == []
        statuses = read.list_grievances(now=now, status="returned").items
        assert [x["id"] for x in statuses] == [str(s["returned"])]
        assert read.list_grievances(now=now, street="qinghe").items == []
        first = summary("closed")["received_at"]
        later = read.list_grievances(now=now, received_from=parse_iso(first), limit=200).items
        earlier = read.list_grievances(now=now, received_to=parse_iso(first), limit=200).items
        assert len(later) + len(earlier) == len(s.ids) and earlier == []

        # Keyset pagination: pages of 3 give every grievance once, in order.
        seen: list[str] = []
        cursor = None
        while True:
            page = read.list_grievances(now=now, limit=3, cursor=cursor)
            seen += [x["id"] for x in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [x["id"] for x in everything]

        queue = read.list_assignments(department=ENFORCEMENT, now=now).items
        states = sorted(x["state"] for x in queue)
        # arbitrated (new), escalated: dispatched; returned: returned.
        assert states == ["dispatched", "dispatched", "returned"]
        assert [x["due"] is not None for x in queue].count(True) == 2
        old_lead = read.list_assignments(department="hd.market", state="superseded", now=now)
        assert [x["grievance_id"] for x in old_lead.items] == []  # resolved, not superseded
        market_open = read.list_assignments(department="hd.market", now=now).items
        assert [(x["round"], x["state"]) for x in market_open] == [(1, "signed_for")]

        callbacks = read.list_callbacks(now=now).items
        assert [c["grievance_id"] for c in callbacks] == [str(s["awaiting_callback"])]
        assert callbacks[0]["attempts"] == 1 and callbacks[0]["window_ends_at"]

        spots = {(h["category"], h["community"]): h["grievances"] for h in read.hotspots(now=now)}
        assert spots == {("UM04", "xyl-01"): 5, ("HS01", "xyl-01"): 2}

        kpis = {
            k["department"]: k
            for k in read.kpis(date_from=date(2026, 11, 1), date_to=date(2026, 12, 31))
        }
        enf = kpis[ENFORCEMENT]
        # Hand-counted from run_scenario: 5 enforcement dispatches + 1 by arbitration;
        # signed in time: closed and awaiting_callback; 2 returns; resolved 2, 1 late.
        assert (enf["dispatched"], enf["signed_for"], enf["signed_for_in_time"]) == (6, 2, 2)
        assert (enf["returned"], enf["resolved"], enf["resolved_in_time"]) == (2, 2, 1)
        assert (enf["overdue"], enf["escalated"]) == (1, 1)
        assert (enf["feedback_received"], enf["resolved_by_citizen"], enf["satisfied"]) == (1, 1, 1)
        assert enf["response_rate"] == round(2 / 6, 4)
        assert (enf["resolution_rate"], enf["satisfaction_rate"]) == (1.0, 1.0)
        market_k = kpis["hd.market"]
        assert (market_k["dispatched"], market_k["unsatisfied"]) == (2, 1)
        assert (market_k["resolution_rate"], market_k["satisfaction_rate"]) == (0.0, 0.0)

        status = read.status()
        assert set(status) == {
            "grievance_summary",
            "assignment_queue",
            "department_kpis",
            "hotspots",
            "callback_queue",
            "deadline_records",
            "intake_kpis",
            "knowledge_articles",
            "duplicate_candidates",
            "open311_requests",
            "ranking_counts",
            "round_results",
        }
        assert all(v["lag"] == 0 and v["position"] > 0 for v in status.values())
    finally:
        read.close()


def check_no_personal_data(tables: dict[str, list[tuple[object, ...]]]) -> None:
    text = repr(tables)
    for secret in ("13812345678", "13900001111", "张秀英", "李四", "王五"):
        assert secret not in text


def check_rebuild_equals_incremental(
    env: dict[str, str], app: GrievanceApp, clock: FakeClock
) -> None:
    """Projected step by step (small batches, interleaved with commands) == rebuilt."""
    from tests.conftest import OPERATOR, make_grievance

    gid = make_grievance(app)
    catch_up(env, batch_size=2)
    app.classify_grievance(gid, OPERATOR, category="UM04")
    catch_up(env, batch_size=1)
    run_scenario(app, clock)
    catch_up(env, batch_size=7)
    run_more_paths(app, clock)
    catch_up(env, batch_size=3)
    incremental = dump_tables(env)
    read = ReadModels.from_env(env)
    try:
        urban = read.list_assignments(department="hd.urban", now=clock.now).items
        assert [a["state"] for a in urban] == ["dispatched"]
        spots = {(h["category"], h["grievances"]) for h in read.hotspots(now=clock.now)}
        assert ("UM04", 8) in spots  # 1 classified first + 5 of the scenario + 2 more paths
    finally:
        read.close()
    assert rebuild(env) > 0
    assert dump_tables(env) == incremental
    assert rebuild(env, ["hotspots"]) > 0
    assert dump_tables(env) == incremental
    # Split between this process and another one, each folding the log for its views.
    assert rebuild(env, workers=2) == rebuild(env)
    assert dump_tables(env) == incremental


def check_crash_mid_batch(env: dict[str, str], app: GrievanceApp, clock: FakeClock) -> None:
    """A projector dying inside a batch leaves its tables as before; a restart completes them."""
    run_scenario(app, clock)
    catch_up(env)
    expected = dump_tables(env)
    rebuild_names = ["grievance_summary", "department_kpis"]
    with Projector(env, rebuild_names, batch_size=5) as projector:
        for view in projector.views.values():
            view.clear()
        projector.run_once(upto=20)  # some batches done...
        half = dump_tables(env)
        assert half != expected
        # ...then a batch that dies after writing its rows, before its tracking record.
        healthy = dict(projector.views)
        for name in rebuild_names:
            projector.views[name] = crash_view(projector.views[name])
        try:
            projector.run_once()
        except CrashAfter:
            pass
        else:
            raise AssertionError("the crashing view did not crash")
        assert dump_tables(env) == half
        # The same process carries on: the grievances it had folded past the failed
        # batch are folded again from the event store, not taken as they were left.
        projector.views.update(healthy)
        projector.run_once()
        assert projector.states.reloaded > 0
        assert dump_tables(env) == expected
    # A new process (nothing in memory) after the same crash completes them too.
    with Projector(env, rebuild_names, batch_size=5) as projector:
        for view in projector.views.values():
            view.clear()
        projector.run_once(upto=20)
    catch_up(env, batch_size=4)
    assert dump_tables(env) == expected


def check_single_event_projection(env: dict[str, str], app: GrievanceApp) -> None:
    """eventsourcing's Projection API: process_event writes the row and the tracking."""
    from projections.db import open_datastore
    from projections.registry import PROJECTIONS
    from projections.runner import build_view
    from tests.conftest import make_grievance

    make_grievance(app)
    notification = app.recorder.select_notifications(start=1, limit=1)[0]
    event = app.mapper.to_domain_event(notification)
    spec = PROJECTIONS["grievance_summary"]
    datastore, dialect = open_datastore(env)
    try:
        projection = spec.projection_class(view=build_view(spec, datastore, dialect))
        projection.process_event(event, Tracking("Grievances", notification.id))
        assert projection.view.position() == notification.id
    finally:
        datastore.close()
    read = ReadModels.from_env(env)
    try:
        assert read.get_summary(event.originator_id) is not None
    finally:
        read.close()


def check_two_projectors_race(env: dict[str, str], app: GrievanceApp, clock: FakeClock) -> None:
    """Two projectors on the same views at once: every event is still applied once."""
    import threading

    run_scenario(app, clock)
    run_scenario(app, clock)
    errors: list[BaseException] = []
    projectors = [Projector(env, batch_size=size) for size in (3, 5)]
    barrier = threading.Barrier(len(projectors))

    def work(projector: Projector) -> None:
        try:
            barrier.wait()
            projector.run_once()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(p,)) for p in projectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for projector in projectors:
        projector.close()
    assert errors == []
    raced = dump_tables(env)
    rebuild(env)
    assert dump_tables(env) == raced


def check_follow_survives_a_failure(
    env: dict[str, str], app: GrievanceApp, clock: FakeClock
) -> None:
    """The long-running mode: a failing batch is retried, new events are followed, stop works."""
    import threading
    import time

    from tests.conftest import make_grievance

    run_scenario(app, clock)
    with Projector(env, batch_size=10) as projector:
        name = "callback_queue"
        original = projector.views[name]

        class FailsOnce(type(original)):  # type: ignore[misc]
            failed = False

            def write(self, c: Any, changes: Any) -> None:
                if not FailsOnce.failed:
                    FailsOnce.failed = True
                    raise ConnectionError("database restarting")
                super().write(c, changes)

        flaky = FailsOnce(datastore=original.datastore)
        flaky.tz = original.tz
        projector.views[name] = flaky
        stop = threading.Event()
        thread = threading.Thread(target=projector.run_forever, args=(stop, 0.01))
        thread.start()
        try:
            make_grievance(app)  # written while the projector runs
            target = int(app.recorder.max_notification_id() or 0)
            deadline = time.monotonic() + 30
            while set(projector.positions().values()) != {target}:
                assert time.monotonic() < deadline, projector.positions()
                assert thread.is_alive()
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not thread.is_alive()
        assert FailsOnce.failed
    followed = dump_tables(env)
    rebuild(env)
    assert dump_tables(env) == followed
