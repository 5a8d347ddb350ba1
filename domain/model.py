"""Value objects and vocabularies of the grievance domain.

Enum members are ``StrEnum`` for code, but events store their plain ``.value``:
eventsourcing's transcoder looks up exact types, so a ``str`` enum would come
back from the store as a plain string anyway (see STACK-NOTES).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from domain.errors import ValidationError


class Channel(StrEnum):
    HOTLINE = "hotline"
    WEB = "web"
    APP = "app"
    GRID_WORKER = "grid-worker"
    WALK_IN = "walk-in"
    WECHAT = "wechat"
    OPEN311 = "open311"


class RequestType(StrEnum):
    """The five kinds of request of the 2021 Beijing regulation (labels in the catalogue)."""

    CONSULTATION = "consultation"  # 咨询
    HELP = "help"  # 求助
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议


class Urgency(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class Role(StrEnum):
    OPERATOR = "operator"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"
    SYSTEM = "system"  # the workflows, acting on deadlines
    OPEN311 = "open311"  # an Open311 client: may only file and read its own requests


class Action(StrEnum):
    """Every command of the grievance loop; the rule tables in ``domain.rules`` use these."""

    RECEIVE = "receive"
    CLASSIFY = "classify"
    DISPATCH = "dispatch"
    REJECT = "reject"
    MERGE = "merge"
    LINK_DUPLICATE = "link_duplicate"
    WITHDRAW = "withdraw"
    ARBITRATE = "arbitrate"
    RECORD_FEEDBACK = "record_feedback"
    SIGN_FOR = "sign_for"
    RETURN = "return"
    REPORT_PROGRESS = "report_progress"
    REQUEST_EXTENSION = "request_extension"
    DECIDE_EXTENSION = "decide_extension"
    COMPLETE_PART = "complete_part"
    RESOLVE = "resolve"
    SUMMON = "summon"
    REPORT_IN = "report_in"
    URGE = "urge"
    ESCALATE = "escalate"
    CLOSE = "close"
    ATTACH = "attach"  # 附件 on the grievance (operators; an Open311 client on its own filing)
    ATTACH_TO_ASSIGNMENT = "attach_to_assignment"  # a department's evidence on its assignment
    ANSWER_AT_INTAKE = "answer_at_intake"  # 直接答复: settled on the call, closed undispatched
    # The knowledge base (知识库): its own aggregate, domain.knowledge.
    WRITE_ARTICLE = "write_article"  # create or revise (a revision waits for approval)
    APPROVE_ARTICLE = "approve_article"  # publish a waiting revision
    RETIRE_ARTICLE = "retire_article"
    RATE_SUMMONED = "rate_summoned"  # the summoning unit rates a department it summoned
    # Quarterly rating rounds (街道评部门): their own aggregate, domain.ratings.
    OPEN_ROUND = "open_round"
    SCORE_ROUND = "score_round"  # a street's scores for one department
    URGE_ROUND = "urge_round"
    CLOSE_ROUND = "close_round"
    PUBLISH_ROUND = "publish_round"


class Status(StrEnum):
    RECEIVED = "received"  # 受理
    CLASSIFIED = "classified"  # 梳理
    DISPATCHED = "dispatched"  # 派单, waiting for the lead department to sign for
    IN_PROGRESS = "in_progress"  # lead signed for (签收), work under way
    RETURNED = "returned"  # lead sent it back (退单): the dispatch centre arbitrates
    RESOLVED = "resolved"  # 办结, waiting for the citizen's feedback (回访)
    CLOSED = "closed"  # 归档
    REJECTED = "rejected"  # 不予受理
    MERGED = "merged"  # 合并 into another grievance
    WITHDRAWN = "withdrawn"  # 撤件


FINAL_STATUSES = frozenset({Status.CLOSED, Status.REJECTED, Status.MERGED, Status.WITHDRAWN})


class ArticleStatus(StrEnum):
    """A knowledge-base article: never approved yet, in force, or retired."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class RoundStatus(StrEnum):
    """A quarterly rating round (domain.ratings)."""

    OPEN = "open"  # streets score
    CLOSED = "closed"  # the deadline passed (or a supervisor closed it)
    PUBLISHED = "published"  # results out


class AssignmentRole(StrEnum):
    LEAD = "lead"  # 主办
    ASSISTING = "assisting"  # 协办
    SUMMONED = "summoned"  # called by 吹哨, must 报到


class AssignmentState(StrEnum):
    DISPATCHED = "dispatched"  # waiting for 签收 (or 报到 for summoned)
    SIGNED_FOR = "signed_for"
    RETURNED = "returned"  # waiting for arbitration
    COMPLETED = "completed"  # assisting part done
    RESOLVED = "resolved"  # lead's 办结
    REPORTED_IN = "reported_in"  # summoned department reported in
    SUPERSEDED = "superseded"  # replaced by arbitration or a reopening
    CANCELLED = "cancelled"  # grievance merged or withdrawn


OPEN_ASSIGNMENT_STATES = frozenset(
    {AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR, AssignmentState.RETURNED}
)


class DeadlineKind(StrEnum):
    SIGN_FOR = "sign_for"
    RESOLVE = "resolve"
    REPORT_IN = "report_in"
    REDISPATCH = "redispatch"
    FEEDBACK = "feedback"


