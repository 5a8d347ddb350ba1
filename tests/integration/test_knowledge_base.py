"""Request types, answers at intake and the knowledge base, on SQLite and PostgreSQL.

The domain (articles with revisions, approval, retirement; an answer that quotes exact
revisions and closes the grievance undispatched), the search read model (FTS5 trigram on
SQLite, pg_trgm on PostgreSQL, ranked) and 直办率 in the intake KPI read model.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from domain import commands as c
from domain.application import GrievanceApp
from domain.errors import (
    ArticleNotFoundError,
    ArticleStateError,
    IllegalTransitionError,
    PermissionDeniedError,
    StaleVersionError,
    ValidationError,
)
from domain.knowledge import ArticleResult
from domain.model import ArticleStatus, Outcome, Status
from projections.db import open_datastore
from projections.queries import ReadModels
from projections.runner import catch_up, rebuild
from tests.conftest import OPERATOR, SUPERVISOR, FakeClock, make_grievance

LIFT = (
    "住宅电梯维修费用由谁承担",
    "住宅电梯的维修、更新费用由业主共同承担，可申请使用住宅专项维修资金。",
)
WATER = ("计划停水通知查询", "小区计划停水的时间和范围以自来水公司公告为准，可拨打供水热线查询。")
HEATING = ("供暖期和室温标准", "本市供暖期为每年11月15日至次年3月15日，住宅室温不低于18摄氏度。")


def write(
    app: GrievanceApp,
    title: str,
    body: str,
    keywords: list[str] | None = None,
    *,
    approve: bool = True,
) -> UUID:
    result = app.handle_article(
        c.CreateArticle(actor=OPERATOR, title=title, body=body, keywords=keywords)
    )
    if approve:
        app.handle_article(c.ApproveArticle(actor=SUPERVISOR, article_id=result.article_id))
    return result.article_id


def answer(app: GrievanceApp, gid: UUID, *refs: c.ArticleRef, text: str = "已答复") -> None:
    app.answer_at_intake(gid, OPERATOR, answer=text, articles=list(refs))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The read models need a durable store: conftest's ``app`` and ``store_env`` on these."""
    return str(request.param)


@pytest.fixture
def read_models(store_env: dict[str, str], app: GrievanceApp) -> Iterator[ReadModels]:
    models = ReadModels.from_env(store_env)
    yield models
    models.close()


# ------------------------------------------------------------------ the domain


def test_an_article_is_written_approved_revised_and_retired(app: GrievanceApp) -> None:
    created = app.handle_article(
        c.CreateArticle(actor=OPERATOR, title=LIFT[0], body=LIFT[1], keywords=["电梯", "电梯"])
    )
    assert (created.status, created.revision, created.published_revision) == ("draft", 1, None)
    aid = created.article_id
    approved = app.handle_article(c.ApproveArticle(actor=SUPERVISOR, article_id=aid))
    assert (approved.status, approved.published_revision) == ("published", 1)

    revised = app.handle_article(
        c.ReviseArticle(actor=OPERATOR, article_id=aid, title=LIFT[0], body="新的答复口径。")
    )
    article = app.get_article(aid)
    # The revision waits; the approved one stays in force until a supervisor approves it.
    assert (revised.revision, article.published_revision, article.waiting_revision) == (2, 1, 2)
    assert article.revisions[0].keywords == ["电梯"]  # each keyword once
    app.handle_article(c.ApproveArticle(actor=SUPERVISOR, article_id=aid, revision=2))
    with pytest.raises(ArticleStateError) as refused:
        app.handle_article(c.ApproveArticle(actor=SUPERVISOR, article_id=aid))
    assert refused.value.reason == "nothing-to-approve"

    retired = app.handle_article(c.RetireArticle(actor=SUPERVISOR, article_id=aid, reason="废止"))
    assert retired.status == ArticleStatus.RETIRED.value
    with pytest.raises(ArticleStateError) as refused:
        app.handle_article(c.ReviseArticle(actor=OPERATOR, article_id=aid, title="x", body="y"))
    assert (refused.value.status, refused.value.allowed) == ("retired", [])
    # Every revision stays readable, with who approved it and when.
    article = app.get_article(aid)
    assert [r.body for r in article.revisions] == [LIFT[1], "新的答复口径。"]
    assert all(r.approved_by == SUPERVISOR.principal for r in article.revisions)
    assert app.get_article(aid, version=1).revisions[0].approved_at is None


