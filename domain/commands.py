"""Commands as values: one small frozen dataclass per use case.

``GrievanceApp.handle(command)`` is the one pipeline that runs them (load,
idempotency, expected version, decide, save). Every command carries who issues it
(``actor``), an optional ``command_id`` (repeating it answers the first result again)
and an optional business instant ``at`` (default: the application's clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.intake import Intake
from domain.model import Actor, Location


@dataclass(frozen=True, kw_only=True)
class Command:
    actor: Actor
    command_id: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class GrievanceCommand(Command):
    """A command about one grievance, found by its id."""

    grievance_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True)
class AssignmentCommand(Command):
    """A department's command about its assignment; the grievance is found from the id."""

    assignment_id: str
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True)
class DeadlineStep:
    """A step the workflows take on a deadline (催办, 督办, 归档 without feedback).

    With ``only_if_open``, a deadline that was met, moved (``due`` differs) or is gone
    records nothing and answers ``recorded=False``. The workflows give a
    ``reason_code`` (``domain.model.ReasonCode``) and its params; a person a ``reason``.
    """

    reason: str | None = None
    reason_code: str | None = None
    reason_params: Mapping[str, Any] | None = None
    only_if_open: bool = False


# ------------------------------------------------------------------ intake


@dataclass(frozen=True, kw_only=True)
class ReceiveGrievance(Command):
    """受理: record a new grievance and give it a case number.

    ``intake``: the channel's structured details (``domain.intake``), kept next to the
    citizen's text as given (which may then be empty). ``category``: classify it (梳理)
    with this leaf in the same save, when the actor may classify."""

    channel: str
    citizen_name: str
    citizen_phone: str
    text: str
    location: Location
    occurred_at: datetime | None = None
    intake: Intake | None = None
    category: str | None = None
    request_type: str | None = None  # 咨询, 求助 … (domain.model.RequestType)


@dataclass(frozen=True, kw_only=True)
class ClassifyGrievance(GrievanceCommand):
    """梳理: category leaf (its SLA class follows) and urgency (or the category's default)."""

    category: str
    urgency: str | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RejectGrievance(GrievanceCommand):
    """不予受理."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class DispatchGrievance(GrievanceCommand):
    """派单: to the given departments, or where the routing rules send this category."""

    lead: str | None = None
    assisting: list[str] | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ArbitrateReturn(GrievanceCommand):
    """仲裁 a returned assignment: re-dispatch it elsewhere or confirm its department."""

    assignment_id: str
    decision: str
    department: str | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class MergeGrievance(GrievanceCommand):
    """合并: mark a duplicate and link it to its primary, in one atomic save."""

    into: UUID
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WithdrawGrievance(GrievanceCommand):
    """撤件 at the citizen's request."""

    reason: str


# ------------------------------------------------------------- departments


@dataclass(frozen=True, kw_only=True)
class SignFor(AssignmentCommand):
    """签收."""


@dataclass(frozen=True, kw_only=True)
class ReturnAssignment(AssignmentCommand):
    """退单, with the reason the dispatch centre arbitrates on."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class ReportProgress(AssignmentCommand):
    """阶段反馈."""

    note: str


@dataclass(frozen=True, kw_only=True)
class RequestExtension(AssignmentCommand):
    """延期申请: a later resolve deadline, within the SLA profile's maximum."""

    new_deadline: datetime
    reason: str


@dataclass(frozen=True, kw_only=True)
class CompletePart(AssignmentCommand):
    """协办 part done."""

    account: str


@dataclass(frozen=True, kw_only=True)
class Resolve(AssignmentCommand):
    """办结 by the lead department; opens the 回访 window."""

    account: str


@dataclass(frozen=True, kw_only=True)
class ReportIn(AssignmentCommand):
    """报到 after a summons."""


# ------------------------------------------------------------- supervisors


@dataclass(frozen=True, kw_only=True)
class DecideExtension(GrievanceCommand):
    """Grant or deny a waiting extension request."""

    assignment_id: str
    granted: bool
    reason: str | None = None
    new_deadline: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class SummonDepartments(GrievanceCommand):
    """吹哨: each summoned department must 报到 before its report-in deadline."""

    departments: list[str]
    reason: str


@dataclass(frozen=True, kw_only=True)
class RateSummoned(GrievanceCommand):
    """The summoning unit rates a department it summoned (满意 / 基本满意 / 不满意)."""

    assignment_id: str
    rating: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Urge(DeadlineStep, GrievanceCommand):
    """催办 whoever owns an open deadline."""

    kind: str
    assignment_id: str | None = None
    due: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Escalate(DeadlineStep, GrievanceCommand):
    """督办 / 提级, by hand or by a lapsed deadline."""

    level: int
    kind: str | None = None
    assignment_id: str | None = None
    due: datetime | None = None


# ---------------------------------------------------------------- feedback


@dataclass(frozen=True, kw_only=True)
class RecordFeedback(GrievanceCommand):
    """回访 result: closes the loop, or reopens (重办) to the same departments."""

    contacted: bool
    resolved: bool | None = None
    satisfaction: str | None = None
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class CloseGrievance(DeadlineStep, GrievanceCommand):
    """归档 without feedback, e.g. the 回访 window lapsed (outcome ``no_response``)."""

    outcome: str


# ---------------------------------------------------------------- evidence


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    """A file already stored in the blob store, by its SHA-256."""

    sha256: str
    media_type: str
    size: int
    filename: str = ""
    thumbnail_sha256: str | None = None
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class AttachFile(StoredFile, GrievanceCommand):
    """附件: a stored file joins the grievance."""


@dataclass(frozen=True, kw_only=True)
class AttachToAssignment(StoredFile, AssignmentCommand):
    """A department's evidence (before/after photos, documents) on its own assignment."""


# ------------------------------------------------------- the knowledge base


@dataclass(frozen=True, kw_only=True)
class ArticleRef:
    """An article an answer quotes; without ``revision``, the one in force now."""

    article_id: UUID
    revision: int | None = None


@dataclass(frozen=True, kw_only=True)
class AnswerAtIntake(GrievanceCommand):
    """直接答复: settled on the call from the knowledge base, closed without dispatch."""

    answer: str
    articles: list[ArticleRef] | None = None


@dataclass(frozen=True, kw_only=True)
class ArticleCommand(Command):
    """A command about one knowledge-base article (``domain.knowledge``)."""

    article_id: UUID | None = None
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True)
class ArticleContent:
    """What one revision of an article says (``category``: a leaf, optional)."""

    title: str
    body: str
    keywords: list[str] | None = None
    category: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreateArticle(ArticleContent, ArticleCommand):
    """A new article: its first revision, waiting for a supervisor's approval."""


@dataclass(frozen=True, kw_only=True)
class ReviseArticle(ArticleContent, ArticleCommand):
    """A new revision; the approved one stays in force until this one is approved."""


@dataclass(frozen=True, kw_only=True)
class ApproveArticle(ArticleCommand):
    """A supervisor approves the waiting revision (``revision``: checked to be that one)."""

    revision: int | None = None


@dataclass(frozen=True, kw_only=True)
class RetireArticle(ArticleCommand):
    """A supervisor retires the article: no longer searched nor quotable."""

    reason: str | None = None