class ReasonCode(StrEnum):
    """Why the workflows acted: stored in an event's ``reason_code``, with ``reason_params``.

    A person's own reason (a department's return, an operator's rejection) stays free
    text in ``reason``; these codes are rendered from the API's catalogue.
    """

    DEADLINE_APPROACHING = "deadline-approaching"  # urge: kind, due, department
    DEADLINE_LAPSED = "deadline-lapsed"  # escalate: kind, due, department, level
    FEEDBACK_WINDOW_LAPSED = "feedback-window-lapsed"  # close: due
    REOPENED_REPEATEDLY = "reopened-repeatedly"  # escalate to 兜底办: reopen_count, level


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class Outcome(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    NO_RESPONSE = "no_response"  # the 回访 window lapsed
    CLOSED_BY_SUPERVISOR = "closed_by_supervisor"  # e.g. after 兜底办 review
    ANSWERED_AT_INTAKE = "answered_at_intake"  # 直接答复, no 回访 by policy


class ArbitrationDecision(StrEnum):
    REDISPATCH = "redispatch"  # give it to another department
    CONFIRM = "confirm"  # the return is refused: the same department keeps it


# 1 street leader (街道领导督办), 2 district supervision, 3 leader-led resolution (兜底办);
# their labels live in the API's catalogue.
ESCALATION_LEVELS: tuple[int, ...] = (1, 2, 3)


E = TypeVar("E", bound=StrEnum)


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a moment without a time zone is refused."""
    if moment.tzinfo is None:
        raise ValidationError("naive-datetime", field="timestamp")
    return moment.astimezone(UTC)


def parse_enum(enum: type[E], value: object, field: str) -> E:
    try:
        return enum(str(value))
    except ValueError:
        raise ValidationError(
            "not-one-of", field=field, value=str(value), allowed=[m.value for m in enum]
        ) from None


#: Text-direction controls (embeddings, overrides, isolates: U+202A-202E, U+2066-2069):
#: refused in all text, where they can make a line read other than it is stored (spoofing).
DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def invisible_characters(value: str) -> bool:
    """Whether a one-line field holds a character that is not what it seems: a format
    character (Unicode Cf: direction marks and controls, zero-width spaces, the BOM), a
    line or paragraph separator (U+2028/9) or any other control character."""
    return any(unicodedata.category(c) in ("Cf", "Zl", "Zp", "Cc") for c in value)


def clean_text(
    value: object, field: str, *, max_len: int, required: bool = True, one_line: bool = False
) -> str:
    """Unicode NFC, trimmed, bounded. Citizens' text is stored as given, never transliterated.

    No text may hold control characters (but line breaks and tabs) or text-direction
    controls; a ``one_line`` field (a name, an address) none of ``invisible_characters``,
    so what is shown is what is stored, whichever channel it came through."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError("not-text", field=field)
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise ValidationError("required", field=field)
    if len(text) > max_len:
        raise ValidationError("text-too-long", field=field, max_len=max_len)
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise ValidationError("text-control-characters", field=field)
    if one_line and invisible_characters(text):
        raise ValidationError("text-format-characters", field=field)
    if DIRECTION_CONTROLS.search(text):
        raise ValidationError("text-direction-characters", field=field)
    return text


_PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|[2-9]\d{6,7})$")


def clean_phone(value: object, field: str = "citizen_phone") -> str:
    """Mainland mobile (11 digits), or a landline with or without its area code."""
    if not isinstance(value, str):
        raise ValidationError("not-text", field=field)
    phone = re.sub(r"[\s()]", "", unicodedata.normalize("NFKC", value))
    if phone.startswith("+86"):
        phone = phone[3:]
    if not _PHONE.match(phone):
        raise ValidationError("invalid-phone", field=field, value=value)
    return phone


def mask_phone(phone: str | None) -> str | None:
    """138****1234: keeps the carrier prefix and the last four digits."""
    if not phone:
        return phone
    digits = phone.replace("-", "")
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if len(digits) >= 11 else min(3, len(digits) - 4)
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def mask_name(name: str | None) -> str | None:
    """张** : the family name only."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who issues a command: every event records it."""

    principal: str
    role: Role
    department: str | None = None
    # The client its credential belongs to (an Open311 integration's token client id): what
    # "its own grievance" goes by. Not recorded in events (``principal`` is).
    client: str | None = None

    def __post_init__(self) -> None:
        if not self.principal:
            raise ValidationError("required", field="principal")
        if self.role is Role.DEPARTMENT and not self.department:
            raise ValidationError("department-required", field="department")


SYSTEM = Actor("closeloop-workflow", Role.SYSTEM)


@dataclass(frozen=True, slots=True)
class Stamp:
    """Who issues a command, its business instant and its id: what every event records."""

    actor: Actor
    at: datetime
    command_id: str

    def fields(self) -> dict[str, Any]:
        return {
            "principal": self.actor.principal,
            "role": self.actor.role.value,
            "at": utc(self.at),
            "command_id": self.command_id,
        }


def required_reason(text: str | None) -> str:
    """A person's reason, where the command cannot go without one."""
    if not text:
        raise ValidationError("required", field="reason")
    return text


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a person's text, or a workflow's ``code`` (``ReasonCode``) and its parameters."""

    text: str | None = None
    code: str | None = None
    params: Mapping[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """The event fields: ``reason`` always; ``reason_code`` and its params when coded."""
        data: dict[str, Any] = {"reason": self.text}
        if self.code is not None:
            data["reason_code"] = str(self.code)
            data["reason_params"] = dict(self.params or {})
        return data


@dataclass(frozen=True, slots=True)
class Location:
    """区 / 街道 / 社区 / 网格 codes plus a free-text address."""

    district: str
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    address: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "district": self.district,
            "street": self.street,
            "community": self.community,
            "grid": self.grid,
            "address": self.address,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Location:
        return cls(
            district=data["district"],
            street=data.get("street"),
            community=data.get("community"),
            grid=data.get("grid"),
            address=data.get("address") or "",
        )


@dataclass(frozen=True, slots=True)
class Deadline:
    """An open deadline of a grievance at some instant."""

    kind: DeadlineKind
    due: datetime
    assignment_id: str | None
    department: str | None
