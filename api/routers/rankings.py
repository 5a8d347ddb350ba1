"""Monthly rankings (排名) of streets, district bureaus and utilities: the 三率 and, for
departments, the streets' ratings (双考), under the weights of the assessment policy.

Served from the ``ranking_counts`` read model (``projections.rankings``), never by
replaying the log; ``as_of`` sums what was recorded up to that instant, so a published
ranking is reproduced exactly by asking again with its ``as_of``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.assessment_schemas import RankingPublic, RankingRates
from api.catalogue import department_name
from api.deps import AnyPrincipal, AppDep, Read, ReadModelsDep, guarded
from api.i18n import choose_language
from api.routers.common import READ_PROBLEMS, read_model_call
from api.schemas import Moment
from domain.model import Role
from projections.rankings import (
    Ranked,
    month_days,
    quarter_of,
    rank,
    ranking_totals,
    round_scores,
)

router = APIRouter(prefix="/v1", tags=["supervisors"])

Period = Annotated[
    str, Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="the month, `YYYY-MM`")
]


@router.get(
    "/rankings", response_model=RankingPublic, responses=READ_PROBLEMS, **guarded(Read.RANKINGS)
)
def rankings(
    app: AppDep,
    read_models: ReadModelsDep,
    request: Request,
    who: AnyPrincipal,
    period: Period,
    level: Annotated[Literal["street", "bureau", "enterprise"], Query()] = "street",
    as_of: Annotated[
        Moment | None,
        Query(description="count what was recorded up to this instant (default: now)"),
    ] = None,
) -> RankingPublic:
    """排名: units ranked by the composite of 三率 (and streets' ratings) for a month; a
    department: its own line, among its own level."""
    policy = app.policies.rankings
    directory = app.policies.directory
    own = who.department if who.role is Role.DEPARTMENT else None
    if own is not None:
        kind = directory.department(own).level
        level = next((name for name, kinds in policy.levels.items() if kind in kinds), level)
    # Events are stamped with the wall clock when recorded: "now" is what was recorded so far.
    moment: datetime = as_of or datetime.now(UTC)
    first, last = month_days(period)
    totals = read_model_call(
        ranking_totals, read_models=read_models, first=first, last=last, as_of=moment
    )
    rounds = read_model_call(
        round_scores, read_models=read_models, quarter=quarter_of(period), as_of=moment
    )
    ranked, apart = rank(totals, level, app.policies, rounds)
    if own is not None:
        ranked = [r for r in ranked if r.department == own]
        apart = [r for r in apart if r.department == own]
    lang = choose_language(request)

    def line(r: Ranked) -> RankingRates:
        return RankingRates(name=department_name(r.department, lang, directory), **r.__dict__)

    return RankingPublic(
        period=period,
        level=level,
        as_of=moment,
        weights=dict(policy.weights),
        street_rating_weight=policy.street_rating.weight
        if level in policy.street_rating.applies_to
        else 0.0,
        minimum_cases=policy.minimum_cases,
        ranked=[line(r) for r in ranked],
        below_minimum=[line(r) for r in apart],
    )
