"""Domain errors. Each names what was wrong in words an operator understands."""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(Exception):
    """Base of every error the domain raises on a refused command."""

    code = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """A command's data is malformed or refers to something that does not exist."""

    code = "invalid-command"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IllegalTransitionError(DomainError):
    """The command is not allowed in the grievance's current status."""

    code = "illegal-transition"

    def __init__(
        self,
        action: str,
        status: str,
        allowed: Iterable[str],
        detail: str | None = None,
    ) -> None:
        self.action = action
        self.status = status
        self.allowed = sorted(allowed)
        text = f"cannot {action} a grievance whose status is {status!r}"
        if detail:
            text += f": {detail}"
        text += f"; allowed now: {', '.join(self.allowed) or 'nothing (final status)'}"
        super().__init__(text)


class AssignmentStateError(IllegalTransitionError):
    """The command is not allowed in the assignment's current state."""

    code = "illegal-assignment-transition"

    def __init__(self, action: str, assignment_id: str, state: str, status: str) -> None:
        self.assignment_id = assignment_id
        self.assignment_state = state
        super().__init__(
            action,
            status,
            allowed=(),
            detail=f"assignment {assignment_id} is {state!r}",
        )
        self.message = (
            f"cannot {action} assignment {assignment_id}: it is {state!r} "
            f"(grievance status {status!r})"
        )
        self.args = (self.message,)


class NotAssignedError(DomainError):
    """A department acted on an assignment that is not its own."""

    code = "not-assigned"


class PermissionDeniedError(DomainError):
    """The principal's role may not issue this command."""

    code = "permission-denied"


class NegativeListError(DomainError):
    """A dispatch would give a community committee a duty on the negative list."""

    code = "negative-list"


class UnknownAssignmentError(DomainError):
    """No assignment with this id exists on the grievance."""

    code = "unknown-assignment"


class GrievanceNotFoundError(DomainError):
    """No grievance with this id (or case number) exists."""

    code = "grievance-not-found"


class ConcurrentWriteError(DomainError):
    """Another writer saved the grievance first; reload and try again."""

    code = "concurrent-write"


class CommandIdReusedError(DomainError):
    """A command id was reused for a different command."""

    code = "command-id-reused"


class StaleVersionError(DomainError):
    """The caller's expected version (If-Match) is not the grievance's current version."""

    code = "stale-version"
