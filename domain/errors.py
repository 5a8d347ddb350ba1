"""Domain errors: a stable code plus parameters, never prose.

Only the outermost layer (API, pages, CLI) turns a code and its parameters into
Chinese or English, from one catalogue. Parameter names follow one convention so the
catalogue can format by name: ``action`` / ``allowed`` (action values), ``status``,
``state`` (assignment state), ``department`` / ``departments`` (department codes),
``kind`` (deadline kind), ``level`` (escalation level), ``field``, ``value``,
``max_len``, ``category``, ``role`` / ``roles``.

``ERROR_CODES`` lists every error code and every refusal reason code the domain can
raise; a test scans the domain's sources to keep it true.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


class DomainError(Exception):
    """Base of every error the domain raises on a refused command."""

    code = "domain-error"

    def __init_subclass__(cls, /, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(self, code: str | None = None, /, **params: Any) -> None:
        self.code = code or type(self).code
        self.params: dict[str, Any] = {k: _plain(v) for k, v in params.items()}
        super().__init__(self.code, self.params)

    def __str__(self) -> str:
        """``code k=v, ...`` for logs: identifiers only, no sentences."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if v is not None)
        return f"{self.code} {shown}" if shown else self.code

    @property
    def message(self) -> str:
        """The log form; kept while callers move to ``code`` and ``params``."""
        return str(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses' constructors differ from ``args``: copy and pickle the state instead.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[DomainError], args: tuple[Any, ...], state: dict[str, Any]) -> DomainError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ValidationError(DomainError, code="invalid-command"):
    """A command's data is malformed or refers to something that does not exist."""

    def __init__(
        self, code: str | None = None, /, *, field: str | None = None, **params: Any
    ) -> None:
        if field is not None:
            params = {"field": field, **params}
        super().__init__(code, **params)
        self.field = field


class IllegalTransitionError(DomainError, code="illegal-transition"):
    """The command is not allowed in the grievance's current status.

    ``allowed`` never contains the refused action; ``reason`` (a code, or None) names
    what blocks it, with its parameters in ``params``.
    """

    def __init__(
        self,
        action: str,
        status: str,
        allowed: Iterable[str],
        reason: str | None = None,
        **reason_params: Any,
    ) -> None:
        action = _plain(action)
        super().__init__(
            None,
            action=action,
            status=_plain(status),
            allowed=sorted({str(_plain(a)) for a in allowed} - {action}),
            reason=reason,
            **reason_params,
        )
        self.action: str = action
        self.status: str = self.params["status"]
        self.reason = reason

    @property
    def allowed(self) -> list[str]:
        return list(self.params["allowed"])

    @allowed.setter
    def allowed(self, value: Iterable[str]) -> None:
        self.params["allowed"] = sorted({str(_plain(a)) for a in value} - {self.action})


class AssignmentStateError(IllegalTransitionError, code="illegal-assignment-transition"):
    """The command is not allowed in the assignment's current state."""

    def __init__(
        self,
        action: str,
        assignment_id: str,
        state: str,
        status: str,
        allowed: Iterable[str] = (),
        reason: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(
            action, status, allowed, reason, assignment_id=assignment_id, state=state, **params
        )
        self.assignment_id = assignment_id
        self.assignment_state: str = self.params["state"]


class NotAssignedError(DomainError, code="not-assigned"):
    """A department acted on an assignment that is not its own."""


class PermissionDeniedError(DomainError, code="permission-denied"):
    """The principal's role may not issue this command."""


class RoundStateError(DomainError, code="round-state"):
    """The rating round's status does not accept this command (``round-not-open``,
    ``round-not-closed``)."""


class RoundNotFoundError(DomainError, code="round-not-found"):
    """No rating round with this id."""


class SummonRefusedError(DomainError, code="summon-refused"):
    """A department may not summon these departments, or rate this summons (吹哨 policy)."""


class NegativeListError(DomainError, code="negative-list"):
    """A dispatch would give a community committee a duty on the negative list."""


class UnknownAssignmentError(DomainError, code="unknown-assignment"):
    """No assignment with this id exists on the grievance."""


class GrievanceNotFoundError(DomainError, code="grievance-not-found"):
    """No grievance with this id (or case number) exists."""


class ArticleStateError(IllegalTransitionError, code="illegal-article-transition"):
    """The command is not allowed in the knowledge-base article's current status."""


class ArticleNotFoundError(DomainError, code="article-not-found"):
    """No knowledge-base article with this id exists."""


class ConcurrentWriteError(DomainError, code="concurrent-write"):
    """Another writer saved the grievance first; reload and try again."""


class CommandIdReusedError(DomainError, code="command-id-reused"):
    """A command id was reused for a different command."""


class StaleVersionError(DomainError, code="stale-version"):
    """The caller's expected version (If-Match) is not the grievance's current version."""


def _class_codes(cls: type[DomainError]) -> set[str]:
    return {cls.code}.union(*(_class_codes(sub) for sub in cls.__subclasses__()))


# The default code of each error class (a subclass names its code: ``code="..."``).
CLASS_CODES = frozenset(_class_codes(DomainError))

# Specific validation codes (ValidationError's first argument).
VALIDATION_CODES = frozenset(
    {
        "already-attached",  # sha256: this file is already on the grievance
        "already-summoned",  # departments
        "article-not-quotable",  # article_id, revision: unknown, retired or never approved
        "category-not-leaf",  # category, leaves
        "community-has-no-committee",  # community
        "community-not-in-street",  # community, street
        "confirm-keeps-department",  # department, returned_department
        "date-range-reversed",  # date_to before date_from (read-side queries)
        "deadline-not-later",  # deadline (current), value
        "deadline-too-late",  # latest, value
        "department-already-assigned",  # department
        "department-required",  # a department principal without a department
        "department-twice",  # departments
        "dispatch-roles",  # one lead, the others assisting
        "district-not-served",  # district
        "feedback-incomplete",  # contacted but resolved/satisfaction missing
        "feedback-without-contact",  # not contacted but resolved/satisfaction given
        "grid-not-in-community",  # grid, community
        "in-the-future",  # value
        "invalid-cursor",  # a paging cursor this API did not hand out (read-side queries)
        "invalid-assignment-id",  # value
        "invalid-escalation-level",  # value, levels
        "invalid-phone",  # value
        "invalid-digest",  # value: not 64 lowercase hex digits
        "location-needs-community",  # category handled by the community
        "location-needs-street",  # category handled by the street office
        "merge-into-itself",
        "naive-datetime",  # a moment without a time zone
        "not-one-of",  # value, allowed
        "not-text",
        "out-of-range",  # value, min, max (read-side queries: limit, weeks)
        "reopen-needs-lead",
        "report-in-deadline-required",
        "redispatch-same-department",  # department
        "required",  # field must not be empty
        "satisfied-needs-feedback",  # outcome
        "street-has-no-office",  # street
        "street-not-in-district",  # street, district
        "text-control-characters",
        "text-direction-characters",  # text-direction controls (spoofing)
        "text-format-characters",  # a one-line field with invisible or line-separator characters
        "text-too-long",  # max_len
        "too-many-attachments",  # max
        "unknown-category",  # category
        "unknown-department",  # department
        "unknown-sla-class",  # sla_class
    }
)

# Why a command is refused (IllegalTransitionError / AssignmentStateError ``reason``).
REASON_CODES = frozenset(
    {
        "assignment-role",  # role (the assignment's), roles (those that may)
        "extension-pending",  # one request is already waiting for a decision
        "final-status",  # the grievance is closed, rejected, merged or withdrawn
        "no-extension-pending",
        "no-open-deadline",  # kind, assignment_id
        "nothing-to-approve",  # revision (asked), waiting (the article's waiting revision)
        "article-retired",  # a retired article accepts nothing
        "not-classified",  # classify it first
        "not-returned",  # arbitration needs a returned assignment
        "not-signed-for",  # the lead department has not signed for it yet
        "primary-final",  # the primary of a merge is final
        "waiting-for-assisting",  # departments: the assisting parts not yet completed
        "summons-not-ended",  # department: summoned, not yet reported in
        "rating-window-closed",  # deadline: the rating could be corrected until then
    }
)

# SummonRefusedError's specific codes (the problem's code stays summon-refused).
SUMMON_CODES = frozenset(
    {
        "summon-without-assignment",  # actor_department: holds no open assignment here
        "summon-beyond-policy",  # actor_department, departments: levels it may not call
        "summon-outside-street",  # actor_department, departments: not of its own street
        "not-the-summoner",  # department (the summoning unit), actor_department
    }
)

# RoundStateError's specific codes (action, quarter).
ROUND_CODES = frozenset({"round-not-open", "round-not-closed"})

ERROR_CODES: frozenset[str] = (
    CLASS_CODES | VALIDATION_CODES | REASON_CODES | SUMMON_CODES | ROUND_CODES
)
