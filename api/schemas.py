"""Request and response schemas, in families: ``GrievanceCreate``, ``GrievancePublic``, ...

Requests forbid unknown fields and bound every length; the domain still validates the
meaning (codes exist, phone numbers are phone numbers, text is NFC).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from domain.evidence import BadObject
from domain.integrity import BrokenLink
from domain.knowledge import IntakeAnswer
from domain.model import (
    DIRECTION_CONTROLS,
    ArbitrationDecision,
    Channel,
    RequestType,
    Satisfaction,
    Status,
    Urgency,
    invisible_characters,
)


def _no_surrogates(value: str) -> str:
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("text contains unpaired surrogate code points")
    if "\x00" in value:
        raise ValueError("text contains NUL characters")
    return value


def _no_direction_controls(value: str) -> str:
    """Free text: no text-direction controls (other invisible characters may stay: a
    zero-width joiner belongs to an emoji)."""
    if DIRECTION_CONTROLS.search(value):
        raise PydanticCustomError("direction_characters", "contains text-direction controls")
    return value


def _one_plain_line(value: str) -> str:
    """Names, phone numbers, addresses, ids: what is shown is what is stored."""
    if invisible_characters(value):
        raise PydanticCustomError(
            "format_characters", "contains invisible format characters or line separators"
        )
    return value


#: The years any date or instant the API accepts must lie in: far enough from year 1 and
#: 9999 that a default period, a time zone or a day added never leaves ``datetime``'s range
#: (an ``OverflowError`` would be a 500). Every date/instant parameter goes through here.
FIRST_YEAR, LAST_YEAR = 1970, 2200


def sane_year(value: date) -> bool:
    """True when ``value`` (a date or an instant, in its own zone) lies in the sane years."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


def _sane_moment(value: datetime) -> datetime:
    if not sane_year(value):
        raise ValueError(f"instant must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


def _sane_day(value: date) -> date:
    if not sane_year(value):
        raise ValueError(f"date must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


_LINE = (AfterValidator(_no_surrogates), AfterValidator(_one_plain_line))
_TEXT = (AfterValidator(_no_surrogates), AfterValidator(_no_direction_controls))
Address = Annotated[str, Field(max_length=200), *_LINE]
CitizenName = Annotated[str, Field(min_length=1, max_length=50), *_LINE]
Phone = Annotated[str, Field(min_length=1, max_length=32), *_LINE]
Body = Annotated[str, Field(min_length=1, max_length=4000), *_TEXT]
Reason = Annotated[str, Field(max_length=500), *_TEXT]
RequiredReason = Annotated[str, Field(min_length=1, max_length=500), *_TEXT]
Note = Annotated[str, Field(min_length=1, max_length=2000), *_TEXT]
Comment = Annotated[str, Field(max_length=2000), *_TEXT]
AssignmentId = Annotated[str, Field(min_length=1, max_length=80), *_LINE]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Moment = Annotated[AwareDatetime, AfterValidator(_sane_moment)]
Day = Annotated[date, AfterValidator(_sane_day)]


Item = TypeVar("Item", bound=BaseModel)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------- requests


class LocationIn(Request):
    district: Code
    street: Code | None = None
    community: Code | None = None
    grid: Code | None = None
    address: Address = ""


class GrievanceCreate(Request):
    """受理: a new grievance as the operator (or an Open311 client) recorded it."""

    channel: Channel
    citizen_name: CitizenName
    citizen_phone: Phone
    text: Body
    location: LocationIn
    occurred_at: Moment | None = None
    request_type: RequestType | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "hotline",
                    "citizen_name": "张秀英",
                    "citizen_phone": "13812345678",
                    "text": "小区东门电动车在楼道里充电，存在火灾隐患，请尽快处理。",
                    "location": {
                        "district": "haidian",
                        "street": "xueyuanlu",
                        "community": "xyl-01",
                        "grid": "xyl-01-g1",
                        "address": "石油大院3号楼2单元",
                    },
                }
            ]
        },
    )


def _example(data: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [data]})


