"""Request and response schemas of assessment (考核): the rating after a 吹哨, the monthly
rankings and the quarterly rating rounds (街道评部门)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import AssignmentId, Code, Moment, Reason, Request, _example
from domain.model import Satisfaction


class RateSummonedRequest(Request):
    """The summoning unit's rating of one summoned department (a reason for 不满意)."""

    assignment_id: AssignmentId
    rating: Satisfaction
    reason: Reason | None = None
    model_config = _example(
        {"assignment_id": "<grievance id>.4", "rating": "unsatisfied", "reason": "报到后未到场"}
    )


class RankingRates(BaseModel):
    """One unit's counts, rates, street rating and composite score for the month."""

    department: str
    name: str
    dispatched: int
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    three_rates_score: float | None = Field(
        description="the 三率 under the policy's weights (0–100), over the rates present"
    )
    street_rating: float | None = Field(
        None, description="the streets' ratings of it (0–100), where the policy applies them"
    )
    ratings: int = Field(0, description="how many summons ratings the street rating averages")
    round_score: float | None = Field(
        None, description="its score in the quarter's published rating round (0–100)"
    )
    score: float | None = Field(description="the composite score ranked on (0–100)")
    rank: int | None = None


class RankingPublic(BaseModel):
    period: str
    level: str
    as_of: datetime = Field(description="counted from what was recorded up to this instant")
    weights: dict[str, float]
    street_rating_weight: float
    minimum_cases: int
    ranked: list[RankingRates]
    below_minimum: list[RankingRates] = Field(
        description="units with fewer dispatched assignments than the minimum: not ranked"
    )


class RoundOpen(Request):
    """Open a quarterly rating round: which streets rate which departments (default:
    every street rates every district bureau it worked with that quarter)."""

    quarter: str = Field(pattern=r"^(19|20)\d{2}-Q[1-4]$", examples=["2026-Q4"])
    deadline: Moment
    pairs: dict[Code, list[Code]] | None = Field(
        None, description="street office code -> the departments it rates (default: derived)"
    )
    model_config = _example({"quarter": "2026-Q4", "deadline": "2027-01-15T18:00:00+08:00"})


class RoundScores(Request):
    """One street's scores for one department, item by item (the policy's items)."""

    department: Code
    scores: dict[Code, int]
    comment: Reason | None = None
    model_config = _example(
        {
            "department": "hd.urban",
            "scores": {"responsiveness": 90, "cooperation": 85, "effectiveness": 80},
            "comment": "吹哨后到场及时",
        }
    )


class RoundPublic(BaseModel):
    id: str
    quarter: str
    status: str
    deadline: datetime
    items: list[str]
    anonymous: bool
    raters: dict[str, list[str]] = Field(description="street -> departments it rates")
    submitted: dict[str, list[str]] = Field(description="street -> departments it has rated")
    results: list[dict[str, Any]] | None = None