def test_who_may_write_approve_and_retire(app: GrievanceApp) -> None:
    aid = write(app, *LIFT, approve=False)
    with pytest.raises(PermissionDeniedError):
        app.handle_article(c.ApproveArticle(actor=OPERATOR, article_id=aid))
    with pytest.raises(PermissionDeniedError):
        app.handle_article(c.RetireArticle(actor=OPERATOR, article_id=aid))
    supervisor_wrote = app.handle_article(
        c.ReviseArticle(actor=SUPERVISOR, article_id=aid, title="t", body="b")
    )
    assert supervisor_wrote.revision == 2
    with pytest.raises(ArticleNotFoundError):
        app.get_article(UUID(int=7))


def test_a_repeated_command_id_records_nothing_again(app: GrievanceApp) -> None:
    command = c.CreateArticle(actor=OPERATOR, command_id="kb-1", title=LIFT[0], body=LIFT[1])
    first = app.handle_article(command)
    again = app.handle_article(command)
    assert (again.article_id, again.version, again.replayed) == (first.article_id, 1, True)
    approve = c.ApproveArticle(actor=SUPERVISOR, article_id=first.article_id, command_id="kb-2")
    app.handle_article(approve)
    replayed: ArticleResult = app.handle_article(approve)
    assert (replayed.version, replayed.replayed) == (2, True)
    assert app.get_article(first.article_id).version == 2
    with pytest.raises(StaleVersionError):
        app.handle_article(
            c.RetireArticle(actor=SUPERVISOR, article_id=first.article_id, expected_version=1)
        )


def test_an_answer_at_intake_quotes_exact_revisions_and_closes_undispatched(
    app: GrievanceApp,
) -> None:
    lift = write(app, *LIFT)
    app.handle_article(
        c.ReviseArticle(actor=OPERATOR, article_id=lift, title=LIFT[0], body="待审核的新口径")
    )
    gid = make_grievance(app, request_type="consultation")
    assert app.get_grievance(gid).request_type == "consultation"
    answer(app, gid, c.ArticleRef(article_id=lift), text="可申请使用住宅专项维修资金。")

    g = app.get_grievance(gid)
    assert (g.status, g.outcome, g.assignments) == (Status.CLOSED, Outcome.ANSWERED_AT_INTAKE, {})
    assert g.intake_answer is not None
    # The revision in force when it was quoted (1), not the one waiting for approval (2).
    assert g.intake_answer.articles == [{"article_id": str(lift), "revision": 1, "title": LIFT[0]}]
    kinds = [type(e).__name__ for e in app.history(gid)]
    assert kinds == ["Received", "AnsweredAtIntake", "Closed"]
    assert app.verify_grievance(gid) is None  # the hash chain covers the answer


def test_what_an_answer_may_not_quote(app: GrievanceApp) -> None:
    draft = write(app, *WATER, approve=False)
    retired = write(app, *HEATING)
    app.handle_article(c.RetireArticle(actor=SUPERVISOR, article_id=retired))
    lift = write(app, *LIFT)
    gid = make_grievance(app)
    for ref in (
        c.ArticleRef(article_id=draft),  # never approved
        c.ArticleRef(article_id=retired),  # retired
        c.ArticleRef(article_id=lift, revision=2),  # no such revision
        c.ArticleRef(article_id=UUID(int=5)),  # no such article
    ):
        with pytest.raises(ValidationError) as refused:
            answer(app, gid, ref)
        assert (refused.value.code, refused.value.field) == ("article-not-quotable", "articles")
    with pytest.raises(ValidationError):
        answer(app, gid, text="  ")
    assert app.get_grievance(gid).version == 1  # nothing recorded
    # Dispatched work is not answered on the phone.
    app.classify_grievance(gid, OPERATOR, category="UM04")
    app.dispatch_grievance(gid, OPERATOR)
    with pytest.raises(IllegalTransitionError) as refused:
        answer(app, gid, c.ArticleRef(article_id=lift))
    assert refused.value.status == "dispatched"