class ClassifyRequest(Request):
    """梳理: the category leaf, and the urgency if not the category's default."""

    category: Code
    urgency: Urgency | None = None
    reason: Reason | None = None
    model_config = _example({"category": "PM03", "urgency": "normal"})


class DispatchRequest(Request):
    """派单: omit ``lead`` to let the routing rules choose the departments."""

    lead: Code | None = None
    assisting: list[Code] | None = Field(None, max_length=10)
    reason: Reason | None = None
    model_config = _example({"lead": "xyl-01.committee", "assisting": []})


class ReasonRequest(Request):
    reason: RequiredReason
    model_config = _example({"reason": "不属于12345受理范围：涉及司法程序。"})


class RejectRequest(ReasonRequest):
    """不予受理, with the reason."""


class WithdrawRequest(ReasonRequest):
    """撤件 at the citizen's request."""

    model_config = _example({"reason": "市民来电表示问题已自行解决，申请撤件。"})


class MergeRequest(Request):
    """合并: this grievance duplicates ``into``."""

    into: UUID
    reason: Reason | None = None
    model_config = _example(
        {"into": "0b7c6f5e-1f0e-5d2c-9a51-3c1c8d2f4e10", "reason": "同一地点同一问题的重复来电"}
    )


class ArbitrateRequest(Request):
    """仲裁 a returned assignment: ``redispatch`` to ``department`` or ``confirm`` it stays."""

    assignment_id: AssignmentId
    decision: ArbitrationDecision
    department: Code | None = None
    reason: Reason | None = None
    model_config = _example(
        {
            "assignment_id": "0b7c6f5e-1f0e-5d2c-9a51-3c1c8d2f4e10.1",
            "decision": "redispatch",
            "department": "hd.urban",
            "reason": "属城管职责",
        }
    )


class FeedbackRequest(Request):
    """回访 result: unsatisfied or unresolved reopens (重办); otherwise the loop closes."""

    contacted: bool
    resolved: bool | None = None
    satisfaction: Satisfaction | None = None
    comment: Comment = ""
    model_config = _example(
        {"contacted": True, "resolved": True, "satisfaction": "satisfied", "comment": "处理及时"}
    )


class EmptyRequest(Request):
    """No fields needed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class ReturnRequest(ReasonRequest):
    """退单, with the reason the dispatch centre arbitrates on."""

    model_config = _example({"reason": "该事项属区城管委职责，非本单位管辖。"})


class ProgressRequest(Request):
    """阶段反馈."""

    note: Note
    model_config = _example({"note": "已联系物业，约定周三上门查看。"})


class ExtensionRequestIn(Request):
    """延期申请: a later resolve deadline and why."""

    new_deadline: Moment
    reason: RequiredReason
    model_config = _example(
        {"new_deadline": "2026-12-10T18:00:00+08:00", "reason": "需等待供暖季结束后施工。"}
    )


class AccountRequest(Request):
    """The account of what was done."""

    account: Note
    model_config = _example({"account": "已清理楼道电动车并张贴禁止充电告示，物业每日巡查。"})


class ExtensionDecisionRequest(Request):
    """Grant or deny a waiting extension request (a denial needs a reason)."""

    assignment_id: AssignmentId
    granted: bool
    reason: Reason | None = None
    new_deadline: Moment | None = None
    model_config = _example(
        {
            "assignment_id": "0b7c6f5e-1f0e-5d2c-9a51-3c1c8d2f4e10.1",
            "granted": True,
            "reason": "施工条件受限，同意延期。",
        }
    )


class SummonRequest(Request):
    """吹哨: departments that must 报到 before the report-in deadline."""

    departments: list[Code] = Field(min_length=1, max_length=20)
    reason: RequiredReason
    model_config = _example(
        {"departments": ["hd.urban", "hd.enforcement"], "reason": "多部门联合处置占道经营。"}
    )


class EscalateRequest(Request):
    """督办 by hand: level 1 street leader, 2 district supervision, 3 兜底办."""

    level: int = Field(ge=1, le=3)
    reason: RequiredReason
    assignment_id: AssignmentId | None = None
    model_config = _example({"level": 1, "reason": "超期未签收，街道领导督办。"})


# ---------------------------------------------------------------- responses


class Problem(BaseModel):
    """RFC 9457 problem details, with ``code`` and context fields where they apply."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None
    current_status: str | None = None
    allowed_actions: list[str] | None = None


