"""Duplicate suggestions (重复件提示) for operators: open grievances that look like the same
problem, scored and explained, each with the one call that merges it.

Read from the ``duplicate_candidates`` read model and scored by ``domain.similarity`` with
the policy of ``domain/policies/similarity.json``; no aggregate is replayed per candidate.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from api.catalogue import join, t
from api.deps import AppDep, Read, ReadModelsDep, guarded
from api.i18n import Lang, choose_language
from api.routers.common import problems, read_model_call
from api.similar_schemas import (
    MergeLink,
    SimilarGrievance,
    SimilarityReasonPublic,
    SimilarPublic,
    SimilarQuery,
)
from domain.application import GrievanceApp
from domain.errors import ValidationError
from domain.grievance import Grievance
from domain.similarity import Place, Suggestion, suggest
from projections.queries import ReadModels

router = APIRouter(prefix="/v1", tags=["operators"])


def place_of(g: Grievance) -> Place:
    """A grievance the read model has not seen yet (it was filed a moment ago)."""
    from projections.similar import point_of

    lat, long = point_of(g)
    return Place(
        received_at=g.received_at,
        grievance_id=str(g.id),
        number=g.number,
        status=g.status.value,
        category=g.category,
        lat=lat,
        long=long,
        **{k: g.location.get(k) for k in ("district", "street", "community", "grid")},
    )


def item(s: Suggestion, lang: Lang) -> SimilarGrievance:
    c = s.candidate
    assert c.grievance_id is not None
    reasons = [
        SimilarityReasonPublic(
            code=r.code, params=dict(r.params), text=t(f"similarity.{r.code}", lang, **r.params)
        )
        for r in s.reasons
    ]
    merge = None
    if s.merge is not None:
        merge = MergeLink(
            href=f"/v1/grievances/{s.merge.duplicate}/merge", body={"into": s.merge.primary}
        )
    place = {k: v for k, v in asdict(c).items() if k in SimilarGrievance.model_fields}
    return SimilarGrievance(
        **place,
        score=s.score,
        distance_metres=s.distance_metres,
        reasons=reasons,
        explanation=join((r.text for r in reasons), lang),
        merge=merge,
    )


def answer(app: GrievanceApp, read_models: ReadModels, probe: Place, lang: Lang) -> SimilarPublic:
    policy = app.policies.similarity
    found = read_model_call(read_models.duplicate_candidates, probe=probe, policy=policy)
    return SimilarPublic(
        grievance_id=probe.grievance_id,
        window_hours=policy.window.total_seconds() / 3600,
        radius_metres=policy.radius_metres,
        min_score=policy.min_score,
        items=[item(s, lang) for s in suggest(probe, found, policy)],
    )


@router.get(
    "/grievances/similar",
    response_model=SimilarPublic,
    responses=problems(401, 403, 422),
    **guarded(Read.GRIEVANCES),
)
def similar_to_draft(
    app: AppDep,
    read_models: ReadModelsDep,
    request: Request,
    draft: Annotated[SimilarQuery, Query()],
) -> SimilarPublic:
    """Possible duplicates of a grievance being typed in (call it as the place is entered)."""
    if (draft.lat is None) != (draft.long is None):
        raise ValidationError("required", field="long" if draft.long is None else "lat")
    if not (draft.grid or draft.community or draft.lat is not None):
        raise ValidationError("required", field="grid")
    if draft.category is not None and draft.category not in app.policies.categories.by_code:
        raise ValidationError("unknown-category", field="category", category=draft.category)
    at: datetime = draft.at or app.clock()
    fields = draft.model_dump(exclude={"at"})
    return answer(app, read_models, Place(received_at=at, **fields), choose_language(request))


@router.get(
    "/grievances/{grievance_id}/similar",
    response_model=SimilarPublic,
    responses=problems(401, 403, 404, 422),
    **guarded(Read.GRIEVANCES),
)
def similar_to_grievance(
    grievance_id: UUID, app: AppDep, read_models: ReadModelsDep, request: Request
) -> SimilarPublic:
    """Possible duplicates of a grievance: open ones alike in place, category and time."""
    probe = read_model_call(read_models.similarity_place, grievance_id=grievance_id)
    if probe is None:  # not projected yet (or no such grievance: 404)
        probe = place_of(app.get_grievance(grievance_id))
    return answer(app, read_models, probe, choose_language(request))
