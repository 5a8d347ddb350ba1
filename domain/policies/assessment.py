"""Assessment policy (考核): how units are ranked each month and how streets rate the
departments they work with (街道评部门, 双考).

Data only (``assessment.json``, a city's choice); the ranking's formula is
``projections.rankings``, the rating rounds' rules ``domain.ratings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.policies.sla import Window

RATE_NAMES = ("response_rate", "resolution_rate", "satisfaction_rate")


@dataclass(frozen=True, slots=True)
class StreetRatingWeight:
    """How the streets' ratings of a department enter its ranking (双考)."""

    applies_to: frozenset[str]  # ranking levels
    weight: float  # share of the composite; the 三率 share the rest
    minimum_ratings: int  # fewer summons ratings: none of them count
    round_weight: float  # the quarter's published round score's share of the street rating
    scores: dict[str, float]  # satisfaction level of a summons rating -> 0..100


@dataclass(frozen=True, slots=True)
class RankingPolicy:
    levels: dict[str, frozenset[str]]  # ranking level -> department levels in it
    weights: dict[str, float]  # rate name -> weight (normalised over the rates present)
    minimum_cases: int  # fewer dispatched assignments: listed apart, not ranked
    street_rating: StreetRatingWeight

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RankingPolicy:
        weights = {name: float(data["weights"][name]) for name in RATE_NAMES}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("ranking weights must be non-negative and not all zero")
        rating = data["street_rating"]
        weight, round_weight = float(rating["weight"]), float(rating["round_weight"])
        if not (0 <= weight <= 1 and 0 <= round_weight <= 1):
            raise ValueError("the street rating's weight and round_weight must lie in 0..1")
        return cls(
            levels={name: frozenset(levels) for name, levels in data["levels"].items()},
            weights=weights,
            minimum_cases=int(data["minimum_cases"]),
            street_rating=StreetRatingWeight(
                applies_to=frozenset(rating["applies_to"]),
                weight=weight,
                minimum_ratings=int(rating["minimum_ratings"]),
                round_weight=round_weight,
                scores={k: float(v) for k, v in rating["scores"].items()},
            ),
        )


@dataclass(frozen=True, slots=True)
class RatingItem:
    code: str
    name: str
    name_en: str


@dataclass(frozen=True, slots=True)
class RoundPolicy:
    """Quarterly rating rounds: the items each street scores, who rates whom by default."""

    items: tuple[RatingItem, ...]
    score_min: int
    score_max: int
    rater_level: str
    rated_levels: frozenset[str]
    anonymous: bool
    urge_before: Window
    max_comment: int

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RoundPolicy:
        low, high = data["score_range"]
        return cls(
            items=tuple(
                RatingItem(i["code"], i["name"], i.get("name_en", "")) for i in data["items"]
            ),
            score_min=int(low),
            score_max=int(high),
            rater_level=data["rater_level"],
            rated_levels=frozenset(data["rated_levels"]),
            anonymous=bool(data["anonymous"]),
            urge_before=Window.from_data(data["urge_before"]),
            max_comment=int(data["max_comment"]),
        )