class CommandAccepted(BaseModel):
    """What a write answers: the grievance's id, number, status and new version."""

    id: UUID
    number: str
    status: str
    version: int
    replayed: bool = False
    assignments: list[str] | None = None
    assignment_id: str | None = None
    into: str | None = None
    into_number: str | None = None
    sha256: str | None = None  # an attachment's file
    thumbnail_sha256: str | None = None


class LocationPublic(BaseModel):
    district: str
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    address: str = ""


class AssignmentPublic(BaseModel):
    id: str
    department: str
    role: str
    round: int
    state: str
    dispatched_at: datetime
    sign_for_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    report_in_deadline: datetime | None = None
    redispatch_deadline: datetime | None = None
    signed_for_at: datetime | None = None
    finished_at: datetime | None = None
    return_reason: str | None = None
    extension_requested: datetime | None = None
    extensions_granted: int = 0
    escalation_level: int = 0
    account: str | None = None
    allowed_actions: list[str] = Field(default_factory=list)


class DeadlinePublic(BaseModel):
    kind: str
    due: datetime
    assignment_id: str | None = None
    department: str | None = None


class AttachmentLink(BaseModel):
    """An attached file, by hash (``url`` answers it; who and when: ``…/attachments``)."""

    sha256: str
    filename: str
    media_type: str
    size: int
    url: str


class IntakePublic(BaseModel):
    """A channel's structured details of a grievance (``domain.intake``), beside its text."""

    service_code: str
    attributes: dict[str, str | float | list[str]] = Field(
        default_factory=dict, description="typed as filed: numbers, UTC instants, lists of keys"
    )
    point: dict[str, float] | None = Field(None, description="{lat, long} (WGS84)")
    media: list[str] = Field(default_factory=list)
    address_id: str | None = None
    client_id: str | None = Field(None, description="the filing client's token client id")
    placed_by: str | None = Field(
        None,
        description="address_id, address_string, point, or unresolved: in the district's "
        "catch-all queue (兜底) for the dispatch centre to place",
    )


class GrievancePublic(BaseModel):
    """One grievance as its aggregate knows it now (never stale)."""

    id: UUID
    number: str
    version: int
    status: str
    status_label: str
    channel: str
    citizen_name: str
    citizen_phone: str
    text: str
    intake: IntakePublic | None = None
    location: LocationPublic
    occurred_at: datetime | None = None
    received_at: datetime
    category: str | None = None
    urgency: str | None = None
    sla_class: str | None = None
    lead_department: str | None = None
    escalation_level: int = 0
    reopen_count: int = 0
    assignments: list[AssignmentPublic]
    open_deadlines: list[DeadlinePublic]
    feedback_deadline: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    outcome: str | None = None
    closed_at: datetime | None = None
    merged_into: str | None = None
    duplicates: list[str] = Field(default_factory=list)
    allowed_actions: list[str]
    attachments: list[AttachmentLink] = Field(default_factory=list)
    request_type: str | None = None  # 咨询, 求助, 投诉, 举报, 建议 (RequestType)
    intake_answer: IntakeAnswer | None = None  # 直接答复: the answer and the revisions quoted


class GrievanceSummary(BaseModel):
    """A row of a list (from the read models)."""

    model_config = ConfigDict(extra="allow")

    id: str
    number: str
    status: str