def test_an_unknown_request_type_is_refused(app: GrievanceApp) -> None:
    with pytest.raises(ValidationError) as refused:
        make_grievance(app, request_type="gossip")
    assert refused.value.field == "request_type"


def test_callback_policy_leaves_it_resolved_for_the_callback(
    store_env: dict[str, str], clock: FakeClock
) -> None:
    from dataclasses import replace

    from domain.policies import load_policies

    policies = load_policies()
    sla = replace(
        policies.sla, profile=replace(policies.sla.profile, answered_at_intake_callback=True)
    )
    app = GrievanceApp(store_env, clock=clock, policies=replace(policies, sla=sla))
    try:
        gid = make_grievance(app, request_type="help")
        answer(app, gid, text="已告知办理渠道。")
        g = app.get_grievance(gid)
        assert g.status is Status.RESOLVED
        assert g.feedback_deadline == sla.feedback_deadline(clock.now)
        assert [d.kind.value for d in g.open_deadlines()] == ["feedback"]
        app.record_feedback(gid, OPERATOR, contacted=True, resolved=True, satisfaction="satisfied")
        assert app.get_grievance(gid).outcome is Outcome.SATISFIED

        # Not settled after all: a classified one goes where the routing rules send it
        # (重办); an unclassified one cannot be reopened to anyone.
        routed = make_grievance(app, request_type="consultation")
        app.classify_grievance(routed, OPERATOR, category="UM04")
        answer(app, routed)
        app.record_feedback(
            routed, OPERATOR, contacted=True, resolved=False, satisfaction="unsatisfied"
        )
        g = app.get_grievance(routed)
        assert (g.status, g.reopen_count, g.lead_department) == (
            Status.DISPATCHED,
            1,
            "hd.enforcement",
        )
        unclassified = make_grievance(app)
        answer(app, unclassified)
        with pytest.raises(ValidationError) as refused:
            app.record_feedback(
                unclassified, OPERATOR, contacted=True, resolved=False, satisfaction="unsatisfied"
            )
        assert refused.value.code == "reopen-needs-lead"
    finally:
        app.close()


# ------------------------------------------------------------ the read models


def test_search_in_chinese_ranks_by_relevance(
    store_env: dict[str, str], app: GrievanceApp, read_models: ReadModels
) -> None:
    lift = write(app, *LIFT, keywords=["电梯", "维修资金"])
    water = write(app, *WATER, keywords=["停水"])
    heating = write(app, *HEATING, keywords=["供暖", "暖气"])
    write(app, "电梯年检草稿", "电梯维修草稿，尚未审核。", approve=False)
    catch_up(store_env)

    def ids(q: str) -> list[UUID]:
        return [UUID(hit["id"]) for hit in read_models.search_articles(q=q)]

    assert ids("电梯维修费用") == [lift]
    assert ids("停水") == [water]  # a two-character word: no trigram, found as typed
    assert ids("暖气 室温") == [heating]
    assert ids("火星移民") == []
    assert ids("！？") == []
    # More of the query's words found: ranked higher (the body mentions 维修 too).
    both = write(app, "电梯停运与停水", "电梯停运时请联系物业；停水请查询供水公告。")
    catch_up(store_env)
    assert ids("电梯 停水")[0] == both
    assert set(ids("电梯 停水")) == {both, lift, water}
    hit = read_models.search_articles(q="专项维修资金")[0]
    assert (hit["id"], hit["revision"], hit["keywords"]) == (str(lift), 1, ["电梯", "维修资金"])
    assert "专项维修资金" in hit["snippet"] and hit["score"] > 0

    # A waiting revision is not searched until approved; then it replaces the old text.
    app.handle_article(
        c.ReviseArticle(
            actor=OPERATOR, article_id=water, title="停水停电通知", body="停电查询供电公司。"
        )
    )
    catch_up(store_env)
    assert ids("停电") == []
    app.handle_article(c.ApproveArticle(actor=SUPERVISOR, article_id=water))
    catch_up(store_env)
    assert ids("停电") == [water]
    assert read_models.search_articles(q="停电")[0]["revision"] == 2
    # Retired: gone from the search.
    app.handle_article(c.RetireArticle(actor=SUPERVISOR, article_id=heating))
    catch_up(store_env)
    assert ids("暖气") == []
    # A rebuild from the log gives the same answers.
    before = read_models.search_articles(q="电梯 停水 停电")
    rebuild(store_env, ["knowledge_articles"])
    assert read_models.search_articles(q="电梯 停水 停电") == before


