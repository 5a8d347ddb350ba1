"""The knowledge base (知识库): operators write and search articles, supervisors approve
and retire them. Articles live in the event store (``domain.knowledge``); the search
reads the ``knowledge_articles`` read model."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from api import schemas
from api.deps import AppDep, Read, ReadModelsDep, guarded
from api.routers import common
from api.routers.common import CommandRoute, Writer
from domain import commands as c
from domain.model import Action, ArticleStatus

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge base"])
A = "/articles/{article_id}"
KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


def send(
    write: Writer, kind: type[c.ArticleCommand], body: BaseModel | None, **fields: Any
) -> schemas.ArticleAccepted:
    """One article command through the domain's article pipeline, answered with its ETag."""
    command = kind(
        actor=write.who.actor,
        command_id=write.opts.command_id,
        expected_version=write.opts.expected_version,
        **common.fields_of(body),
        **fields,
    )
    result = write.app.handle_article(command)
    common.set_version(write.response, result.version)
    return schemas.ArticleAccepted.model_validate({"id": result.article_id, **asdict(result)})


def _endpoint(route: CommandRoute) -> Callable[..., schemas.ArticleAccepted]:
    """``POST /articles`` creates (201, ``Location``); ``POST /articles/{id}/…`` changes."""
    creates = "{article_id}" not in route.path
    kind = route.command
    assert issubclass(kind, c.ArticleCommand)

    def endpoint(
        write: Writer, body: BaseModel | None = None, article_id: UUID | None = None
    ) -> schemas.ArticleAccepted:
        if creates:
            answer = send(write, kind, body)
            write.response.headers["Location"] = f"/v1/knowledge/articles/{answer.id}"
            return answer
        return send(write, kind, body, article_id=article_id)

    target = [] if creates else [inspect.Parameter("article_id", KEYWORD_ONLY, annotation=UUID)]
    return common.signed(endpoint, route, target, schemas.ArticleAccepted)


for route in (
    CommandRoute(
        "/articles",
        Action.WRITE_ARTICLE,
        c.CreateArticle,
        schemas.ArticleWrite,
        "A new article: its first revision, waiting for a supervisor's approval.",
        name="create_article",
    ),
    CommandRoute(
        f"{A}/revise",
        Action.WRITE_ARTICLE,
        c.ReviseArticle,
        schemas.ArticleWrite,
        "A new revision; the approved one stays in force until this one is approved.",
        name="revise_article",
    ),
    CommandRoute(
        f"{A}/approve",
        Action.APPROVE_ARTICLE,
        c.ApproveArticle,
        schemas.ArticleApprove,
        "Approve the waiting revision: it is now the one answers quote.",
        optional=True,
        name="approve_article",
    ),
    CommandRoute(
        f"{A}/retire",
        Action.RETIRE_ARTICLE,
        c.RetireArticle,
        schemas.ArticleRetire,
        "Retire the article: no longer searched, nor quoted by new answers.",
        optional=True,
        name="retire_article",
    ),
):
    created = "{article_id}" not in route.path
    router.post(
        route.path,
        name=route.name,
        summary=route.summary,
        status_code=201 if created else 200,
        response_model=schemas.ArticleAccepted,
        responses=common.problems(401, 403, 409, 413, 422) if created else common.WRITE_PROBLEMS,
        **guarded(route.action),
    )(_endpoint(route))


@router.get(
    A,
    response_model=schemas.ArticlePublic,
    responses=common.problems(401, 403, 404, 422),
    **guarded(Read.KNOWLEDGE),
)
def get_article(
    article_id: UUID,
    app: AppDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, description="as of this version")] = None,
) -> schemas.ArticlePublic:
    """One article from its events: every revision, the one in force, the one waiting."""
    article = app.get_article(article_id, version)
    common.set_version(response, article.version)
    return schemas.ArticlePublic.model_validate(article.public())


# The reads: operators and supervisors (READ_ROLES[Read.KNOWLEDGE]).
READS = {"responses": common.READ_PROBLEMS, **guarded(Read.KNOWLEDGE)}


@router.get("/articles", response_model=schemas.ArticlesPage, **READS)
def list_articles(
    read_models: ReadModelsDep,
    status: Annotated[ArticleStatus | None, Query(description="draft, published, retired")] = None,
    waiting: Annotated[bool | None, Query(description="a revision waits for approval")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.ArticlesPage:
    """Articles, newest change first: ``?waiting=true`` lists what supervisors have to approve."""
    found = common.read_model_call(
        read_models.list_articles,
        status=status.value if status else None,
        waiting=waiting,
        limit=limit,
    )
    return schemas.ArticlesPage(items=[schemas.ArticleSummary.model_validate(a) for a in found])


@router.get("/search", response_model=schemas.ArticleHits, **READS)
def search_articles(
    read_models: ReadModelsDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="words, in Chinese")],
    category: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> schemas.ArticleHits:
    """Articles in force matching ``q``, most relevant first (full-text, character trigrams)."""
    hits = common.read_model_call(read_models.search_articles, q=q, category=category, limit=limit)
    return schemas.ArticleHits(q=q, items=[schemas.ArticleHit.model_validate(hit) for hit in hits])