class Page(BaseModel, Generic[Item]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[Item]
    next_cursor: str | None = None


class GrievanceFilters(BaseModel):
    """The filters of ``GET /v1/grievances`` (query parameters), as the read models take them.
    Other query parameters (``lang``) are not filters and pass through."""

    status: Status | None = Field(None, description="e.g. dispatched")
    category: str | None = Field(None, max_length=64)
    department: str | None = Field(None, max_length=64, description="lead or assisting")
    street: str | None = Field(None, max_length=64)
    community: str | None = Field(None, max_length=64)
    overdue: bool | None = Field(None, description="only grievances past a deadline")
    escalation_level: int | None = Field(None, ge=0, le=3)
    received_from: Moment | None = None
    received_to: Moment | None = None
    q: str | None = Field(None, max_length=200, description="text search")
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class GrievancesPage(Page[GrievanceSummary]):
    pass


class AssignmentSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    assignment_id: str
    grievance_id: str
    department: str
    state: str


class AssignmentsPage(Page[AssignmentSummary]):
    pass


class CallbackItem(BaseModel):
    """A resolved grievance waiting for its 回访."""

    model_config = ConfigDict(extra="allow")

    grievance_id: str
    number: str


class CallbacksPage(Page[CallbackItem]):
    pass


class DepartmentKpi(BaseModel):
    """三率 of one department over a period."""

    model_config = ConfigDict(extra="allow")

    department: str


class IntakeKpi(BaseModel):
    """Grievances received and answered at intake (直接答复), and 直办率 = their share."""

    received: int
    answered_at_intake: int
    direct_answer_rate: float | None = None


class IntakeKpiByType(IntakeKpi):
    request_type: str | None = None  # None: filed without a request type


class IntakeKpis(IntakeKpi):
    by_request_type: list[IntakeKpiByType]


class KpisPublic(BaseModel):
    date_from: str
    date_to: str
    department: str | None = None
    as_of: datetime | None = Field(
        None, description="set when recomputed from the events recorded up to this instant"
    )
    items: list[DepartmentKpi]
    intake: IntakeKpis | None = Field(
        None, description="the dispatch centre's intake and 直办率 (not with as_of or department)"
    )


class CategoryLeaf(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    name_en: str
    lead: str | None
    assisting: list[str]
    sla_class: str | None
    default_urgency: str | None = None


class CategoryNode(BaseModel):
    code: str
    name: str
    name_en: str
    children: list[CategoryLeaf]


class CategoriesPublic(BaseModel):
    items: list[CategoryNode]


class DepartmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    name_en: str
    level: str
    street: str | None = None
    community: str | None = None


class DepartmentsPublic(BaseModel):
    items: list[DepartmentPublic]


class AuditEvent(BaseModel):
    """One stored event of a grievance, exactly as recorded (personal data masked)."""

    version: int
    type: str
    timestamp: datetime = Field(description="when the event was recorded (UTC)")
    at: datetime | None = Field(None, description="the business instant it happened (UTC)")
    principal: str | None = None
    role: str | None = None
    command_id: str | None = None
    reason: str | None = None
    chain_hash: str | None = Field(
        None, description="SHA-256 chaining this event to the previous one of the grievance"
    )
    trace: str | None = Field(
        None, description="W3C traceparent of the request that recorded it (when traced)"
    )
    data: dict[str, Any]


class AuditEvents(BaseModel):
    grievance_id: UUID
    number: str
    events: list[AuditEvent]


class DeadlineAt(DeadlinePublic):
    """A deadline open at some instant, and whether it had already passed."""

    model_config = ConfigDict(from_attributes=True)

    overdue: bool
    overdue_by_seconds: float


class GrievanceStateAt(BaseModel):
    """The grievance as it was at a past version or instant."""

    as_of: datetime | None = None
    version: int
    judged_at: datetime = Field(
        description="the business instant the open deadlines were judged at"
    )
    deadlines: list[DeadlineAt] = Field(
        default_factory=list, description="deadlines open at that instant, overdue or not"
    )
    grievance: GrievancePublic


class FollowUpPublic(BaseModel):
    """What happened about a deadline: urged, escalated (level), extension asked/decided."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    action: str
    level: int | None = None
    detail: str | None = None


class DeadlineRecordPublic(BaseModel):
    """One deadline over its life: due when, met or not, by how long late, what followed."""

    model_config = ConfigDict(from_attributes=True)

    grievance_id: UUID
    number: str
    kind: str
    assignment_id: str | None = None
    department: str | None = None
    due: datetime
    original_due: datetime | None = None
    outcome: str
    missed: bool
    closed_at: datetime | None = None
    late_by_seconds: float
    late_by: str | None = None
    follow_ups: list[FollowUpPublic]


class GrievanceLateness(BaseModel):
    grievance_id: UUID
    number: str
    judged_at: datetime
    deadlines: list[DeadlineRecordPublic]


class DepartmentLateness(BaseModel):
    department: str
    date_from: datetime
    date_to: datetime
    judged_at: datetime
    missed: list[DeadlineRecordPublic]


class VerifyReport(BaseModel):
    intact: bool
    grievances_checked: int
    broken: list[BrokenLink]  # the domain's own records (pydantic reads dataclasses)
    objects_checked: int = 0
    bad_objects: list[BadObject] = []


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool  # the event store answers (strict: and every check passes)
    checks: dict[str, Any]
    degraded: list[str] = []  # the checks that fail: event_store, temporal, projections, calendar


# ------------------------------------------------------------ the knowledge base

Title = Annotated[str, Field(min_length=1, max_length=200), *_LINE]
ArticleBody = Annotated[str, Field(min_length=1, max_length=8000), *_TEXT]
Keyword = Annotated[str, Field(min_length=1, max_length=30), *_LINE]


class ArticleRefIn(Request):
    article_id: UUID
    revision: int | None = Field(None, ge=1, description="default: the revision in force")


class AnswerRequest(Request):
    """直接答复: the answer given on the call and the knowledge-base articles it quoted."""

    answer: Body
    articles: list[ArticleRefIn] = Field(default_factory=list, max_length=10)
    model_config = _example(
        {
            "answer": "住宅电梯维修可申请使用专项维修资金，请联系物业提出申请。",
            "articles": [{"article_id": "6f1c1f5e-3b7a-5a43-9a0c-1d2b3c4d5e6f"}],
        }
    )


class ArticleWrite(Request):
    """A new article, or a new revision of one (it waits for a supervisor's approval)."""

    title: Title
    body: ArticleBody
    keywords: list[Keyword] = Field(default_factory=list, max_length=20)
    category: Code | None = None
    model_config = _example(
        {
            "title": "住宅电梯维修费用由谁承担",
            "body": "住宅电梯的维修、更新费用由业主共同承担，可申请使用住宅专项维修资金。",
            "keywords": ["电梯", "维修资金"],
            "category": None,
        }
    )


class ArticleApprove(Request):
    """Approve the waiting revision (``revision``: checked to be that one)."""

    revision: int | None = Field(None, ge=1)
    model_config = _example({"revision": 2})


class ArticleRetire(Request):
    """Retire the article: no longer searched, nor quoted by new answers."""

    reason: Reason = ""
    model_config = _example({"reason": "政策已废止"})


class ArticleAccepted(BaseModel):
    """What an article write answers: its id, status, newest revision and version."""

    id: UUID
    status: str
    version: int
    revision: int
    published_revision: int | None = None
    replayed: bool = False


class ArticleRevision(BaseModel):
    revision: int
    title: str
    body: str
    keywords: list[str]
    category: str | None = None
    principal: str
    at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None


class ArticlePublic(BaseModel):
    """One article from its events: every revision, the one in force, the one waiting."""

    id: UUID
    version: int
    status: str
    revision: int
    published_revision: int | None = None
    waiting_revision: int | None = None
    retired_at: datetime | None = None
    retired_reason: str | None = None
    revisions: list[ArticleRevision]


class ArticleHit(BaseModel):
    """A search result: the revision in force, ranked by relevance (``score``)."""

    id: UUID
    revision: int
    title: str
    snippet: str
    keywords: list[str]
    category: str | None = None
    score: float


class ArticleHits(BaseModel):
    q: str
    items: list[ArticleHit]


class ArticleSummary(BaseModel):
    """A row of the article list: the revision in force and the one waiting, if any."""

    id: UUID
    status: str
    title: str
    published_revision: int | None = None
    waiting_revision: int | None = None
    waiting_title: str | None = None
    updated_at: datetime


class ArticlesPage(BaseModel):
    items: list[ArticleSummary]
