"""Monthly rankings (排名) and the streets' ratings of departments (双考), from one read model.

``ranking_counts`` counts what ``department_kpis`` counts (the same ``observe``: one way
of counting the 三率), plus the summoning units' ratings of summoned departments, keyed
also by the instant each event was recorded. A ranking "as of" an instant sums only the
rows recorded up to it, so a published ranking can be recomputed exactly later, from the
read model, without replaying the log. A rating counts on the local day it was first
given; a correction adds the new level and withdraws the previous one (``unrated_*``).

The composite score (``rank``): the 三率 under the policy's weights, normalised over the
rates a unit has (a rate with no denominator is left out, not taken as 0), scaled to
0–100; where the policy applies the streets' ratings (bureaus, utilities), the mean
rating score takes its weight and the 三率 the rest. Units with fewer dispatched
assignments than the policy's minimum are listed apart, unranked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from domain.grievance import Grievance
from domain.model import Satisfaction
from domain.policies import Policies
from domain.policies.assessment import RATE_NAMES, RankingPolicy
from domain.ratings import RatingRound
from domain.summons import ratings
from projections.db import Cursor, iso
from projections.fold import Folded, event_kind
from projections.kpis import COUNTS, with_rates
from projections.models import DepartmentKpisView
from projections.views import Prior, ReadModelView, count_columns, local_day

if TYPE_CHECKING:  # pragma: no cover
    from projections.queries import ReadModels

LEVELS = tuple(s.value for s in Satisfaction)
RATED = tuple(f"rated_{level}" for level in LEVELS)
UNRATED = tuple(f"unrated_{level}" for level in LEVELS)
RANKING_COUNTS = (*COUNTS, *RATED, *UNRATED)
SCORE_DIGITS = 2


class RankingCountsView(DepartmentKpisView):
    """ranking_counts: department_kpis' counts and the summons ratings per department, local
    day and recording instant (what a ranking as of an instant sums)."""

    projection_name = "ranking_counts"
    cost = 17
    keys = ("department", "day", "recorded")
    count_names = RANKING_COUNTS
    columns = count_columns(keys, RANKING_COUNTS)
    indexes: ClassVar = {"day": "day, recorded"}
    recorded: str

    def bump(self, department: str | None, moment: datetime | None, count: str) -> None:
        if department and moment:
            self.add((department, self.local_day_of(moment), self.recorded), count)

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        recorded = iso(event.timestamp)
        assert recorded is not None
        self.recorded = recorded
        super().observe(event, prior, folded)
        if isinstance(event, Grievance.SummonsRated):
            record = ratings(folded.grievance)[event.assignment_id]
            self.bump(event.department, record.first_at, f"rated_{event.rating}")
            if event.previous:
                self.bump(event.department, record.first_at, f"unrated_{event.previous}")


class RoundResultsView(ReadModelView):
    """round_results: each published quarterly rating round's score per department."""

    projection_name = "round_results"
    columns = (
        "round_id TEXT NOT NULL, quarter TEXT NOT NULL, department TEXT NOT NULL, "
        "score REAL NOT NULL, raters INTEGER NOT NULL, recorded TEXT NOT NULL, "
        "PRIMARY KEY (round_id, department)"
    )
    indexes: ClassVar = {"quarter": "quarter, recorded"}
    folds = False

    def apply(self, c: Cursor, events: Sequence[Any]) -> None:
        published: list[Any] = [
            e for e in events if isinstance(e, RatingRound.Event) and event_kind(e) == "Published"
        ]
        rows = [
            {
                "round_id": str(event.originator_id),
                "quarter": event.quarter,
                "department": line["department"],
                "score": float(line["score"]),
                "raters": int(line["raters"]),
                "recorded": iso(event.timestamp),
            }
            for event in published
            for line in event.results
        ]
        self.upsert(c, "round_results", ("round_id", "department"), rows)


def month_days(period: str) -> tuple[date, date]:
    """The first and last day of ``YYYY-MM``."""
    first = date.fromisoformat(f"{period}-01")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


@dataclass(frozen=True)
class Ranked:
    """One unit's line of a ranking."""

    department: str
    dispatched: int
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    three_rates_score: float | None
    street_rating: float | None
    ratings: int
    round_score: float | None
    score: float | None
    rank: int | None = None


def three_rates_score(rates: Mapping[str, Any], policy: RankingPolicy) -> float | None:
    """The 三率 under the policy's weights, over the rates present, 0–100."""
    present = {n: policy.weights[n] for n in RATE_NAMES if rates.get(n) is not None}
    total = sum(present.values())
    if total <= 0:
        return None
    return 100 * sum(w * float(rates[n]) for n, w in present.items()) / total


def street_rating(counts: Mapping[str, int], policy: RankingPolicy) -> tuple[float | None, int]:
    """The mean score of the effective ratings (given minus corrected away), and how many."""
    scores = policy.street_rating.scores
    effective = {
        level: counts.get(f"rated_{level}", 0) - counts.get(f"unrated_{level}", 0)
        for level in LEVELS
    }
    n = sum(effective.values())
    if n <= 0:
        return None, 0
    return sum(scores[level] * k for level, k in effective.items()) / n, n


