"""knowledge_articles: the knowledge base's articles, searched by operators in Chinese.

One row per article (``domain.knowledge.Article``) with the revision in force (the last
approved) as its searchable text, and the revision waiting for approval kept aside until
it is approved. Retired and never-approved articles are not found.

Chinese has no spaces between words, so the search works on character trigrams, which
both backends index:

- SQLite: an FTS5 table with the ``trigram`` tokenizer beside the rows; a query's terms
  of three characters or more are cut into their trigrams, matched with OR and ranked
  by ``bm25`` (the title weighs most, then the keywords, then the body);
- PostgreSQL: ``pg_trgm``: a GIN ``gin_trgm_ops`` index on the text finds the rows
  holding any of the query's trigrams (``LIKE``), ranked by ``word_similarity`` of the
  query to the title, keywords and body, with the same weights.

Terms of one or two characters (电梯, 停水) have no trigram: they match as substrings.
Every term found as it was typed adds ``LITERAL_BONUS``, so on both backends an article
naming more of the query's words ranks higher.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from domain.knowledge import Article
from projections.db import Cursor, Datastore, Dialect, iso, parse_iso, reading, rows
from projections.fold import event_at
from projections.views import ReadModelView

TABLE = "knowledge_articles"
FTS = "knowledge_articles_fts"
# Relevance weights of the title, the keywords and the body.
WEIGHTS = (10.0, 5.0, 1.0)
LITERAL_BONUS = 1.0
MAX_TERMS = 12
_SPLIT = re.compile(
    r"[\s\u3000-\u303f\uff00-\uff0f\uff1a-\uff20,.;:!?'\"()\[\]{}<>/\\|+*&^%$#@~`=-]+"
)


def terms_of(query: str) -> list[str]:
    """The query's terms: split at spaces and punctuation (Chinese and ASCII), lower-cased,
    each once, at most ``MAX_TERMS``."""
    found = [t.lower() for t in _SPLIT.split(query) if t]
    return list(dict.fromkeys(found))[:MAX_TERMS]


def trigrams(term: str) -> list[str]:
    return [term[i : i + 3] for i in range(len(term) - 2)]


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class KnowledgeArticlesView(ReadModelView):
    """knowledge_articles: each article's revision in force, searchable in Chinese."""

    projection_name = TABLE
    columns = (
        "article_id TEXT PRIMARY KEY, status TEXT NOT NULL, revision INTEGER, "
        "title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '', "
        "keywords TEXT NOT NULL DEFAULT '', category TEXT, waiting TEXT, "
        "search_text TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL"
    )
    folds = False

    @property
    def tables(self) -> tuple[str, ...]:
        return (TABLE, FTS) if not self.dialect.postgres else (TABLE,)

    def ddl(self) -> list[str]:
        if self.dialect.postgres:
            return [
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                *super().ddl(),
                f"CREATE INDEX IF NOT EXISTS {TABLE}_trgm ON {{{TABLE}}} "
                "USING gin (search_text gin_trgm_ops)",
            ]
        return [
            *super().ddl(),
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {{{FTS}}} USING fts5("
            "article_id UNINDEXED, title, keywords, body, tokenize='trigram')",
        ]

    # ------------------------------------------------------------------ writes

    def apply(self, c: Cursor, events: Sequence[Any]) -> None:
        for event in events:
            if isinstance(event, Article.Drafted | Article.Recorded):
                self._apply(c, event)

    def _row(self, c: Cursor, article_id: str) -> dict[str, Any] | None:
        self.execute(c, f"SELECT * FROM {{{TABLE}}} WHERE article_id = :id", {"id": article_id})
        row = c.fetchone()
        return dict(row) if row is not None else None

    def _apply(self, c: Cursor, event: Any) -> None:
        article_id = str(event.originator_id)
        row = self._row(c, article_id) or {
            "article_id": article_id,
            "status": "draft",
            "revision": None,
            "title": "",
            "body": "",
            "keywords": "",
            "category": None,
            "waiting": None,
            "search_text": "",
        }
        row["updated_at"] = iso(event_at(event))
        if isinstance(event, Article.Drafted | Article.Revised):
            number = 1 if isinstance(event, Article.Drafted) else self._next(row)
            waiting = {"revision": number, **event.content}
            row["waiting"] = json.dumps(waiting, ensure_ascii=False)
        elif isinstance(event, Article.Approved):
            waiting = json.loads(row["waiting"] or "null")
            # The domain approves only the waiting revision: the row holds it.
            assert waiting is not None and waiting["revision"] == event.revision
            row.update(
                status="published",
                revision=waiting["revision"],
                title=waiting["title"],
                body=waiting["body"],
                keywords=" ".join(waiting["keywords"]),
                category=waiting["category"],
                waiting=None,
            )
            row["search_text"] = f"{row['title']} {row['keywords']} {row['body']}".lower()
        elif isinstance(event, Article.Retired):
            row["status"] = "retired"
        self.upsert(c, TABLE, ("article_id",), [row])
        if not self.dialect.postgres:
            self._index(c, row)

    @staticmethod
    def _next(row: dict[str, Any]) -> int:
        waiting = json.loads(row["waiting"] or "null")
        newest = waiting["revision"] if waiting else row["revision"] or 0
        return int(newest) + 1

    def _index(self, c: Cursor, row: dict[str, Any]) -> None:
        """SQLite: the FTS table holds exactly the searchable articles' text."""
        self.execute(c, f"DELETE FROM {{{FTS}}} WHERE article_id = :id", {"id": row["article_id"]})
        if row["status"] == "published":
            self.execute(
                c,
                f"INSERT INTO {{{FTS}}} (article_id, title, keywords, body) "
                "VALUES (:article_id, :title, :keywords, :body)",
                {k: row[k] for k in ("article_id", "title", "keywords", "body")},
            )


# --------------------------------------------------------------------- queries


def _hit(row: dict[str, Any], score: float, terms: list[str]) -> dict[str, Any]:
    return {
        "id": row["article_id"],
        "revision": row["revision"],
        "title": row["title"],
        "snippet": snippet(row["body"], terms),
        "keywords": row["keywords"].split() if row["keywords"] else [],
        "category": row["category"],
        "score": round(score, 4),
    }


def snippet(body: str, terms: list[str], width: int = 80) -> str:
    """Up to ``width`` characters of the body around the first term found."""
    lowered = body.lower()
    start = min((i for i in (lowered.find(t) for t in terms) if i >= 0), default=0)
    start = max(0, start - width // 4)
    text = body[start : start + width]
    return ("…" if start else "") + text + ("…" if start + width < len(body) else "")


def search(
    datastore: Datastore, dialect: Dialect, q: str, category: str | None, limit: int
) -> list[dict[str, Any]]:
    """The published articles matching ``q``, most relevant first (ranked and cut in SQL)."""
    terms = terms_of(q)
    if not terms:
        return []
    params: dict[str, Any] = {f"t{i}": _like(t) for i, t in enumerate(terms)}
    params["limit"] = limit
    typed = [f"a.search_text LIKE :t{i} ESCAPE '\\'" for i in range(len(terms))]
    # LITERAL_BONUS per term found as typed: the same on both backends.
    literal = " + ".join(f"(CASE WHEN {t} THEN {LITERAL_BONUS} ELSE 0.0 END)" for t in typed)
    # A term of one or two characters has no trigram: it is found as typed.
    short = [like for like, term in zip(typed, terms, strict=True) if len(term) < 3]
    where = "a.status = 'published'"
    if category:
        where += " AND a.category = :category"
        params["category"] = category
    title, keywords, body = WEIGHTS
    grams = list(dict.fromkeys(g for t in terms for g in trigrams(t)))
    if dialect.postgres:
        params["q"] = " ".join(terms)
        source = f"{{{TABLE}}} a"
        relevance = (
            f"{title} * word_similarity(:q, a.title) + {keywords} * word_similarity(:q, "
            f"a.keywords) + {body} * word_similarity(:q, a.body)"
        )
        # Any of the query's trigrams (the GIN gin_trgm_ops index finds them); LIKE's
        # default escape character is the backslash _like escapes with.
        params["grams"] = [_like(g) for g in grams] or [""]
        matched = "a.search_text LIKE ANY(:grams)"
    else:
        params["match"] = " OR ".join('"' + g.replace('"', '""') + '"' for g in grams) or '""'
        # bm25 ranks a trigram match (negative: lower is better); no match, no rank.
        rank = f"bm25({{{FTS}}}, 0.0, {title}, {keywords}, {body})"
        source = (
            f"{{{TABLE}}} a LEFT JOIN (SELECT article_id, -{rank} AS relevance "
            f"FROM {{{FTS}}} WHERE {{{FTS}}} MATCH :match) r ON r.article_id = a.article_id"
        )
        relevance = "COALESCE(r.relevance, 0.0)"
        matched = "r.article_id IS NOT NULL"
    with reading(datastore) as c:
        c.execute(
            dialect.sql(
                f"SELECT a.*, {relevance} + {literal} AS score FROM {source} "
                f"WHERE {where} AND ({' OR '.join([matched, *short])}) "
                "ORDER BY score DESC, a.title, a.article_id LIMIT :limit",
                **{TABLE: TABLE, FTS: FTS},
            ),
            params,
        )
        return [_hit(row, float(row["score"]), terms) for row in rows(c)]


def list_articles(
    datastore: Datastore, dialect: Dialect, status: str | None, waiting: bool | None, limit: int
) -> list[dict[str, Any]]:
    """Articles newest change first: ``status`` (draft, published, retired) and/or
    ``waiting`` (a revision waits for a supervisor's approval)."""
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if status:
        clauses.append("status = :status")
        params["status"] = status
    if waiting is not None:
        clauses.append("waiting IS NOT NULL" if waiting else "waiting IS NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with reading(datastore) as c:
        c.execute(
            dialect.sql(
                f"SELECT * FROM {{{TABLE}}}{where} "
                "ORDER BY updated_at DESC, article_id LIMIT :limit",
                **{TABLE: TABLE},
            ),
            params,
        )
        found = rows(c)
    items = []
    for row in found:
        pending = json.loads(row["waiting"] or "null")
        items.append(
            {
                "id": row["article_id"],
                "status": row["status"],
                "published_revision": row["revision"],
                "title": row["title"] or (pending or {}).get("title", ""),
                "waiting_revision": pending["revision"] if pending else None,
                "waiting_title": pending["title"] if pending else None,
                "updated_at": parse_iso(row["updated_at"]),
            }
        )
    return items
