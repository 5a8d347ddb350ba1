"""Turning aggregates, events and read-model rows into response schemas, masking as needed."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi.encoders import jsonable_encoder

from api.catalogue import label
from api.i18n import Lang
from api.schemas import (
    AssignmentPublic,
    AuditEvent,
    CommandAccepted,
    GrievancePublic,
)
from domain.application import CommandResult
from domain.evidence import attachments
from domain.grievance import Assignment, Grievance
from domain.model import Status, mask_name, mask_phone
from domain.rules import assignment_actions

PERSONAL_FIELDS = {"citizen_name": mask_name, "citizen_phone": mask_phone}
#: Free text people type (the citizen's account, reasons, notes, a department's account):
#: a phone number written into it is masked like the phone field, for all but operators.
FREE_TEXT_FIELDS = frozenset(
    {"text", "reason", "note", "account", "resolution", "return_reason", "comment", "summary"}
)
# A mainland mobile (3-4-4, optionally spaced or hyphenated), a landline with its area code,
# or a local 7-8 digit number, optionally after +86; never part of a longer digit run (a
# case number) and never a date (2026-11-23 has no such shape).
_PHONE_IN_TEXT = re.compile(
    r"(?<!\d)(?:\+?86[\s-]?)?"
    r"(?:1[3-9]\d(?:[\s-]?\d{4}){2}|\(?0\d{2,3}\)?[\s-]?\d{7,8}|[2-9]\d{2,3}[\s-]?\d{4})"
    r"(?!\d)"
)
_THREE_DIGITS = re.compile(r"\d{3}")
# Full-width digits, hyphen and space read as ASCII (one character each: offsets stay put).
_HALF_WIDTH = str.maketrans("０１２３４５６７８９－　（）＋", "0123456789- ()+")


def mask_phones_in(text: str) -> str:
    """``text`` with every phone-number-like sequence masked (138****5678)."""
    plain = text.translate(_HALF_WIDTH)
    if _THREE_DIGITS.search(plain) is None:  # every shape above has three digits in a row
        return text
    pieces, end = [], 0
    for found in _PHONE_IN_TEXT.finditer(plain):
        digits = re.sub(r"\D", "", found.group())
        if digits.startswith("86") and len(digits) > 11:
            digits = digits[2:]
        masked = mask_phone(digits) if len(digits) >= 10 else "*" * (len(digits) - 4) + digits[-4:]
        pieces += [text[end : found.start()], masked or ""]
        end = found.end()
    return "".join(pieces) + text[end:] if pieces else text


_EVENT_META = ("principal", "role", "at", "command_id", "reason", "chain_hash", "trace")


def accepted(result: CommandResult) -> CommandAccepted:
    """What a write answers; ``extra`` carries what some commands add (assignments, into)."""
    return CommandAccepted.model_validate(
        {**result.extra, "id": result.grievance_id, **dataclasses.asdict(result)}
    )


def assignment_public(a: Assignment, status: Status, *, unmasked: bool = True) -> AssignmentPublic:
    """An assignment with what its department may do to it now (the domain's rules)."""
    fields = dataclasses.asdict(a)
    return AssignmentPublic.model_validate(
        {
            **(fields if unmasked else mask_row(fields)),
            "allowed_actions": assignment_actions(a, status),
        }
    )


# Computed below; every other field of GrievancePublic is the aggregate's attribute of that name.
_COMPUTED = {
    "status_label",
    "citizen_name",
    "citizen_phone",
    "lead_department",
    "assignments",
    "open_deadlines",
    "duplicates",
    "allowed_actions",
    "attachments",
}
_COPIED = tuple(name for name in GrievancePublic.model_fields if name not in _COMPUTED)


def attachment_url(grievance_id: UUID | str, sha256: str) -> str:
    """Where an attached file (or its thumbnail) is read, by its hash."""
    return f"/v1/grievances/{grievance_id}/attachments/{sha256}"


def grievance_public(g: Grievance, *, unmasked: bool, lang: Lang) -> GrievancePublic:
    lead = g.lead_assignment()
    copied = {name: getattr(g, name) for name in _COPIED}
    return GrievancePublic.model_validate(
        {
            **(copied if unmasked else mask_row(copied)),
            "status_label": label("status", g.status.value, lang),
            "citizen_name": g.citizen_name if unmasked else mask_name(g.citizen_name) or "",
            "citizen_phone": g.citizen_phone if unmasked else mask_phone(g.citizen_phone) or "",
            "lead_department": lead.department if lead else None,
            "assignments": [
                assignment_public(a, g.status, unmasked=unmasked) for a in g.assignments.values()
            ],
            "open_deadlines": [dataclasses.asdict(d) for d in g.open_deadlines()],
            "duplicates": list(g.duplicates),
            "allowed_actions": g.allowed_actions(),
            "attachments": [
                {
                    "sha256": a.sha256,
                    "filename": a.filename,
                    "media_type": a.media_type,
                    "size": a.size,
                    "url": attachment_url(g.id, a.sha256),
                }
                for a in attachments(g)
            ],
        }
    )


def mask_row(row: dict[str, Any]) -> dict[str, Any]:
    """Mask personal fields wherever a read-model row or event carries them, and phone
    numbers written into its free text."""
    out = dict(row)
    for key, masker in PERSONAL_FIELDS.items():
        if isinstance(out.get(key), str):
            out[key] = masker(out[key])
    for key in FREE_TEXT_FIELDS.intersection(out):
        if isinstance(out[key], str):
            out[key] = mask_phones_in(out[key])
    return out


def _jsonable(value: Any) -> Any:
    """``jsonable_encoder`` for what a decoded event holds (JSON values, datetimes, UUIDs,
    lists, dicts), the same result at a tenth of the cost; other types go to it."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is dict:
        return {
            _jsonable(k): _jsonable(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_sa"))  # as jsonable_encoder does
        }
    if kind is list or kind is tuple:
        return [_jsonable(v) for v in value]
    if kind is datetime:
        return value.isoformat()
    if kind is UUID:
        return str(value)
    return jsonable_encoder(value)


def audit_event(event: Any, *, unmasked: bool) -> AuditEvent:
    state = {k: v for k, v in vars(event).items() if not k.startswith("_")}
    version = state.pop("originator_version")
    state.pop("originator_id", None)
    timestamp = state.pop("timestamp")
    meta = {key: state.pop(key, None) for key in _EVENT_META}
    data = state if unmasked else mask_row(state)
    if not unmasked and isinstance(meta["reason"], str):
        meta["reason"] = mask_phones_in(meta["reason"])
    return AuditEvent(
        version=version,
        type=type(event).__qualname__.rsplit(".", 1)[-1],
        timestamp=timestamp,
        data=_jsonable(data),
        **meta,
    )


def as_row(item: Any) -> dict[str, Any]:
    """A read-model item (mapping, dataclass or pydantic model) as a plain dict."""
    if isinstance(item, Mapping):
        return dict(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        result: dict[str, Any] = dump()
        return result
    return dict(vars(item))
