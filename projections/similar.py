"""duplicate_candidates: what suggesting duplicates compares of each grievance, indexed.

One row per grievance: its status (``is_open`` while not final), category, place codes,
coordinates (from the channel's structured intake, ``domain.intake``) and receipt instant.
Candidates for a probe are narrowed by the indexes (same grid, same community, or a
bounding box of the radius, inside the window) and scored by ``domain.similarity``; no
aggregate is replayed to answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from domain.grievance import Grievance
from domain.model import FINAL_STATUSES
from domain.policies.similarity import SimilarityPolicy
from domain.similarity import Place, bounding_box
from projections.db import Cursor, iso, parse_iso
from projections.fold import Folded, State
from projections.views import Prior, ReadModelView

Query = Callable[[str, dict[str, Any]], list[dict[str, Any]]]

# At most this many rows are scored per probe (the newest first): a place with more open
# grievances in one window than this is a hotspot, and its newest are the ones to show.
MAX_CANDIDATES = 500

_FINAL = frozenset(s.value for s in FINAL_STATUSES)
_COLUMNS = (
    "grievance_id, number, status, category, district, street, community, grid, "
    "lat, lon, received_at"
)


def point_of(grievance: Grievance) -> tuple[float | None, float | None]:
    """The coordinates a channel gave at intake, if any."""
    intake = getattr(grievance, "intake", None) or {}
    point = intake.get("point") if isinstance(intake, dict) else None
    if not isinstance(point, dict):
        return None, None
    lat, long = point.get("lat"), point.get("long")
    if isinstance(lat, int | float) and isinstance(long, int | float):
        return float(lat), float(long)
    return None, None


class DuplicateCandidatesView(ReadModelView):
    """duplicate_candidates: each grievance's place, category and receipt, for duplicates."""

    projection_name = "duplicate_candidates"
    cost = 8
    columns = (
        "grievance_id TEXT PRIMARY KEY, number TEXT NOT NULL, status TEXT NOT NULL, "
        "is_open INTEGER NOT NULL, category TEXT, district TEXT, street TEXT, "
        "community TEXT, grid TEXT, lat DOUBLE PRECISION, lon DOUBLE PRECISION, "
        "received_at TEXT NOT NULL"
    )
    indexes: ClassVar = {
        "grid": "is_open, grid, received_at",
        "community": "is_open, community, received_at",
        "lat": "is_open, lat",
    }

    # Coordinates are not in the rows' shared state: the view keeps each batch's
    # grievances as it sees their events.
    observes = True
    points: dict[str, tuple[float | None, float | None]]

    def begin(self) -> None:
        self.points = {}

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        self.points[folded.key] = point_of(folded.grievance)

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        rows = []
        for before, after in changes:
            if before is not None and _unchanged(before, after):
                continue
            lat, lon = self.points.get(after["id"], (None, None))
            location = after["location"]
            rows.append(
                {
                    "grievance_id": after["id"],
                    "number": after["number"],
                    "status": after["status"],
                    "is_open": 0 if after["status"] in _FINAL else 1,
                    "category": after["category"],
                    "district": location.get("district"),
                    "street": location.get("street"),
                    "community": location.get("community"),
                    "grid": location.get("grid"),
                    "lat": lat,
                    "lon": lon,
                    "received_at": after["received_at"],
                }
            )
        self.points = {}
        self.upsert(c, self.projection_name, ("grievance_id",), rows)


def _unchanged(before: State, after: State) -> bool:
    return all(before[k] == after[k] for k in ("status", "category", "location"))


def place_of_row(row: dict[str, Any]) -> Place:
    received = parse_iso(row["received_at"])
    assert received is not None
    return Place(
        received_at=received,
        grievance_id=row["grievance_id"],
        number=row["number"],
        status=row["status"],
        category=row["category"],
        district=row["district"],
        street=row["street"],
        community=row["community"],
        grid=row["grid"],
        lat=row["lat"],
        long=row["lon"],
    )


def place(query: Query, grievance_id: str) -> Place | None:
    """One grievance as the read model keeps it (None when it has not seen it yet)."""
    found = query(
        f"SELECT {_COLUMNS} FROM {{duplicate_candidates}} WHERE grievance_id = :id",
        {"id": grievance_id},
    )
    return place_of_row(found[0]) if found else None


def candidates(query: Query, probe: Place, policy: SimilarityPolicy) -> list[Place]:
    """Open grievances at the probe's grid or community or inside the radius's bounding
    box, of its category or unclassified, received within the window of it."""
    near: list[str] = []
    params: dict[str, Any] = {
        "since": _text(probe.received_at - policy.window),
        "until": _text(probe.received_at + policy.window),
        "id": probe.grievance_id or "",
        "cap": MAX_CANDIDATES,
    }
    if probe.grid:
        near.append("grid = :grid")
        params["grid"] = probe.grid
    if probe.community:
        near.append("community = :community")
        params["community"] = probe.community
    box = bounding_box(probe, policy.radius_metres)
    if box is not None:
        near.append("(lat BETWEEN :lat0 AND :lat1 AND lon BETWEEN :lon0 AND :lon1)")
        params.update(zip(("lat0", "lat1", "lon0", "lon1"), box, strict=True))
    if not near:
        return []
    category = ""
    if probe.category is not None:
        category = " AND (category = :category OR category IS NULL)"
        params["category"] = probe.category
    found = query(
        f"SELECT {_COLUMNS} FROM {{duplicate_candidates}} "
        f"WHERE is_open = 1 AND ({' OR '.join(near)}) "
        "AND received_at >= :since AND received_at <= :until "
        f"AND grievance_id <> :id{category} "
        "ORDER BY received_at DESC LIMIT :cap",
        params,
    )
    return [place_of_row(row) for row in found]


def _text(moment: datetime) -> str:
    text = iso(moment)
    assert text is not None
    return text
