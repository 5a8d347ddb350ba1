"""The knowledge base (知识库): operators write and search articles, supervisors approve
and retire them. Articles live in the event store (``domain.knowledge``); the search
reads the ``knowledge_articles`` read model."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.deps import AnyPrincipal, AppDep, Read, ReadModelsDep, WriteDep, guarded
from api.routers.common import READ_PROBLEMS, WRITE_PROBLEMS, fields_of, problems, read_model_call
from api.routers.common import set_version as set_etag
from api.schemas import (
    ArticleAccepted,
    ArticleApprove,
    ArticleHit,
    ArticleHits,
    ArticlePublic,
    ArticleRetire,
    ArticleWrite,
)
from domain import commands as c
from domain.knowledge import ArticleResult
from domain.model import Action

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge base"])
A = "/articles/{article_id}"


def _accepted(result: ArticleResult, response: Response) -> ArticleAccepted:
    set_etag(response, result.version)
    return ArticleAccepted(
        id=result.article_id,
        status=result.status,
        version=result.version,
        revision=result.revision,
        published_revision=result.published_revision,
        replayed=result.replayed,
    )


def _send(
    app: AppDep,
    who: AnyPrincipal,
    opts: WriteDep,
    response: Response,
    kind: type[c.ArticleCommand],
    **fields: object,
) -> ArticleAccepted:
    command = kind(
        actor=who.actor,
        command_id=opts.command_id,
        expected_version=opts.expected_version,
        **fields,  # type: ignore[arg-type]
    )
    return _accepted(app.handle_article(command), response)


@router.post(
    "/articles",
    status_code=201,
    response_model=ArticleAccepted,
    responses=problems(401, 403, 409, 413, 422),
    **guarded(Action.WRITE_ARTICLE),
)
def create_article(
    body: ArticleWrite, app: AppDep, who: AnyPrincipal, opts: WriteDep, response: Response
) -> ArticleAccepted:
    """A new article: its first revision, waiting for a supervisor's approval."""
    answer = _send(app, who, opts, response, c.CreateArticle, **fields_of(body))
    response.headers["Location"] = f"/v1/knowledge/articles/{answer.id}"
    return answer


@router.post(
    f"{A}/revise",
    response_model=ArticleAccepted,
    responses=WRITE_PROBLEMS,
    **guarded(Action.WRITE_ARTICLE),
)
def revise_article(
    article_id: UUID,
    body: ArticleWrite,
    app: AppDep,
    who: AnyPrincipal,
    opts: WriteDep,
    response: Response,
) -> ArticleAccepted:
    """A new revision; the approved one stays in force until this one is approved."""
    return _send(
        app, who, opts, response, c.ReviseArticle, article_id=article_id, **fields_of(body)
    )


@router.post(
    f"{A}/approve",
    response_model=ArticleAccepted,
    responses=WRITE_PROBLEMS,
    **guarded(Action.APPROVE_ARTICLE),
)
def approve_article(
    article_id: UUID,
    app: AppDep,
    who: AnyPrincipal,
    opts: WriteDep,
    response: Response,
    body: ArticleApprove | None = None,
) -> ArticleAccepted:
    """Approve the waiting revision: it is now the one answers quote."""
    return _send(
        app, who, opts, response, c.ApproveArticle, article_id=article_id, **fields_of(body)
    )


@router.post(
    f"{A}/retire",
    response_model=ArticleAccepted,
    responses=WRITE_PROBLEMS,
    **guarded(Action.RETIRE_ARTICLE),
)
def retire_article(
    article_id: UUID,
    app: AppDep,
    who: AnyPrincipal,
    opts: WriteDep,
    response: Response,
    body: ArticleRetire | None = None,
) -> ArticleAccepted:
    """Retire the article: no longer searched, nor quoted by new answers."""
    return _send(
        app, who, opts, response, c.RetireArticle, article_id=article_id, **fields_of(body)
    )


@router.get(
    A,
    response_model=ArticlePublic,
    responses=problems(401, 403, 404, 422),
    **guarded(Read.KNOWLEDGE),
)
def get_article(
    article_id: UUID,
    app: AppDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, description="as of this version")] = None,
) -> ArticlePublic:
    """One article from its events: every revision, the one in force, the one waiting."""
    article = app.get_article(article_id, version)
    set_etag(response, article.version)
    return ArticlePublic.model_validate(article.public())


@router.get(
    "/search", response_model=ArticleHits, responses=READ_PROBLEMS, **guarded(Read.KNOWLEDGE)
)
def search_articles(
    read_models: ReadModelsDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="words, in Chinese")],
    category: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> ArticleHits:
    """Articles in force matching ``q``, most relevant first (full-text, character trigrams)."""
    hits = read_model_call(read_models.search_articles, q=q, category=category, limit=limit)
    return ArticleHits(q=q, items=[ArticleHit.model_validate(hit) for hit in hits])
