"""The knowledge base (知识库) and answers at intake (直接答复).

An ``Article`` is its own aggregate in the grievance event store: the dispatch centre
writes it (``Drafted``, then ``Revised``: each revision is numbered 1, 2, …), a
supervisor approves a waiting revision (``Approved``: that revision is now the one in
force) or retires the article (``Retired``). Every revision stays in the events, so an
answer always names the exact revision it quoted (``ArticleRef``).

``answer_at_intake`` is bound as a ``Grievance`` method: an operator settles the request
on the call, quoting approved revisions; the grievance is closed without dispatch, or,
where the SLA profile wants a 回访 after such answers, left resolved with the feedback
window open.

The status rules are ``domain.rules.ARTICLE_STATUS_ACTIONS`` and ``ACTION_ROLES``; the
application binds ``handle_article`` and ``get_article`` (``domain.application``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from domain import commands as c
from domain.errors import (
    ArticleNotFoundError,
    ArticleStateError,
    StaleVersionError,
    ValidationError,
)
from domain.guards import check_role
from domain.model import Action, Actor, ArticleStatus, Outcome, Stamp, clean_text
from domain.rules import ARTICLE_STATUS_ACTIONS

if TYPE_CHECKING:  # pragma: no cover
    from domain.application import GrievanceApp
    from domain.grievance import Grievance

MAX_TITLE = 200
MAX_BODY = 8000
MAX_KEYWORDS = 20
MAX_KEYWORD = 30
MAX_ANSWER = 4000
MAX_QUOTED = 10

_ARTICLE_IDS = uuid5(NAMESPACE_URL, "https://closeloop.invalid/knowledge-articles")


def article_id_for(command_id: str) -> UUID:
    """The new article's id, fixed by the creating command's id (a repeat finds it)."""
    return uuid5(_ARTICLE_IDS, command_id)


@dataclass(frozen=True)
class ArticleResult:
    """What an article command answers (again, for a repeated command id)."""

    article_id: UUID
    version: int  # the aggregate's version (If-Match / ETag)
    status: str
    revision: int  # the newest revision
    published_revision: int | None
    replayed: bool = False


@dataclass
class Revision:
    revision: int
    title: str
    body: str
    keywords: list[str]
    category: str | None
    principal: str
    at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None


class Article(Aggregate):
    """知识库 article: numbered revisions; the approved one is in force until retired."""

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return article_id_for(command_id)

    class Recorded(Aggregate.Event):
        """Every article event after ``Drafted``: who, when and which command;
        ``change`` is its effect."""

        principal: str
        role: str
        at: datetime
        command_id: str

        def apply(self, aggregate: Any) -> None:
            self.change(aggregate)
            aggregate.applied_commands[self.command_id] = self.originator_version

        def change(self, article: Article) -> None:
            pass

    class Revised(Recorded):
        content: dict[str, Any]  # title, body, keywords, category

        def change(self, article: Article) -> None:
            article._add(self.content, self.principal, self.at)

    class Approved(Recorded):
        revision: int

        def change(self, article: Article) -> None:
            approved = article.revisions[self.revision - 1]
            approved.approved_by, approved.approved_at = self.principal, self.at
            article.published_revision = self.revision
            article.status = ArticleStatus.PUBLISHED

    class Retired(Recorded):
        reason: str | None

        def change(self, article: Article) -> None:
            article.status = ArticleStatus.RETIRED
            article.retired_at = self.at
            article.retired_reason = self.reason

    class Drafted(Aggregate.Created):
        """The first revision (the created event)."""

        content: dict[str, Any]  # title, body, keywords, category
        principal: str
        role: str
        at: datetime
        command_id: str

    @event(Drafted)
    def __init__(
        self, content: dict[str, Any], principal: str, role: str, at: datetime, command_id: str
    ) -> None:
        self.status = ArticleStatus.DRAFT
        self.revisions: list[Revision] = []
        self.published_revision: int | None = None
        self.retired_at: datetime | None = None
        self.retired_reason: str | None = None
        self.applied_commands: dict[str, int] = {command_id: 1}
        self._add(content, principal, at)

    def _add(self, content: dict[str, Any], principal: str, at: datetime) -> None:
        number = len(self.revisions) + 1
        self.revisions.append(Revision(number, **content, principal=principal, at=at))

    # ------------------------------------------------------------------ queries

    @property
    def revision(self) -> int:
        return len(self.revisions)

    @property
    def waiting_revision(self) -> int | None:
        """The newest revision when it is not approved yet (it waits for a supervisor)."""
        newest = self.revisions[-1]
        return None if newest.approved_at is not None else newest.revision

    def get_revision(self, number: int) -> Revision | None:
        return self.revisions[number - 1] if 1 <= number <= len(self.revisions) else None

    def quotable(self, number: int) -> bool:
        """A revision an answer may quote: approved, of an article not retired."""
        found = self.get_revision(number)
        return (
            self.status is not ArticleStatus.RETIRED
            and found is not None
            and found.approved_at is not None
        )

    # ------------------------------------------------------------------ commands

    def ensure_allowed(self, action: Action, actor: Actor) -> None:
        check_role(action, actor)
        allowed = ARTICLE_STATUS_ACTIONS[self.status]
        if action not in allowed:
            raise ArticleStateError(action, self.status, allowed, "article-retired")

    def revise(self, stamp: Stamp, content: dict[str, Any]) -> None:
        self.ensure_allowed(Action.WRITE_ARTICLE, stamp.actor)
        self.trigger_event(self.Revised, content=content, **stamp.fields())

    def approve(self, stamp: Stamp, revision: int | None) -> None:
        self.ensure_allowed(Action.APPROVE_ARTICLE, stamp.actor)
        waiting = self.waiting_revision
        if waiting is None or (revision is not None and revision != waiting):
            allowed = ARTICLE_STATUS_ACTIONS[self.status] - {Action.APPROVE_ARTICLE}
            raise ArticleStateError(
                Action.APPROVE_ARTICLE,
                self.status,
                allowed,
                "nothing-to-approve",
                revision=revision,
                waiting=waiting,
            )
        self.trigger_event(self.Approved, revision=waiting, **stamp.fields())

    def retire(self, stamp: Stamp, reason: str | None) -> None:
        self.ensure_allowed(Action.RETIRE_ARTICLE, stamp.actor)
        self.trigger_event(self.Retired, reason=reason, **stamp.fields())

    # ---------------------------------------------------------------------- view

    def public(self) -> dict[str, Any]:
        """Plain data: the article, its revision in force and every revision."""
        return {
            "id": self.id,
            "version": self.version,
            "status": self.status.value,
            "revision": self.revision,
            "published_revision": self.published_revision,
            "waiting_revision": self.waiting_revision,
            "retired_at": self.retired_at,
            "retired_reason": self.retired_reason,
            "revisions": [vars(r).copy() for r in self.revisions],
        }


# ----------------------------------------------------------------- the pipeline


def _content(app: GrievanceApp, cmd: c.ArticleContent) -> dict[str, Any]:
    """A revision's content, cleaned; its category (optional) must be a leaf."""
    if cmd.category is not None:
        app.policies.categories.leaf(cmd.category)
    keywords = [clean_text(k, "keywords", max_len=MAX_KEYWORD) for k in (cmd.keywords or [])]
    if len(keywords) > MAX_KEYWORDS:
        raise ValidationError(
            "out-of-range", field="keywords", value=len(keywords), max=MAX_KEYWORDS
        )
    return {
        "title": clean_text(cmd.title, "title", max_len=MAX_TITLE),
        "body": clean_text(cmd.body, "body", max_len=MAX_BODY),
        "keywords": list(dict.fromkeys(keywords)),
        "category": cmd.category,
    }


