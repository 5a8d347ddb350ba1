"""What the API and the dashboard read: the read models, as plain JSON-able dicts.

``ReadModels.from_env(env)`` takes the same eventsourcing persistence env as the
GrievanceApp (plus the optional ``PROJECTIONS_SQLITE_DBNAME``); it never imports
closeloop. Lists are keyset-paginated with an opaque, stable cursor. "Overdue" is
computed here from stored deadlines and the ``now`` passed in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.audit import ENDED_OUTCOMES, MISSED_OUTCOMES
from domain.errors import ValidationError
from domain.policies.similarity import SimilarityPolicy
from domain.similarity import Place
from projections import intake, knowledge, open311, similar
from projections.db import (
    APPLICATION_NAME,
    Cursor,
    Datastore,
    Dialect,
    in_marks,
    in_params,
    iso,
    one,
    open_datastore,
    rows,
)
from projections.kpis import COUNTS, with_rates
from projections.models import OPEN_ASSIGNMENT_STATE_VALUES
from projections.registry import PROJECTIONS
from projections.views import week_start

MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


@dataclass
class _Where:
    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("invalid-cursor", field="cursor") from None
    if not isinstance(key, list) or len(key) != size or not all(isinstance(k, str) for k in key):
        raise ValidationError("invalid-cursor", field="cursor")
    return key


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("out-of-range", field="limit", value=limit, min=1, max=MAX_LIMIT)
    return limit


def _now(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValidationError("naive-datetime", field="now")
    text = iso(now)
    assert text is not None
    return text


def _contains(text: str) -> str:
    """A LIKE pattern matching ``text`` literally (its % and _ are not wildcards)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_LIKE = "LIKE {} ESCAPE '\\'"


