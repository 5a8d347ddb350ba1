"""Read models rebuilt in memory from a slice of the log, for audit ("as of" a past instant).

The same view classes the live projector runs are fed the given events in a private,
in-memory SQLite database, and the same queries read them, so the 三率 have one formula
(``projections.kpis``) and one way of counting (``DepartmentKpisView``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore

from projections.db import APPLICATION_NAME, Dialect
from projections.queries import ReadModels
from projections.registry import PROJECTIONS
from projections.runner import build_view

BATCH = 500


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
