"""Prometheus figures read from the read models at scrape time.

Two collectors, both computed when Prometheus scrapes (never on the request path) and
tolerant of a store that is down (``closeloop_read_models_up`` 0, no exception):

- ``ProjectionLagCollector``: how far each projection is behind the event log, in
  events and in seconds (the age of the oldest event it has not applied yet);
- ``supervisor_figures``: open grievances by status and overdue deadlines by kind,
  for the ``GrievanceCollector`` the API serves.

No personal data in labels: projection names, statuses and deadline kinds only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.log_age import EventAges
from domain.model import FINAL_STATUSES, DeadlineKind, Status
from projections.db import iso
from projections.queries import ReadModels

T = TypeVar("T")

OPEN_STATUSES = tuple(s.value for s in Status if s not in FINAL_STATUSES)


def supervisor_figures(
    read_models: ReadModels, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """(open grievances by status, overdue open deadlines by kind) as of ``now``."""
    by_status = dict.fromkeys(OPEN_STATUSES, 0)
    for row in read_models._query(
        "SELECT status, count(*) AS n FROM {grievance_summary} GROUP BY status"
    ):
        if row["status"] in by_status:
            by_status[row["status"]] = int(row["n"])
    overdue = {kind.value: 0 for kind in DeadlineKind}
    cutoff = iso(now)
    # next_deadline is the earliest open deadline: only those rows can hold overdue ones.
    for row in read_models._query(
        "SELECT item FROM {grievance_summary} WHERE next_deadline < :now", {"now": cutoff}
    ):
        for deadline in json.loads(row["item"]).get("deadlines", []):
            if deadline["due"] < cutoff:
                overdue[deadline["kind"]] = overdue.get(deadline["kind"], 0) + 1
    return by_status, overdue


def answered(
    name: str, documentation: str, read: Callable[[], T]
) -> tuple[GaugeMetricFamily, T | None]:
    """``read()`` and the ``up`` gauge saying whether it answered (1) or raised (0):
    a store that is down must not fail the whole scrape."""
    up = GaugeMetricFamily(name, documentation)
    try:
        value = read()
    except Exception:
        up.add_metric([], 0)
        return up, None
    up.add_metric([], 1)
    return up, value


class GrievanceCollector(Collector):
    """Gauges a supervisor cares about, from ``grievance_summary``."""

    def __init__(
        self,
        read_models: Callable[[], ReadModels | None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._read_models = read_models
        self._clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # values are read at scrape time; do not call collect() on register

    def collect(self) -> Iterator[GaugeMetricFamily]:
        read_models = self._read_models()
        if read_models is None:
            return
        up, figures = answered(
            "closeloop_read_models_up",
            "1 when the read models answered this scrape",
            lambda: supervisor_figures(read_models, self._clock()),
        )
        yield up
        if figures is None:
            return
        by_status, overdue = figures
        open_ = GaugeMetricFamily(
            "closeloop_grievances_open", "Grievances not yet final, by status", labels=["status"]
        )
        for status, count in by_status.items():
            open_.add_metric([status], count)
        yield open_
        late = GaugeMetricFamily(
            "closeloop_deadlines_overdue",
            "Open deadlines already past due, by kind",
            labels=["kind"],
        )
        for kind, count in overdue.items():
            late.add_metric([kind], count)
        yield late


class ProjectionLagCollector(Collector):
    """Each projection's position and lag (events, seconds) behind the event log.

    ``read_models`` gives the status (``ReadModels.status()``); ``mapper`` decodes the
    oldest pending event to find its age (the GrievanceApp's mapper)."""

    def __init__(self, read_models: ReadModels, mapper: Any) -> None:
        self._read_models = read_models
        self._ages = EventAges(read_models._events, mapper)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up, figures = answered(
            "closeloop_projections_up",
            "1 when the projections' positions could be read",
            self._status_and_ages,
        )
        yield up
        if figures is not None:
            yield from projection_families(*figures)

    def _status_and_ages(self) -> tuple[dict[str, dict[str, int | None]], dict[str, float]]:
        status = self._read_models.status()
        now = time.time()
        ages = {
            name: self._ages.lag_seconds(
                int(row["position"] or 0), int(row["max_notification_id"] or 0), now
            )
            for name, row in status.items()
        }
        return status, ages


def projection_families(
    status: Mapping[str, Mapping[str, int | None]], ages: Mapping[str, float]
) -> Iterator[GaugeMetricFamily]:
    position = GaugeMetricFamily(
        "closeloop_projection_position",
        "Last notification id applied, by projection",
        labels=["projection"],
    )
    newest = GaugeMetricFamily(
        "closeloop_event_log_max_notification_id", "Newest notification id in the event log"
    )
    lag = GaugeMetricFamily(
        "closeloop_projection_lag_events",
        "Events recorded but not yet applied, by projection",
        labels=["projection"],
    )
    lag_seconds = GaugeMetricFamily(
        "closeloop_projection_lag_seconds",
        "Age of the oldest event not yet applied (0 when caught up), by projection",
        labels=["projection"],
    )
    max_id = 0
    for name, row in status.items():
        position.add_metric([name], int(row["position"] or 0))
        lag.add_metric([name], int(row["lag"] or 0))
        lag_seconds.add_metric([name], round(ages.get(name, 0.0), 3))
        max_id = max(max_id, int(row["max_notification_id"] or 0))
    newest.add_metric([], max_id)
    yield from (position, newest, lag, lag_seconds)


def projection_lag_collector(
    app_env: Mapping[str, str],
) -> tuple[ProjectionLagCollector, Callable[[], None]]:
    """A lag collector for ``closeloop project`` and how to close it.

    Its own small pool (one connection, one more under load), and an in-memory
    GrievanceApp only for its mapper (to decode an event's timestamp)."""
    from domain.application import GrievanceApp

    small = {**app_env, "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"}
    read_models = ReadModels.from_env(small)
    decoder = GrievanceApp({**app_env, "PERSISTENCE_MODULE": "eventsourcing.popo"})

    def close() -> None:
        read_models.close()
        decoder.close()

    return ProjectionLagCollector(read_models, decoder.mapper), close
