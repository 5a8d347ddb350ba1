"""Read models rebuilt in memory from a slice of the log, for audit ("as of" a past instant).

The same view classes the live projector runs are fed the given events in a private,
in-memory SQLite database, and the same queries read them, so the 三率 have one formula
(``projections.kpis``) and one way of counting (``DepartmentKpisView``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore

from projections.db import APPLICATION_NAME, Dialect
from projections.kpis import COUNTS, with_rates
from projections.queries import ReadModels
from projections.rankings import ranking_totals
from projections.registry import PROJECTIONS
from projections.runner import build_view

BATCH = 500
# An event is numbered in the log when its transaction commits, a little after its
# instant: the log is read on past ``as_of`` until events are this much younger.
COMMIT_SLACK = timedelta(minutes=5)


def kpis_from_events(
    events: Iterable[Any],
    *,
    date_from: date,
    date_to: date,
    department: str | None = None,
    tz: ZoneInfo | None = None,
) -> list[dict[str, Any]]:
    """The 三率 per department over ``date_from``..``date_to`` from exactly ``events``
    (decoded domain events in log order), as ``ReadModels.kpis`` answers them."""
    # A named shared-cache memory database: every pooled connection sees the same tables,
    # and it disappears when the datastore closes.
    datastore = SQLiteDatastore(f"file:kpis-{uuid4().hex}?mode=memory&cache=shared")
    try:
        dialect = Dialect(postgres=False)
        view = build_view(PROJECTIONS["department_kpis"], datastore, dialect)
        if tz is not None:
            view.tz = tz
        batch: list[tuple[Any, Tracking]] = []
        for position, event in enumerate(events, start=1):
            batch.append((event, Tracking(APPLICATION_NAME, position)))
            if len(batch) >= BATCH:
                view.process_batch(batch)
                batch = []
        view.process_batch(batch)
        models = ReadModels(datastore, dialect, tz=tz)
        return models.kpis(date_from=date_from, date_to=date_to, department=department)
    finally:
        datastore.close()


def recorded_until(events: Iterable[Any], as_of: datetime) -> Iterator[Any]:
    """The events recorded up to ``as_of`` (their instant), in log order, reading the log
    only until events are ``COMMIT_SLACK`` younger than ``as_of`` (never to its end)."""
    stop = as_of + COMMIT_SLACK
    for event in events:
        if event.timestamp > stop:
            return
        if event.timestamp <= as_of:
            yield event


def kpis_as_of(
    app: Any,
    read_models: ReadModels,
    as_of: datetime,
    *,
    date_from: date,
    date_to: date,
    department: str | None = None,
) -> list[dict[str, Any]]:
    """The 三率 from the events recorded up to ``as_of``.

    ``ranking_counts`` keeps department_kpis' counts by the instant each event was
    recorded, so when it has read every event that may have been recorded by ``as_of``
    (its position is the log's end, or the next event it has not read is younger than
    ``as_of`` by ``COMMIT_SLACK``) the answer is one sum over its rows. Otherwise the
    events up to ``as_of`` are replayed into a private copy of department_kpis
    (``kpis_from_events``)."""
    position = read_models.position("ranking_counts")
    following = app.recorder.select_notifications(position + 1, 1)
    if not following or app.mapper.to_domain_event(following[0]).timestamp > as_of + COMMIT_SLACK:
        totals = ranking_totals(read_models, date_from, date_to, as_of, COUNTS)
        return [
            {
                "department": name,
                "date_from": date_from.isoformat(),
                "date_to": date_to.isoformat(),
                **with_rates(counts),
            }
            for name, counts in sorted(totals.items())
            if any(counts[c] for c in COUNTS) and department in (None, name)
        ]
    return kpis_from_events(
        recorded_until(app.iter_all_events(), as_of),
        date_from=date_from,
        date_to=date_to,
        department=department,
        tz=app.policies.calendar.tz,
    )
