"""Quarterly rating rounds (街道评部门): each street office scores the departments it worked
with, item by item (the policy's items, e.g. 响应速度, 协同配合, 解决实效).

A ``RatingRound`` is its own event-sourced aggregate in the grievances' event store:
opened by a supervisor (quarter, deadline, who rates whom), scored by the streets (a
street may send a department's scores again while the round is open: the later
replaces the earlier), urged and closed at its deadline by the workflow
(``workflows.rounds``) or by a supervisor, then published: per department the mean of
each item and overall, how many streets rated it and, when the policy says ratings are
anonymous, the comments without who wrote them. The statuses each command needs are
``domain.rules.ROUND_STATUS_ACTIONS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from domain.commands import Command
from domain.errors import RoundNotFoundError, RoundStateError, ValidationError
from domain.guards import check_role
from domain.model import Action, Actor, Role, Stamp, clean_text, utc
from domain.model import RoundStatus as RoundStatus  # re-exported: the round's status
from domain.rules import ROUND_STATUS_ACTIONS

if TYPE_CHECKING:  # pragma: no cover
    from domain.application import GrievanceApp

_ROUND_IDS = uuid5(NAMESPACE_URL, "https://closeloop.invalid/rating-rounds")
QUARTER_MONTHS = {"Q1": (1, 3), "Q2": (4, 6), "Q3": (7, 9), "Q4": (10, 12)}
_QUARTER = re.compile(r"[0-9]{4}-Q[1-4]")  # e.g. 2026-Q4


# ------------------------------------------------------------------ commands


@dataclass(frozen=True, kw_only=True)
class RoundCommand(Command):
    """A command about one rating round (``handle_round`` runs it, not ``GrievanceApp.handle``);
    ``round_id`` is None when opening one."""

    round_id: UUID | None = None


@dataclass(frozen=True, kw_only=True)
class OpenRound(RoundCommand):
    """A supervisor opens a round: ``raters`` maps each street office to the departments
    it rates (the API derives the default from the quarter's assignments)."""

    quarter: str
    deadline: datetime
    raters: dict[str, list[str]]


@dataclass(frozen=True, kw_only=True)
class ScoreDepartment(RoundCommand):
    """A street's scores for one department, item by item, with an optional comment."""

    department: str
    scores: dict[str, int]
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class RoundStep(RoundCommand):
    """Urge the streets that have not scored everything, close, or publish."""

    action: Action


@dataclass(frozen=True)
class RoundResult:
    round_id: UUID
    version: int
    status: str
    replayed: bool = False
    recorded: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------- aggregate


class RatingRound(Aggregate):
    """街道评部门 for one quarter."""

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return round_id_for(command_id)

    @event("Opened")
    def __init__(
        self,
        quarter: str,
        deadline: datetime,
        urge_at: datetime,
        items: list[str],
        anonymous: bool,
        raters: dict[str, list[str]],
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
    ) -> None:
        self.quarter, self.deadline, self.urge_at = quarter, deadline, urge_at
        self.items, self.anonymous, self.raters = items, anonymous, raters
        self.opened_by, self.opened_at = principal, at
        self.status = RoundStatus.OPEN
        # rater -> department -> {"scores", "comment", "at", "revision"}
        self.submissions: dict[str, dict[str, dict[str, Any]]] = {}
        self.urged: list[list[str]] = []
        self.results: list[dict[str, Any]] | None = None
        self.applied_commands: dict[str, int] = {command_id: 1}

    # Every event after Opened carries who, when and which command (``meta``); the
    # command id maps to the version it made, for repeats.

    @event("Scored")
    def _scored(
        self,
        rater: str,
        department: str,
        scores: dict[str, int],
        comment: str | None,
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
    ) -> None:
        given = self.submissions.setdefault(rater, {})
        revision = given.get(department, {}).get("revision", 0) + 1
        given[department] = {
            "scores": dict(scores),
            "comment": comment,
            "at": at,
            "revision": revision,
        }
        self.applied_commands[command_id] = self.version + 1

    @event("Urged")
    def _urged(
        self, raters: list[str], principal: str, role: str, at: datetime, command_id: str
    ) -> None:
        """``raters``: the streets that had not scored every department."""
        self.urged.append(list(raters))
        self.applied_commands[command_id] = self.version + 1

    @event("Closed")
    def _closed(
        self,
        missing: dict[str, list[str]],
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
    ) -> None:
        """``missing``: per street, the departments it never scored."""
        self.status = RoundStatus.CLOSED
        self.applied_commands[command_id] = self.version + 1

    @event("Published")
    def _published(
        self,
        quarter: str,
        results: list[dict[str, Any]],
        principal: str,
        role: str,
        at: datetime,
        command_id: str,
    ) -> None:
        """``quarter``: the round's, so a read model of results needs no other event."""
        self.status = RoundStatus.PUBLISHED
        self.results = results
        self.applied_commands[command_id] = self.version + 1

    def missing(self) -> dict[str, list[str]]:
        """Per street, the departments it has not scored yet."""
        found = {
            rater: [d for d in departments if d not in self.submissions.get(rater, {})]
            for rater, departments in self.raters.items()
        }
        return {rater: departments for rater, departments in found.items() if departments}

    def tally(self) -> list[dict[str, Any]]:
        """Per department: each item's mean, the overall mean, how many streets scored it,
        and the comments (with who wrote them only when the round is not anonymous)."""
        per: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for rater, given in sorted(self.submissions.items()):
            for department, submission in given.items():
                per.setdefault(department, []).append((rater, submission))
        results = []
        for department, submissions in sorted(per.items()):
            means = {
                item: round(fmean(s["scores"][item] for _, s in submissions), 2)
                for item in self.items
            }
            comments = [
                {"comment": s["comment"], **({} if self.anonymous else {"rater": rater})}
                for rater, s in submissions
                if s["comment"]
            ]
            results.append(
                {
                    "department": department,
                    "raters": len(submissions),
                    "items": means,
                    "score": round(fmean(means.values()), 2),
                    "comments": comments,
                }
            )
        return results


# ------------------------------------------------------------------ pipeline


def round_id_for(command_id: str) -> UUID:
    return uuid5(_ROUND_IDS, command_id)


def get_round(app: GrievanceApp, round_id: UUID) -> RatingRound:
    try:
        found: Any = app.repository.get(round_id)
    except AggregateNotFoundError:
        raise RoundNotFoundError(round_id=str(round_id)) from None
    if not isinstance(found, RatingRound):
        raise RoundNotFoundError(round_id=str(round_id))
    return found


def _ensure(r: RatingRound, action: Action, actor: Actor) -> None:
    check_role(action, actor)
    if action not in ROUND_STATUS_ACTIONS[r.status]:
        code = "round-not-closed" if action is Action.PUBLISH_ROUND else "round-not-open"
        raise RoundStateError(code, action=action, quarter=r.quarter)


def handle_round(app: GrievanceApp, command: RoundCommand) -> RoundResult:
    """The round's pipeline: check, load, repeated command id, decide, save."""
    stamp = app.stamp(command)
    command_id = stamp.command_id
    if isinstance(command, OpenRound):
        return _open(app, command, stamp)
    assert command.round_id is not None
    r = get_round(app, command.round_id)
    if command_id in r.applied_commands:
        return RoundResult(r.id, r.applied_commands[command_id], r.status.value, replayed=True)
    if isinstance(command, ScoreDepartment):
        _score(app, r, command, stamp)
    else:
        assert isinstance(command, RoundStep)
        accepted = ROUND_STATUS_ACTIONS[r.status]
        if command.actor.role is Role.SYSTEM and command.action not in accepted:
            # The workflow's step after a supervisor's: nothing left to do.
            return RoundResult(r.id, r.version, r.status.value, recorded=False)
        _ensure(r, command.action, command.actor)
        who = stamp.fields()
        if command.action is Action.URGE_ROUND:
            r._urged(raters=sorted(r.missing()), **who)
        elif command.action is Action.CLOSE_ROUND:
            r._closed(missing=r.missing(), **who)
        else:
            r._published(quarter=r.quarter, results=r.tally(), **who)
    app._save(r)
    return RoundResult(r.id, r.version, r.status.value)


def _open(app: GrievanceApp, cmd: OpenRound, stamp: Stamp) -> RoundResult:
    check_role(Action.OPEN_ROUND, cmd.actor)
    at = stamp.at
    if not _QUARTER.fullmatch(cmd.quarter):
        raise ValidationError("not-one-of", field="quarter", value=cmd.quarter, allowed=["YYYY-Q1"])
    deadline = utc(cmd.deadline)
    if deadline <= at:
        raise ValidationError("deadline-not-later", field="deadline", deadline=at, value=deadline)
    policy = app.policies.rounds
    directory = app.policies.directory
    raters: dict[str, list[str]] = {}
    for rater, departments in sorted(cmd.raters.items()):
        if directory.department(rater).level != policy.rater_level:
            raise ValidationError(
                "not-one-of", field="raters", value=rater, allowed=[policy.rater_level]
            )
        for code in departments:
            directory.department(code)
        raters[rater] = sorted(set(departments))
    if not any(raters.values()):
        raise ValidationError("required", field="raters")
    urge_at = max(at, deadline - (policy.urge_before.after(at, app.policies.calendar) - at))
    r = RatingRound(
        quarter=cmd.quarter,
        deadline=deadline,
        urge_at=urge_at,
        items=[item.code for item in policy.items],
        anonymous=policy.anonymous,
        raters=raters,
        **stamp.fields(),
    )
    try:
        app.save(r)
    except IntegrityError:
        stored = get_round(app, r.id)
        return RoundResult(stored.id, 1, stored.status.value, replayed=True)
    return RoundResult(r.id, r.version, r.status.value)


def _score(app: GrievanceApp, r: RatingRound, cmd: ScoreDepartment, stamp: Stamp) -> None:
    _ensure(r, Action.SCORE_ROUND, cmd.actor)
    rater = cmd.actor.department or ""
    if cmd.department not in r.raters.get(rater, []):
        raise ValidationError(
            "not-one-of", field="department", value=cmd.department, allowed=r.raters.get(rater, [])
        )
    policy = app.policies.rounds
    if sorted(cmd.scores) != sorted(r.items):
        raise ValidationError(
            "not-one-of", field="scores", value=sorted(cmd.scores), allowed=r.items
        )
    for item, score in cmd.scores.items():
        if not isinstance(score, int) or not policy.score_min <= score <= policy.score_max:
            raise ValidationError(
                "out-of-range",
                field=f"scores.{item}",
                value=score,
                min=policy.score_min,
                max=policy.score_max,
            )
    comment = clean_text(cmd.comment, "comment", max_len=policy.max_comment, required=False) or None
    r._scored(
        rater=rater,
        department=cmd.department,
        scores=dict(cmd.scores),
        comment=comment,
        **stamp.fields(),
    )