def get_article(app: GrievanceApp, article_id: UUID, version: int | None = None) -> Article:
    try:
        article: Any = app.repository.get(article_id, version=version)
    except AggregateNotFoundError:
        raise ArticleNotFoundError(article_id=str(article_id)) from None
    if not isinstance(article, Article):
        raise ArticleNotFoundError(article_id=str(article_id))
    return article


def _result(article: Article, version: int | None = None, replayed: bool = False) -> ArticleResult:
    return ArticleResult(
        article_id=article.id,
        version=article.version if version is None else version,
        status=article.status.value,
        revision=article.revision,
        published_revision=article.published_revision,
        replayed=replayed,
    )


def handle_article(app: GrievanceApp, command: c.ArticleCommand) -> ArticleResult:
    """The article pipeline: check, load, repeated command id, expected version, decide,
    save (the same steps as ``GrievanceApp.handle``)."""
    stamp = app.stamp(command)
    command_id = stamp.command_id
    if isinstance(command, c.CreateArticle):
        check_role(Action.WRITE_ARTICLE, command.actor)
        content = _content(app, command)
        article = Article(content, **stamp.fields())
        return _save_new(app, article, command_id)
    assert command.article_id is not None
    article = get_article(app, command.article_id)
    applied = article.applied_commands.get(command_id)
    if applied is not None:
        return _result(article, applied, replayed=True)
    if command.expected_version is not None and article.version != command.expected_version:
        raise StaleVersionError(version=article.version, expected=command.expected_version)
    if isinstance(command, c.ReviseArticle):
        content = _content(app, command)
        article.revise(stamp, content)
    elif isinstance(command, c.ApproveArticle):
        article.approve(stamp, command.revision)
    elif isinstance(command, c.RetireArticle):
        reason = clean_text(command.reason, "reason", max_len=500, required=False) or None
        article.retire(stamp, reason)
    app._save(article)
    return _result(article)


