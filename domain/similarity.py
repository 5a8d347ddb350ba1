"""Duplicate suggestions (重复件提示): which open grievances look like the same problem.

Pure scoring over what a read model keeps of each grievance (``Place``): two grievances
are alike when they are at the same grid or community, or within the policy's radius
when both have coordinates; of the same category, or one of them not classified yet; and
received within the policy's window of each other. The score adds the policy's weights
of the likenesses found (the best place likeness only, the recency share decaying over
the window) and divides by a perfect match's, so it lies in 0..1. Each suggestion
explains itself with reason codes and parameters (``same-grid``, ``hours-earlier`` …),
which the outer layers put in words, and names the merge that would join the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.model import FINAL_STATUSES, Action, Status
from domain.policies.similarity import SimilarityPolicy
from domain.rules import STATUS_ACTIONS

EARTH_RADIUS_METRES = 6_371_008.8  # the mean radius (IUGG)
SCORE_DIGITS = 3


@dataclass(frozen=True, slots=True)
class Place:
    """What suggesting duplicates compares of one grievance (or of one being typed in)."""

    received_at: datetime
    grievance_id: str | None = None  # None: a grievance not filed yet
    number: str | None = None
    status: str | None = None  # a ``Status`` value
    category: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    lat: float | None = None
    long: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status is None or Status(self.status) not in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Likeness:
    """One likeness, as a catalogue code (section ``similarity``) with its parameters."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Merge:
    """The merge that would join two alike grievances: ``duplicate`` into ``primary``."""

    duplicate: str
    primary: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    candidate: Place
    score: float  # 0..1
    reasons: tuple[Likeness, ...]
    distance_metres: float | None  # when both have coordinates
    merge: Merge | None  # None when the rules allow neither direction (or one is not filed)


def distance_metres(a: Place, b: Place) -> float | None:
    """Great-circle (haversine) distance between two places with coordinates."""
    if a.lat is None or a.long is None or b.lat is None or b.long is None:
        return None
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.long - a.long)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_METRES * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(place: Place, radius_metres: float) -> tuple[float, float, float, float] | None:
    """(lat_min, lat_max, long_min, long_max) around a point: what a read model's index
    narrows candidates to before the exact distance is checked."""
    if place.lat is None or place.long is None:
        return None
    dlat = math.degrees(radius_metres / EARTH_RADIUS_METRES)
    cos_lat = max(math.cos(math.radians(place.lat)), 1e-6)
    dlong = min(180.0, dlat / cos_lat)
    return place.lat - dlat, place.lat + dlat, place.long - dlong, place.long + dlong


def age_reason(probe: Place, candidate: Place) -> Likeness:
    """When the candidate was received relative to the probe: ``2 h earlier`` …"""
    delta = candidate.received_at - probe.received_at
    side = "later" if delta > timedelta(0) else "earlier"
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        return Likeness(f"minutes-{side}", {"minutes": max(1, int(seconds // 60))})
    if seconds < 48 * 3600:
        return Likeness(f"hours-{side}", {"hours": int(seconds // 3600)})
    return Likeness(f"days-{side}", {"days": int(seconds // 86400)})


def _place_likeness(
    probe: Place, candidate: Place, policy: SimilarityPolicy, distance: float | None
) -> tuple[float, Likeness] | None:
    """The strongest way the two are at the same place, with its weight."""
    w = policy.weights
    found: list[tuple[float, Likeness]] = []
    if probe.grid and probe.grid == candidate.grid:
        found.append((w["same_grid"], Likeness("same-grid", {"grid": probe.grid})))
    if distance is not None and distance <= policy.radius_metres:
        metres = round(distance)
        found.append((w["within_radius"], Likeness("within-distance", {"metres": metres})))
    if probe.community and probe.community == candidate.community:
        reason = Likeness("same-community", {"community": probe.community})
        found.append((w["same_community"], reason))
    if not found:
        return None
    return max(found, key=lambda item: item[0])


def _category_likeness(
    probe: Place, candidate: Place, policy: SimilarityPolicy
) -> tuple[float, Likeness] | None:
    if probe.category is None or candidate.category is None:
        return policy.weights["category_unknown"], Likeness("category-unknown")
    if probe.category == candidate.category:
        return policy.weights["same_category"], Likeness(
            "same-category", {"category": probe.category}
        )
    return None


def merge_of(a: Place, b: Place) -> Merge | None:
    """The later received joins the earlier one (the other way round when only that is
    allowed): the duplicate's status must allow ``merge``, the primary must not be final."""
    if a.grievance_id is None or b.grievance_id is None:
        return None
    # Case numbers are sequential: they order two grievances received in the same instant.
    earlier, later = sorted((a, b), key=lambda p: (p.received_at, p.number or "", p.grievance_id))
    for duplicate, primary in ((later, earlier), (earlier, later)):
        mergeable = (
            duplicate.status is None or Action.MERGE in STATUS_ACTIONS[Status(duplicate.status)]
        )
        if mergeable and primary.is_open:
            assert duplicate.grievance_id is not None and primary.grievance_id is not None
            return Merge(duplicate.grievance_id, primary.grievance_id)
    return None


def match(probe: Place, candidate: Place, policy: SimilarityPolicy) -> Suggestion | None:
    """The candidate as a suggestion for ``probe``, or None when they are not alike enough."""
    if not candidate.is_open or (
        probe.grievance_id is not None and candidate.grievance_id == probe.grievance_id
    ):
        return None
    age = abs(candidate.received_at - probe.received_at)
    if age > policy.window:
        return None
    distance = distance_metres(probe, candidate)
    place = _place_likeness(probe, candidate, policy, distance)
    category = _category_likeness(probe, candidate, policy)
    if place is None or category is None:
        return None
    recency = policy.weights["recency"] * (1 - age / policy.window)
    score = round((place[0] + category[0] + recency) / policy.best_score, SCORE_DIGITS)
    if score < policy.min_score:
        return None
    return Suggestion(
        candidate=candidate,
        score=score,
        reasons=(place[1], category[1], age_reason(probe, candidate)),
        distance_metres=None if distance is None else round(distance, 1),
        merge=merge_of(probe, candidate),
    )


def suggest(
    probe: Place, candidates: Iterable[Place], policy: SimilarityPolicy
) -> list[Suggestion]:
    """The best-scoring alike candidates, best first (then the most recently received)."""
    found = [s for c in candidates if (s := match(probe, c, policy)) is not None]
    found.sort(
        key=lambda s: (
            -s.score,
            -s.candidate.received_at.timestamp(),
            s.candidate.grievance_id or "",
        )
    )
    return found[: policy.limit]
