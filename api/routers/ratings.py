"""Quarterly rating rounds (街道评部门): supervisors open, close and publish them; street
offices score the departments they worked with; a department sees its own published
results, never who gave which score when the policy makes the round anonymous.

The round is its own aggregate (``domain.ratings``); its clock (urge, close, publish at
the deadline) is ``workflows.rounds``, started by the relay from the round's opening.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from fastapi import APIRouter

from api.assessment_schemas import RoundOpen, RoundPublic, RoundScores
from api.deps import AnyPrincipal, AppDep, Principal, Read, ReadModelsDep, guarded
from api.problems import ProblemError
from api.routers.common import WRITE_PROBLEMS, WriterDep, problems, read_model_call
from api.schemas import EmptyRequest
from domain.model import Action, Role
from domain.ratings import QUARTER_MONTHS, OpenRound, RatingRound, RoundStep, ScoreDepartment
from projections.rankings import month_days, round_pairs

router = APIRouter(prefix="/v1/rating-rounds", tags=["supervisors"])
R = "/{round_id}"


def public(r: RatingRound, who: Principal) -> RoundPublic:
    """The round as this caller may see it: supervisors all of it; a street its own
    submissions; a rated department its own published line (no raters when anonymous)."""
    submitted = {rater: sorted(given) for rater, given in r.submissions.items()}
    raters, results = r.raters, r.results
    if who.role is Role.DEPARTMENT:
        own = who.department
        raters = {own: r.raters[own]} if own in r.raters else {}
        submitted = {own: submitted[own]} if own in submitted else {}
        results = [line for line in results or [] if line["department"] == own] or None
    return RoundPublic(
        id=str(r.id),
        quarter=r.quarter,
        status=r.status.value,
        deadline=r.deadline,
        items=r.items,
        anonymous=r.anonymous,
        raters=raters,
        submitted=submitted,
        results=results,
    )


def quarter_days(quarter: str) -> tuple[date, date]:
    first_month, last_month = QUARTER_MONTHS[quarter[5:]]
    year = quarter[:4]
    return (
        month_days(f"{year}-{first_month:02d}")[0],
        month_days(f"{year}-{last_month:02d}")[1],
    )


@router.post("", response_model=RoundPublic, responses=WRITE_PROBLEMS, **guarded(Action.OPEN_ROUND))
def open_round(body: RoundOpen, write: WriterDep, read_models: ReadModelsDep) -> RoundPublic:
    """Open a quarter's round (default: each street rates the bureaus it worked with)."""
    app = write.app
    raters = body.pairs
    if raters is None:
        first, last = quarter_days(body.quarter)
        raters = read_model_call(
            round_pairs, read_models=read_models, first=first, last=last, policies=app.policies
        )
    if not raters:
        raise ProblemError("invalid-request", message="round-without-raters", field="pairs")
    result = app.handle_round(
        OpenRound(
            actor=write.who.actor,
            command_id=write.opts.command_id,
            quarter=body.quarter,
            deadline=body.deadline,
            raters=raters,
        )
    )
    return public(app.get_round(result.round_id), write.who)


@router.post(
    R + "/scores",
    response_model=RoundPublic,
    responses=WRITE_PROBLEMS,
    **guarded(Action.SCORE_ROUND),
)
def score(round_id: UUID, body: RoundScores, write: WriterDep) -> RoundPublic:
    """A street's scores for one department (sent again while open: replaces them)."""
    write.app.handle_round(
        ScoreDepartment(
            actor=write.who.actor,
            command_id=write.opts.command_id,
            round_id=round_id,
            department=body.department,
            scores=body.scores,
            comment=body.comment,
        )
    )
    return public(write.app.get_round(round_id), write.who)


def _step(action: Action, summary: str) -> None:
    def step(round_id: UUID, write: WriterDep, body: EmptyRequest | None = None) -> RoundPublic:
        write.app.handle_round(
            RoundStep(
                actor=write.who.actor,
                command_id=write.opts.command_id,
                round_id=round_id,
                action=action,
            )
        )
        return public(write.app.get_round(round_id), write.who)

    step.__doc__ = summary
    path = R + "/" + action.value.removesuffix("_round")
    router.post(
        path,
        name=action.value,
        response_model=RoundPublic,
        responses=WRITE_PROBLEMS,
        **guarded(action),
    )(step)


_step(Action.CLOSE_ROUND, "Close the round before its deadline (its workflow then does nothing).")
_step(Action.PUBLISH_ROUND, "Publish a closed round's results.")


@router.get(
    R, response_model=RoundPublic, responses=problems(401, 403, 404, 422), **guarded(Read.RATINGS)
)
def get_round(round_id: UUID, app: AppDep, who: AnyPrincipal) -> RoundPublic:
    """The round: supervisors see it all; a department its own part."""
    return public(app.get_round(round_id), who)