def _save_new(app: GrievanceApp, article: Article, command_id: str) -> ArticleResult:
    try:
        app.save(article)
    except IntegrityError:
        # The same command saved before (or concurrently): answer what it recorded.
        stored = get_article(app, article.id)
        return _result(stored, stored.applied_commands.get(command_id), replayed=True)
    return _result(article)


# ------------------------------------------------------------ answers at intake


@dataclass(frozen=True)
class Quoted:
    """One article revision an answer quoted (stored in the event as plain data)."""

    article_id: str
    revision: int
    title: str

    def as_dict(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "revision": self.revision, "title": self.title}


def quoted_revisions(app: GrievanceApp, refs: list[c.ArticleRef]) -> list[Quoted]:
    """The revisions an answer quotes: each approved, of an article not retired; a
    reference without a revision quotes the one in force."""
    if len(refs) > MAX_QUOTED:
        raise ValidationError("out-of-range", field="articles", value=len(refs), max=MAX_QUOTED)
    quoted: list[Quoted] = []
    for ref in refs:
        try:
            article = get_article(app, ref.article_id)
        except ArticleNotFoundError:
            raise ValidationError(
                "article-not-quotable", field="articles", article_id=str(ref.article_id)
            ) from None
        number = ref.revision if ref.revision is not None else article.published_revision
        if number is None or not article.quotable(number):
            raise ValidationError(
                "article-not-quotable",
                field="articles",
                article_id=str(ref.article_id),
                revision=number,
            )
        revision = article.get_revision(number)
        assert revision is not None
        quoted.append(Quoted(str(article.id), number, revision.title))
    return list({(q.article_id, q.revision): q for q in quoted}.values())


def answer_at_intake(
    g: Grievance,
    stamp: Stamp,
    answer: str,
    quoted: list[Quoted],
    feedback_deadline: datetime | None,
) -> None:
    """直接答复: settled on the call. Closed at once, or (``feedback_deadline``: the policy
    wants a 回访 after such answers) resolved with the 回访 window open."""
    g.ensure_allowed(Action.ANSWER_AT_INTAKE, stamp.actor)
    if not answer:
        raise ValidationError("required", field="answer")
    meta = g._meta(stamp)
    g.trigger_event(
        g.AnsweredAtIntake,
        answer=answer,
        articles=[q.as_dict() for q in quoted],
        feedback_deadline=feedback_deadline,
        **meta,
    )
    if feedback_deadline is None:
        g.trigger_event(g.Closed, outcome=Outcome.ANSWERED_AT_INTAKE.value, **meta)


@dataclass
class IntakeAnswer:
    """What the grievance keeps of its answer at intake."""

    at: datetime
    principal: str
    answer: str
    articles: list[dict[str, Any]] = field(default_factory=list)
