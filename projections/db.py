"""The little SQL portability the read models need: one SQL text for SQLite and PostgreSQL.

SQL is written with ``:name`` parameters and ``{table}`` placeholders; ``Dialect.sql``
turns it into what the backend's driver expects (``%(name)s`` and schema-qualified
names on PostgreSQL). Instants are stored as fixed-width UTC ISO strings
(``2026-11-23T09:30:00.000000Z``) and days as ``YYYY-MM-DD``, so comparing and
ordering the text is comparing and ordering the time on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from eventsourcing.utils import Environment

APPLICATION_NAME = "Grievances"
DEFAULT_PROJECTIONS_FILE = "projections.sqlite"

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=1 << 16)
def iso(moment: datetime | None) -> str | None:
    """Fixed-width UTC text: sorts like the instant it stands for (the same few instants
    are formatted at every event of a grievance: each once)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("instants must carry a time zone")
    # isoformat is several times cheaper than strftime; fixed width with microseconds.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text)


class Cursor(Protocol):
    def execute(self, statement: Any, params: Any = ..., /) -> Any: ...
    def executemany(self, statement: Any, params: Any, /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """How table names and parameters are spelled on one backend."""

    postgres: bool
    schema: str | None = None

    def table(self, name: str) -> str:
        if self.postgres and self.schema:
            return f'"{self.schema}"."{name}"'
        return f'"{name}"'

    def sql(self, text: str, **tables: str) -> str:
        named = {key: self.table(value) for key, value in tables.items()}
        text = text.format_map(named) if named else text
        if self.postgres:
            text = _PARAM.sub(r"%(\1)s", text)
        return text


def in_marks(prefix: str, values: Sequence[Any]) -> str:
    """The named parameters of an ``IN (...)`` list of ``values``: ``:p0, :p1, ...``."""
    return ", ".join(f":{prefix}{i}" for i in range(len(values)))


def in_params(prefix: str, values: Sequence[Any]) -> dict[str, Any]:
    """The parameters ``in_marks`` names."""
    return {f"{prefix}{i}": value for i, value in enumerate(values)}


def rows(cursor: Cursor) -> list[dict[str, Any]]:
    return [dict(row) for row in cursor.fetchall()]


def one(cursor: Cursor) -> dict[str, Any] | None:
    row = cursor.fetchone()
    return dict(row) if row is not None else None


def backend_of(env: Mapping[str, str]) -> str:
    module = Environment(APPLICATION_NAME, dict(env)).get("PERSISTENCE_MODULE") or ""
    if module.endswith("sqlite"):
        return "sqlite"
    if module.endswith("postgres"):
        return "postgres"
    raise ValueError(
        "read models need a durable event store: PERSISTENCE_MODULE must be "
        f"eventsourcing.sqlite or eventsourcing.postgres, not {module or 'eventsourcing.popo'!r}"
    )


def projections_sqlite_path(env: Mapping[str, str]) -> str:
    """Where SQLite read models live: ``PROJECTIONS_SQLITE_DBNAME``, or beside the events."""
    explicit = env.get("PROJECTIONS_SQLITE_DBNAME")
    if explicit:
        return explicit
    events = Environment(APPLICATION_NAME, dict(env)).get("SQLITE_DBNAME") or ""
    if not events or ":memory:" in events or "mode=memory" in events:
        raise ValueError("SQLite read models need a file: set PROJECTIONS_SQLITE_DBNAME")
    return str(Path(events).with_name(DEFAULT_PROJECTIONS_FILE))


class Datastore(Protocol):
    """What both eventsourcing datastores offer (SQLiteDatastore, PostgresDatastore)."""

    def transaction(self, *, commit: bool) -> Any: ...
    def close(self) -> None: ...


def read_model_env(app_env: Mapping[str, str]) -> dict[str, str]:
    """The persistence env for the read-model tables (a separate file on SQLite)."""
    env = dict(app_env)
    if backend_of(env) == "sqlite":
        env["SQLITE_DBNAME"] = projections_sqlite_path(env)
        env.setdefault("SQLITE_LOCK_TIMEOUT", "10")
    else:
        # A reader or projector needs few connections; keep the pool small.
        env.setdefault("POSTGRES_POOL_SIZE", "2")
        env.setdefault("POSTGRES_MAX_OVERFLOW", "4")
    return env


def open_datastore(app_env: Mapping[str, str]) -> tuple[Datastore, Dialect]:
    """The datastore the read-model tables live in, and how to spell SQL for it."""
    from eventsourcing.persistence import InfrastructureFactory

    env = read_model_env(app_env)
    factory: Any = InfrastructureFactory.construct(Environment("Projections", env))
    datastore = factory.datastore
    if backend_of(env) == "postgres":
        return datastore, Dialect(postgres=True, schema=datastore.schema)
    return datastore, Dialect(postgres=False)


@contextmanager
def reading(datastore: Datastore) -> Iterator[Cursor]:
    with datastore.transaction(commit=False) as cursor:
        yield cursor