def _overdue(deadlines: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    return [d for d in deadlines if d["due"] < now]


class ReadModels:
    """Queries over the projections' tables (SQLite file or PostgreSQL schema)."""

    def __init__(
        self,
        datastore: Datastore,
        dialect: Dialect,
        app_env: Mapping[str, str] | None = None,
        tz: ZoneInfo | None = None,
    ) -> None:
        self._datastore = datastore
        self._dialect = dialect
        self._app_env = dict(app_env or {})
        self._recorder: Any = None
        if tz is None:
            from projections.views import default_tz

            tz = default_tz()
        self.tz = tz

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadModels:
        """From the GrievanceApp's persistence env (``PERSISTENCE_MODULE``, ``SQLITE_*`` /
        ``POSTGRES_*``) and optionally ``PROJECTIONS_SQLITE_DBNAME``. Creates the tables
        if they do not exist yet, so a fresh deployment reads empty lists, not errors.
        """
        from pathlib import Path

        from domain.policies import load_policies
        from projections.runner import build_view

        datastore, dialect = open_datastore(env)
        for spec in PROJECTIONS.values():
            build_view(spec, datastore, dialect)
        policy_dir = env.get("POLICY_DIR")
        policies = load_policies(
            env.get("SLA_PROFILE") or None, Path(policy_dir) if policy_dir else None
        )
        return cls(datastore, dialect, env, policies.calendar.tz)

    def close(self) -> None:
        self._datastore.close()
        if self._recorder is not None:
            self._recorder_factory.close()

    # -------------------------------------------------------------- helpers

    def _query(self, text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        tables = {name: name for name in PROJECTIONS}
        with self._datastore.transaction(commit=False) as c:
            c.execute(self._dialect.sql(text, **tables), params or {})
            return rows(c)

    # -------------------------------------------------------------- grievances

    def list_grievances(
        self,
        *,
        status: str | None = None,
        category: str | None = None,
        department: str | None = None,
        street: str | None = None,
        community: str | None = None,
        overdue: bool | None = None,
        escalation_level: int | None = None,
        received_from: datetime | None = None,
        received_to: datetime | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        now: datetime,
    ) -> Page:
        """Newest received first; ``overdue`` compares the next open deadline with ``now``."""
        moment = _now(now)
        where = _Where()
        if status:
            where.add("status = :status", status=status)
        if category:
            where.add("category = :category", category=category)
        if department:
            where.add(
                "departments " + _LIKE.format(":department"),
                department=_contains(f"|{department}|"),
            )
        if street:
            where.add("street = :street", street=street)
        if community:
            where.add("community = :community", community=community)
        if overdue is True:
            where.add("next_deadline IS NOT NULL AND next_deadline < :now", now=moment)
        elif overdue is False:
            where.add("(next_deadline IS NULL OR next_deadline >= :now)", now=moment)
        if escalation_level is not None:
            where.add("escalation_level = :level", level=int(escalation_level))
        if received_from is not None:
            where.add("received_at >= :received_from", received_from=_now(received_from))
        if received_to is not None:
            where.add("received_at < :received_to", received_to=_now(received_to))
        if q:
            like = _LIKE.format(":q")
            where.add(
                f"(number {like} OR address {like} OR category {like})",
                q=_contains(q.strip()),
            )
        return self._keyset_page(
            "{grievance_summary}",
            ("received_at", "grievance_id"),
            descending=True,
            where=where,
            cursor=cursor,
            limit=limit,
            item=lambda row: self._grievance_item(json.loads(row["item"]), moment),
        )

    @staticmethod
    def _grievance_item(item: dict[str, Any], now: str) -> dict[str, Any]:
        late = _overdue(item["deadlines"], now)
        item["overdue"] = bool(late)
        item["overdue_deadlines"] = late
        return item

    def get_summary(
        self, grievance_id: UUID, *, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """One grievance's summary row (``overdue`` is filled in when ``now`` is given)."""
        found = self._query(
            "SELECT item FROM {grievance_summary} WHERE grievance_id = :id",
            {"id": str(grievance_id)},
        )
        if not found:
            return None
        item: dict[str, Any] = json.loads(found[0]["item"])
        if now is not None:
            return self._grievance_item(item, _now(now))
        return item

    # -------------------------------------------------------------- duplicates

    def similarity_place(self, grievance_id: UUID) -> Place | None:
        """What suggesting duplicates compares of one grievance (``projections.similar``)."""
        return similar.place(self._query, str(grievance_id))

    def duplicate_candidates(self, probe: Place, policy: SimilarityPolicy) -> list[Place]:
        """Open grievances near ``probe`` within the policy's window, to be scored."""
        return similar.candidates(self._query, probe, policy)

    # ------------------------------------------------------------------ open311

    def open311_requests(self, **filters: Any) -> list[dict[str, Any]]:
        """GeoReport v2's list, one page (``projections.open311.list_requests``)."""
        return open311.list_requests(self._query, **filters)

    def open311_by_number(self, numbers: list[str]) -> dict[str, dict[str, Any]]:
        """The Open311 rows of these case numbers projected so far, by number."""
        return open311.requests_by_number(self._query, numbers)

    # ------------------------------------------------------------- assignments

    def department_deadlines(
        self, department: str, date_from: datetime, date_to: datetime, now: datetime
    ) -> tuple[list[dict[str, Any]], int]:
        """The ``deadline_records`` rows of ``department`` due in [date_from, date_to) that
        were missed by ``now`` (``DeadlineRecord.missed``: open ones past due included, to
        be judged by the caller), and the notification id they are complete up to."""
        with self._datastore.transaction(commit=False) as c:
            position = self._position(c, "deadline_records")
            c.execute(
                self._dialect.sql(
                    "SELECT * FROM {t} WHERE department = :department "
                    "AND due >= :date_from AND due < :date_to AND ("
                    f"outcome IN ({in_marks('m', MISSED_OUTCOMES)}) "
                    "OR (outcome = 'open' AND due < :now) "
                    f"OR (outcome IN ({in_marks('e', ENDED_OUTCOMES)}) AND late_by_seconds > 0)"
                    ") ORDER BY due, number",
                    t="deadline_records",
                ),
                {
                    "department": department,
                    "date_from": iso(date_from),
                    "date_to": iso(date_to),
                    "now": iso(now),
                    **in_params("m", MISSED_OUTCOMES),
                    **in_params("e", ENDED_OUTCOMES),
                },
            )
            found = rows(c)
        return found, position

    def list_assignments(
        self,
        *,
        department: str,
        state: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        now: datetime,
    ) -> Page:
        """A department's assignments, soonest deadline first (open ones unless ``state``)."""
        moment = _now(now)
        where = _Where()
        where.add("department = :department", department=department)
        if state:
            where.add("state = :state", state=state)
        else:
            where.add(
                f"state IN ({in_marks('s', OPEN_ASSIGNMENT_STATE_VALUES)})",
                **in_params("s", OPEN_ASSIGNMENT_STATE_VALUES),
            )

        def item(row: dict[str, Any]) -> dict[str, Any]:
            found = json.loads(row["item"])
            found["overdue"] = bool(found["due"] and found["due"] < moment)
            return dict(found)

        return self._keyset_page(
            "{assignment_queue}",
            ("sort_due", "assignment_id"),
            descending=False,
            where=where,
            cursor=cursor,
            limit=limit,
            item=item,
        )

    # --------------------------------------------------------------- callbacks

    def list_callbacks(self, *, cursor: str | None = None, limit: int = 50, now: datetime) -> Page:
        """Resolved grievances awaiting the citizen's callback, window ending soonest first."""
        moment = _now(now)

        def item(row: dict[str, Any]) -> dict[str, Any]:
            found = json.loads(row["item"])
            found["overdue"] = found["window_ends_at"] < moment
            return dict(found)

        return self._keyset_page(
            "{callback_queue}",
            ("window_ends_at", "grievance_id"),
            descending=False,
            where=_Where(),
            cursor=cursor,
            limit=limit,
            item=item,
        )

    def _keyset_page(
        self,
        table: str,
        keys: tuple[str, str],
        *,
        descending: bool,
        where: _Where,
        cursor: str | None,
        limit: int,
        item: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Page:
        """One page ordered by (sort key, id), resuming after an opaque, stable cursor."""
        limit = _limit(limit)
        first, second = keys
        direction, after = ("DESC", "<") if descending else ("ASC", ">")
        if cursor:
            c_first, c_second = decode_cursor(cursor, 2)
            where.add(
                f"({first} {after} :c_first"
                f" OR ({first} = :c_first AND {second} {after} :c_second))",
                c_first=c_first,
                c_second=c_second,
            )
        found = self._query(
            f"SELECT {first}, {second}, item FROM {table}"
            + where.sql()
            + f" ORDER BY {first} {direction}, {second} {direction} LIMIT :limit",
            {**where.params, "limit": limit + 1},
        )
        next_cursor = None
        if len(found) > limit:
            last = found[limit - 1]
            next_cursor = encode_cursor(last[first], last[second])
        return Page([item(row) for row in found[:limit]], next_cursor)

    # -------------------------------------------------------------------- KPIs

    def _kpi_rows(
        self, date_from: date, date_to: date, department: str | None
    ) -> list[dict[str, Any]]:
        if date_to < date_from:
            raise ValidationError("date-range-reversed", field="date_to")
        sums = ", ".join(f"SUM({name}) AS {name}" for name in COUNTS)
        where = _Where()
        where.add("day >= :date_from", date_from=date_from.isoformat())
        where.add("day <= :date_to", date_to=date_to.isoformat())
        if department:
            where.add("department = :department", department=department)
        return self._query(
            f"SELECT department, day, {sums} FROM {{department_kpis}}"
            + where.sql()
            + " GROUP BY department, day ORDER BY department, day",
            where.params,
        )

    def kpis(
        self, *, date_from: date, date_to: date, department: str | None = None
    ) -> list[dict[str, Any]]:
        """Per department, the counts of the local days ``date_from``..``date_to`` (inclusive)
        and the 三率 computed from them (``projections.kpis``)."""
        totals: dict[str, dict[str, int]] = {}
        for r in self._kpi_rows(date_from, date_to, department):
            acc = totals.setdefault(r["department"], dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                acc[name] += int(r[name] or 0)
        return [
            {
                "department": name,
                "date_from": date_from.isoformat(),
                "date_to": date_to.isoformat(),
                **with_rates(counts),
            }
            for name, counts in sorted(totals.items())
        ]

    def kpi_trend(
        self, *, weeks: int, department: str | None = None, now: datetime
    ) -> list[dict[str, Any]]:
        """The last ``weeks`` local weeks (Monday first, oldest first), all departments summed
        (or one), each with its counts and 三率."""
        if not 1 <= weeks <= 104:
            raise ValidationError("out-of-range", field="weeks", value=weeks, min=1, max=104)
        _now(now)
        this_week = week_start(now.astimezone(self.tz).date())
        first = this_week - timedelta(weeks=weeks - 1)
        buckets = {first + timedelta(weeks=i): dict.fromkeys(COUNTS, 0) for i in range(weeks)}
        for r in self._kpi_rows(first, this_week + timedelta(days=6), department):
            bucket = buckets[week_start(date.fromisoformat(r["day"]))]
            for name in COUNTS:
                bucket[name] += int(r[name] or 0)
        return [
            {
                "week_start": start.isoformat(),
                "week_end": (start + timedelta(days=6)).isoformat(),
                "department": department,
                **with_rates(counts),
            }
            for start, counts in buckets.items()
        ]

    def intake_kpis(self, *, date_from: date, date_to: date) -> dict[str, Any]:
        """The dispatch centre's intake of the local days ``date_from``..``date_to``:
        received, answered at intake and 直办率, in all and per request type."""
        if date_to < date_from:
            raise ValidationError("date-range-reversed", field="date_to")
        return intake.intake_kpis(self._datastore, self._dialect, date_from, date_to)

    # ------------------------------------------------------------ knowledge base

    def search_articles(
        self, *, q: str, category: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Published knowledge-base articles matching ``q``, most relevant first."""
        return knowledge.search(self._datastore, self._dialect, q, category, _limit(limit))

    def list_articles(
        self, *, status: str | None = None, waiting: bool | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Knowledge-base articles, newest change first (e.g. those waiting for approval)."""
        return knowledge.list_articles(
            self._datastore, self._dialect, status, waiting, _limit(limit)
        )

    # ---------------------------------------------------------------- hotspots

    def hotspots(self, *, weeks: int = 8, limit: int = 20, now: datetime) -> list[dict[str, Any]]:
        """Top category × community (with street) counts over the last ``weeks`` weeks."""
        if not 1 <= weeks <= 104:
            raise ValidationError("out-of-range", field="weeks", value=weeks, min=1, max=104)
        limit = _limit(limit)
        _now(now)
        since = week_start(now.astimezone(self.tz).date()) - timedelta(weeks=weeks - 1)
        found = self._query(
            "SELECT category, district, street, community, week, grievances FROM {hotspots} "
            "WHERE week >= :since ORDER BY category, district, street, community, week",
            {"since": since.isoformat()},
        )
        groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for r in found:
            key = (r["category"], r["district"], r["street"], r["community"])
            group = groups.setdefault(
                key,
                {
                    "category": r["category"],
                    "district": r["district"],
                    "street": r["street"],
                    "community": r["community"],
                    "grievances": 0,
                    "by_week": {},
                },
            )
            group["grievances"] += int(r["grievances"])
            group["by_week"][r["week"]] = int(r["grievances"])
        ranked = sorted(
            groups.values(),
            key=lambda g: (-g["grievances"], g["category"], g["street"], g["community"]),
        )
        return ranked[:limit]

    # ------------------------------------------------------------------ status

    @property
    def _events(self) -> Any:
        if self._recorder is None:
            from eventsourcing.persistence import InfrastructureFactory
            from eventsourcing.utils import Environment

            self._recorder_factory: Any = InfrastructureFactory.construct(
                Environment(APPLICATION_NAME, self._app_env)
            )
            self._recorder = self._recorder_factory.application_recorder()
        return self._recorder

    def _position(self, c: Cursor, name: str) -> int:
        c.execute(
            self._dialect.sql(
                "SELECT notification_id FROM {t} WHERE application_name = :app",
                t=f"{name}_tracking",
            ),
            {"app": APPLICATION_NAME},
        )
        row = one(c)
        return int(row["notification_id"]) if row else 0

    def position(self, name: str) -> int:
        """One projection's position (the last notification id it has processed)."""
        with self._datastore.transaction(commit=False) as c:
            return self._position(c, name)

    def status(self) -> dict[str, dict[str, int | None]]:
        """Each projection's position, the log's newest notification id, and the lag."""
        max_id = int(self._events.max_notification_id() or 0) if self._app_env else None
        result: dict[str, dict[str, int | None]] = {}
        with self._datastore.transaction(commit=False) as c:
            for name in PROJECTIONS:
                position = self._position(c, name)
                result[name] = {
                    "position": position,
                    "max_notification_id": max_id,
                    "lag": max(0, max_id - position) if max_id is not None else None,
                }
        return result
