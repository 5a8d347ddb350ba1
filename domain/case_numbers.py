"""Case numbers (受理编号) and the ids that follow from commands.

A number is readable over the phone and stable on retry; the ``CaseNumber``
aggregate that claims it (saved atomically with the grievance, so two grievances
never share one) stays in ``domain.application``, where its stored topic points.
"""

from __future__ import annotations

import hashlib
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import ValidationError

ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://closeloop.invalid/grievance")
NUMBER_NAMESPACE = uuid5(NAMESPACE_URL, "https://closeloop.invalid/case-number")
NUMBER_ATTEMPTS = 20  # proposals tried before giving up on a (very) crowded day


def case_number_id(number: str) -> UUID:
    return uuid5(NUMBER_NAMESPACE, number)


def propose_case_number(grievance_id: UUID, received_local_day: str, attempt: int) -> str:
    """``YYYYMMDD`` + six digits derived from the id: readable over the phone, stable on retry."""
    digest = hashlib.sha256(f"{grievance_id}/{attempt}".encode()).digest()
    return f"{received_local_day}{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def grievance_id_for(command_id: str) -> UUID:
    """A new grievance's id follows from its receive command's id: a retry finds it."""
    return uuid5(ID_NAMESPACE, command_id)


def split_assignment_id(assignment_id: str) -> UUID:
    """Assignment ids are ``<grievance uuid>.<n>``: the grievance is found without a lookup."""
    head, _, tail = assignment_id.rpartition(".")
    try:
        if not tail.isdigit():
            raise ValueError
        return UUID(head)
    except ValueError:
        raise ValidationError(
            "invalid-assignment-id", field="assignment_id", value=assignment_id
        ) from None
