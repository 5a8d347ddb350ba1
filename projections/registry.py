"""The projections by name: each an eventsourcing ``Projection`` with a view per backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from projections.deadlines import DeadlineRecordsView
from projections.intake import IntakeKpisView
from projections.knowledge import KnowledgeArticlesView
from projections.models import (
    AssignmentQueueView,
    CallbackQueueView,
    DepartmentKpisView,
    GrievanceSummaryView,
    HotspotsView,
)
from projections.open311 import Open311RequestsView
from projections.rankings import RankingCountsView, RoundResultsView
from projections.similar import DuplicateCandidatesView
from projections.views import PostgresReadModelView, ReadModelView, SQLiteReadModelView


class ReadModelProjection(Projection[ReadModelView]):
    """Feeds each event to its view (which writes rows and tracking in one transaction)."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.process_batch([(domain_event, tracking)])


@dataclass(frozen=True)
class ProjectionSpec:
    name: str
    projection_class: type[ReadModelProjection]
    sqlite_view: type[SQLiteReadModelView]
    postgres_view: type[PostgresReadModelView]
    description: str


def _spec(model: type[ReadModelView]) -> ProjectionSpec:
    name = model.projection_name
    stem = model.__name__.removesuffix("View")
    sqlite_view = type(f"SQLite{stem}View", (model, SQLiteReadModelView), {})
    postgres_view = type(f"Postgres{stem}View", (model, PostgresReadModelView), {})
    projection = type(stem, (ReadModelProjection,), {"name": name})
    return ProjectionSpec(
        name=name,
        projection_class=projection,
        sqlite_view=sqlite_view,
        postgres_view=postgres_view,
        description=(model.__doc__ or "").strip().splitlines()[0],
    )


PROJECTIONS: dict[str, ProjectionSpec] = {
    spec.name: spec
    for spec in map(
        _spec,
        (
            GrievanceSummaryView,
            AssignmentQueueView,
            DepartmentKpisView,
            HotspotsView,
            CallbackQueueView,
            DeadlineRecordsView,
            IntakeKpisView,
            KnowledgeArticlesView,
            DuplicateCandidatesView,
            Open311RequestsView,
            RankingCountsView,
            RoundResultsView,
        ),
    )
}


def select(names: list[str] | tuple[str, ...] | None) -> list[ProjectionSpec]:
    """The named projections (all when ``names`` is empty); unknown names raise KeyError."""
    if not names:
        return list(PROJECTIONS.values())
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown:
        raise KeyError(
            f"unknown projection(s): {', '.join(unknown)}; known: {', '.join(PROJECTIONS)}"
        )
    return [PROJECTIONS[n] for n in names]
