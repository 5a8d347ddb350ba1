"""Schemas of duplicate suggestions (重复件提示): ``GET /v1/grievances/{id}/similar`` and
``GET /v1/grievances/similar`` (a grievance being typed in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import Code, Moment


class SimilarQuery(BaseModel):
    """What the operator has typed so far (query parameters). At least one of ``grid``,
    ``community`` or ``lat``+``long``; other query parameters (``lang``) pass through."""

    category: Code | None = Field(None, description="category code, if already chosen")
    district: Code | None = None
    street: Code | None = None
    community: Code | None = None
    grid: Code | None = None
    lat: float | None = Field(None, ge=-90, le=90, description="WGS84, with long")
    long: float | None = Field(None, ge=-180, le=180, description="WGS84, with lat")
    at: Moment | None = Field(None, description="when it is received (default: now)")


class SimilarityReasonPublic(BaseModel):
    """One likeness: a stable code, its parameters, and its words in the asked language."""

    code: str
    params: dict[str, Any]
    text: str


class MergeLink(BaseModel):
    """The one call that merges the two: ``POST href`` with ``body``."""

    method: Literal["POST"] = "POST"
    href: str
    body: dict[str, str]


class SimilarGrievance(BaseModel):
    grievance_id: str
    number: str | None
    status: str | None
    category: str | None
    district: str | None
    street: str | None
    community: str | None
    grid: str | None
    received_at: datetime
    score: float = Field(description="0..1, the policy's weights of the likenesses found")
    distance_metres: float | None
    reasons: list[SimilarityReasonPublic]
    explanation: str
    merge: MergeLink | None = Field(
        description="merges the later received into the earlier one; null when the rules "
        "allow neither (or the probe is not filed yet)"
    )


class SimilarPublic(BaseModel):
    grievance_id: str | None = Field(description="the grievance compared (null: a draft)")
    window_hours: float
    radius_metres: float
    min_score: float
    items: list[SimilarGrievance]
