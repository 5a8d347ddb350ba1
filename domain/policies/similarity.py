"""Duplicate suggestions (重复件提示): how near, how recent and how alike two grievances must
be for one to be suggested as a duplicate of the other, and how much each likeness counts.

Data only (``similarity.json``); the scoring that reads it is ``domain.similarity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

WEIGHTS = (
    "same_grid",
    "within_radius",
    "same_community",
    "same_category",
    "category_unknown",
    "recency",
)


@dataclass(frozen=True, slots=True)
class SimilarityPolicy:
    window: timedelta  # received at most this long before or after each other
    radius_metres: float  # "near" when both have coordinates
    min_score: float  # suggestions scoring less are left out (0..1)
    limit: int  # at most this many suggestions
    weights: Mapping[str, float]  # one per name of WEIGHTS

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SimilarityPolicy:
        weights = {name: float(data["weights"][name]) for name in WEIGHTS}
        if any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError("similarity weights must be non-negative and not all zero")
        unknown = set(data["weights"]) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"unknown similarity weight(s): {', '.join(sorted(unknown))}")
        policy = cls(
            window=timedelta(hours=float(data["window_hours"])),
            radius_metres=float(data["radius_metres"]),
            min_score=float(data["min_score"]),
            limit=int(data["limit"]),
            weights=MappingProxyType(weights),
        )
        if policy.window <= timedelta(0) or policy.radius_metres < 0 or policy.limit < 1:
            raise ValueError(
                "similarity window and limit must be positive, the radius not negative"
            )
        if not 0 <= policy.min_score <= 1:
            raise ValueError("min_score must lie between 0 and 1")
        return policy

    @property
    def best_place(self) -> float:
        w = self.weights
        return max(w["same_grid"], w["within_radius"], w["same_community"])

    @property
    def best_score(self) -> float:
        """The raw score of a perfect match, which scores are divided by."""
        w = self.weights
        return self.best_place + max(w["same_category"], w["category_unknown"]) + w["recency"]