def ranked_line(
    department: str,
    counts: Mapping[str, int],
    level: str,
    policy: RankingPolicy,
    round_score: float | None = None,
) -> Ranked:
    rates = with_rates(counts)
    three = three_rates_score(rates, policy)
    summons, n = street_rating(counts, policy)
    weighted = policy.street_rating
    if n < weighted.minimum_ratings:
        summons = None
    # The streets' rating: the summons ratings and the quarter's published round, the
    # round at its policy share when both are there.
    parts = [
        (v, w)
        for v, w in ((summons, 1 - weighted.round_weight), (round_score, weighted.round_weight))
        if v is not None
    ]
    rating = (
        sum(v * w for v, w in parts) / sum(w for _, w in parts)
        if parts and sum(w for _, w in parts) > 0
        else None
    )
    if level not in weighted.applies_to:
        rating = round_score = None
    if three is None or rating is None:
        score = three if rating is None else rating
    else:
        score = (1 - weighted.weight) * three + weighted.weight * rating
    return Ranked(
        department=department,
        dispatched=int(counts.get("dispatched", 0)),
        response_rate=_float(rates["response_rate"]),
        resolution_rate=_float(rates["resolution_rate"]),
        satisfaction_rate=_float(rates["satisfaction_rate"]),
        three_rates_score=_round(three),
        street_rating=_round(rating),
        ratings=n,
        round_score=_round(round_score),
        score=_round(score),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, SCORE_DIGITS)


def rank(
    totals: Mapping[str, Mapping[str, int]],
    level: str,
    policies: Policies,
    round_scores: Mapping[str, float] | None = None,
) -> tuple[list[Ranked], list[Ranked]]:
    """The units of ``level`` ranked by score (ties share a rank), and those below the
    minimum case count (or with nothing to score), apart and unranked."""
    policy = policies.rankings
    if level not in policy.levels:
        raise ValueError(level)
    kinds = policy.levels[level]
    units = [d for d in policies.directory.departments.values() if d.level in kinds]
    scores = round_scores or {}
    lines = [
        ranked_line(u.code, totals.get(u.code, {}), level, policy, scores.get(u.code))
        for u in units
    ]
    scored = [r for r in lines if r.dispatched >= policy.minimum_cases and r.score is not None]
    apart = sorted((r for r in lines if r not in scored), key=lambda r: r.department)
    scored.sort(key=lambda r: (-(r.score or 0), r.department))
    ranked: list[Ranked] = []
    for position, line in enumerate(scored, start=1):
        tied = ranked and ranked[-1].score == line.score
        number = ranked[-1].rank if tied else position
        ranked.append(Ranked(**{**line.__dict__, "rank": number}))
    return ranked, apart


def ranking_totals(
    read_models: ReadModels,
    first: date,
    last: date,
    as_of: datetime,
    counts: Sequence[str] = RANKING_COUNTS,
) -> dict[str, dict[str, int]]:
    """Per department, the ``counts`` (all by default) of the local days ``first``..``last``
    recorded up to ``as_of`` (from ``ranking_counts``, one row per recording instant: only
    the counts asked for are summed)."""
    sums = ", ".join(f"SUM({name}) AS {name}" for name in counts)
    rows = read_models._query(
        f"SELECT department, {sums} FROM {{ranking_counts}} "
        "WHERE day >= :first AND day <= :last AND recorded <= :as_of GROUP BY department",
        {"first": first.isoformat(), "last": last.isoformat(), "as_of": iso(as_of)},
    )
    return {row["department"]: {name: int(row[name] or 0) for name in counts} for row in rows}


def round_pairs(
    read_models: ReadModels, first: date, last: date, policies: Policies
) -> dict[str, list[str]]:
    """Who rates whom in a quarterly round by default: each street office, every
    department of the policy's rated levels that had an assignment (lead, assisting or
    summoned) dispatched in ``first``..``last`` on a grievance the street office also had
    one on (from ``assignment_queue``)."""
    directory = policies.directory
    rounds = policies.rounds
    on: dict[str, set[str]] = {}
    for row in read_models._query("SELECT grievance_id, department, item FROM {assignment_queue}"):
        item = json.loads(row["item"])
        day = local_day(item["dispatched_at"], read_models.tz)
        if first <= day <= last:
            on.setdefault(row["grievance_id"], set()).add(row["department"])
    pairs: dict[str, set[str]] = {}
    for departments in on.values():
        known = [directory.departments.get(code) for code in departments]
        levels = {d.code: d.level for d in known if d is not None}
        raters = [d for d, level in levels.items() if level == rounds.rater_level]
        rated = [d for d, level in levels.items() if level in rounds.rated_levels]
        for rater in raters:
            pairs.setdefault(rater, set()).update(rated)
    return {rater: sorted(rated) for rater, rated in sorted(pairs.items()) if rated}


def quarter_of(period: str) -> str:
    """``YYYY-MM`` -> ``YYYY-Qn``."""
    return f"{period[:4]}-Q{(int(period[5:7]) - 1) // 3 + 1}"


def round_scores(read_models: ReadModels, quarter: str, as_of: datetime) -> dict[str, float]:
    """Per department, its score in the quarter's round published last by ``as_of``."""
    rows = read_models._query(
        "SELECT department, score FROM {round_results} "
        "WHERE quarter = :quarter AND recorded <= :as_of ORDER BY recorded",
        {"quarter": quarter, "as_of": iso(as_of)},
    )
    return {row["department"]: float(row["score"]) for row in rows}