def test_direct_answer_rate_in_the_intake_kpis(
    store_env: dict[str, str], app: GrievanceApp, clock: FakeClock, read_models: ReadModels
) -> None:
    lift = write(app, *LIFT)
    for _ in range(3):
        gid = make_grievance(app, request_type="consultation")
        answer(app, gid, c.ArticleRef(article_id=lift))
    make_grievance(app, request_type="consultation")
    make_grievance(app, request_type="complaint")
    make_grievance(app)  # no request type given
    clock.advance(days=3)
    make_grievance(app, request_type="consultation")  # outside the period asked below
    assert catch_up(store_env) > 0

    day = (clock.now - timedelta(days=3)).astimezone(app.policies.calendar.tz).date()
    kpis = read_models.intake_kpis(date_from=day, date_to=day)
    assert (kpis["received"], kpis["answered_at_intake"], kpis["direct_answer_rate"]) == (
        6,
        3,
        0.5,
    )
    by_type = {row["request_type"]: row for row in kpis["by_request_type"]}
    assert by_type["consultation"]["direct_answer_rate"] == 0.75
    assert by_type["complaint"]["direct_answer_rate"] == 0.0
    assert by_type[None]["received"] == 1
    empty = read_models.intake_kpis(
        date_from=day - timedelta(days=9), date_to=day - timedelta(days=8)
    )
    assert (empty["received"], empty["direct_answer_rate"]) == (0, None)
    # Rebuilt from the log: the same figures.
    rebuild(store_env, ["intake_kpis"])
    assert read_models.intake_kpis(date_from=day, date_to=day) == kpis


def test_the_knowledge_view_shares_the_log_with_the_grievance_views(
    store_env: dict[str, str], app: GrievanceApp
) -> None:
    """Article events move every view's position; grievance views ignore them."""
    write(app, *LIFT)
    make_grievance(app)
    catch_up(store_env)
    datastore, dialect = open_datastore(store_env)
    try:
        newest = int(app.recorder.max_notification_id() or 0)
        models = ReadModels(datastore, dialect)
        positions = {name: s["position"] for name, s in models.status().items()}
        assert set(positions.values()) == {newest}, positions
    finally:
        datastore.close()


def test_grievances_stored_before_request_types_load_verify_and_project(
    store_env: dict[str, str], app: GrievanceApp, read_models: ReadModels
) -> None:
    """Rows an earlier closeloop wrote (no request_type in Received): the hash chain holds
    as stored, the type reads as not given, and the intake read model counts them so."""
    from tests.support.domain import load_stored_events

    stored = Path(__file__).parents[1] / "unit" / "data" / "stored_events_v1.json"
    data = load_stored_events(app, stored)
    assert app.verify_all() == (len(data["expected"]), [])
    for gid in data["expected"]:
        g = app.get_grievance(UUID(gid))
        assert (g.request_type, g.intake_answer) == (None, None)
    catch_up(store_env)
    rows = read_models.intake_kpis(date_from=date(2000, 1, 1), date_to=date(2100, 1, 1))
    assert [r["request_type"] for r in rows["by_request_type"]] == [None]
    assert rows["received"] == len(data["expected"])
