"""open311_requests: one row per grievance, what GeoReport v2's ``GET requests`` lists.

The filters a client may give (``service_code``, ``status``, the receipt window, the
channel, the case numbers) are columns, so a page is one SQL query (``list_requests``)
on SQLite and PostgreSQL. Each row's ``item`` is ``request_record``: what the Open311
views render, public or private (``api.open311.views``), the same document the API
builds from the event store for one fresh request. ``description`` (the citizen's text as
given, kept only for requests filed through Open311) is a column of its own, written once
from the ``Received`` event (the folded state between batches keeps no text) and
returned only to readers allowed to see it.

``note`` is the latest *public* update (``public_note``): a department's progress note or
resolution, the outcome, rejection, merge, withdrawal, reopening, extension, dispatch or
sign-for of the lead, as a catalogue key and its parameters (or the text as written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from domain.errors import ValidationError
from domain.grievance import Grievance
from domain.model import FINAL_STATUSES, AssignmentRole, Channel
from projections.db import Cursor, in_marks, in_params, iso
from projections.fold import Folded, State, event_kind
from projections.views import Prior, ReadModelView, dumps

MAX_PAGE = 1000  # GeoReport v2's default response volume: a page is at most this many rows
MAX_PAGES = 100  # pages deeper than this: narrow the window or the filters instead

Note = dict[str, Any]


def _lead_department(g: Grievance, assignment_id: str | None) -> str | None:
    assignment = g.assignments.get(assignment_id or "")
    if assignment is None or assignment.role is not AssignmentRole.LEAD:
        return None
    return assignment.department


def public_note(g: Grievance, event: Any) -> Note | None:
    """The public note ``event`` gives the grievance ``g`` (as it stands), or None when the
    event is internal (returns, escalations, urges, feedback comments ...)."""
    kind = event_kind(event)
    if kind == "ProgressReported":
        return {"text": str(event.note)}
    if kind == "Resolved":
        return {"text": str(event.account)}
    if kind == "Closed":
        outcome = getattr(event.outcome, "value", event.outcome)
        return {"key": f"open311.note-closed-{outcome}", "fallback": "open311.note-closed"}
    if kind == "Rejected":
        return {"key": "open311.note-rejected", "params": {"reason": event.reason}}
    if kind == "Merged":
        return {"key": "open311.note-merged", "params": {"number": event.into_number}}
    if kind in ("Withdrawn", "Reopened", "ExtensionGranted"):
        note = {"Withdrawn": "withdrawn", "Reopened": "reopened"}.get(kind, "extension-granted")
        return {"key": f"open311.note-{note}"}
    if kind in ("SignedFor", "Dispatched"):
        aid = (
            event.assignment_id
            if kind == "SignedFor"
            else next((a["assignment_id"] for a in event.assignments if a["role"] == "lead"), None)
        )
        department = _lead_department(g, aid)
        if department is None:
            return None
        note = "signed-for" if kind == "SignedFor" else "dispatched"
        return {"key": f"open311.note-{note}", "params": {"department": department}}
    return None


def latest_note(g: Grievance, events: Sequence[Any]) -> Note | None:
    """The newest public note of a grievance's events."""
    for event in reversed(events):
        note = public_note(g, event)
        if note is not None:
            return note
    return None


def request_record(g: Grievance, updated_at: datetime | str | None) -> dict[str, Any]:
    """What the Open311 views render of one grievance (JSON-able; instants as UTC text)."""
    intake: dict[str, Any] = dict(getattr(g, "intake", None) or {})
    lead = g.lead_assignment()
    return {
        "number": g.number,
        "channel": g.channel,
        "closed": g.status in FINAL_STATUSES,
        "service_code": g.category or intake.get("service_code") or None,
        "lead_department": lead.department if lead else None,
        "expected": iso(lead.resolve_deadline) if lead else None,
        "requested": iso(g.received_at),
        "updated": iso(updated_at) if isinstance(updated_at, datetime) else updated_at,
        "location": dict(g.location),
        "client_id": intake.get("client_id"),
        "point": intake.get("point"),
        "media": intake.get("media") or [],
        "address_id": intake.get("address_id"),
        "attributes": intake.get("attributes") or {},
    }


class Open311RequestsView(ReadModelView):
    """open311_requests: one row per grievance with GeoReport v2's filters as columns."""

    projection_name = "open311_requests"
    cost = 19
    columns = (
        "grievance_id TEXT PRIMARY KEY, number TEXT NOT NULL, channel TEXT NOT NULL, "
        "service_code TEXT, status TEXT NOT NULL, requested_at TEXT NOT NULL, "
        "client_id TEXT, description TEXT, note TEXT, item TEXT NOT NULL"
    )
    indexes: ClassVar = {
        "requested": "requested_at, grievance_id",
        "number": "number",
        "code": "service_code, requested_at",
    }

    observes = True
    latest: dict[str, Folded]
    notes: dict[str, Note]
    texts: dict[str, str]

    def begin(self) -> None:
        self.latest, self.notes, self.texts = {}, {}, {}

    def observe(self, event: Any, prior: Prior, folded: Folded) -> None:
        gid = folded.key
        self.latest[gid] = folded
        note = public_note(folded.grievance, event)
        if note is not None:
            self.notes[gid] = note
        if isinstance(event, Grievance.Received) and event.channel == Channel.OPEN311.value:
            self.texts[gid] = folded.grievance.text  # what the filing client sent

    def write(self, c: Cursor, changes: Sequence[tuple[State | None, State]]) -> None:
        rows = []
        for _before, after in changes:
            gid = after["id"]
            folded = self.latest.get(gid)
            if folded is None:  # pragma: no cover - every touched grievance was observed
                continue
            record = request_record(folded.grievance, folded.updated_at)
            note = self.notes.get(gid)
            rows.append(
                {
                    "grievance_id": gid,
                    "number": record["number"],
                    "channel": record["channel"],
                    "service_code": record["service_code"],
                    "status": "closed" if record["closed"] else "open",
                    "requested_at": record["requested"],
                    "client_id": record["client_id"],
                    "description": self.texts.get(gid),
                    "note": dumps(note) if note is not None else None,
                    "item": dumps(record),
                }
            )
        self.latest, self.notes, self.texts = {}, {}, {}
        # The text and the note are kept when this batch brought none.
        self.executemany(
            c,
            "INSERT INTO {open311_requests} AS r (grievance_id, number, channel, service_code, "
            "status, requested_at, client_id, description, note, item) VALUES (:grievance_id, "
            ":number, :channel, :service_code, :status, :requested_at, :client_id, "
            ":description, :note, :item) ON CONFLICT (grievance_id) DO UPDATE SET "
            "service_code = excluded.service_code, status = excluded.status, "
            "description = COALESCE(excluded.description, r.description), "
            "note = COALESCE(excluded.note, r.note), item = excluded.item",
            rows,
        )


# ------------------------------------------------------------------------ queries

Query = Callable[[str, dict[str, Any]], list[dict[str, Any]]]
_COLUMNS = "number, client_id, description, note, item"


def _rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's record, with its ``description`` and ``note`` next to it."""
    records = []
    for row in found:
        record = json.loads(row["item"])
        record["description"] = row["description"]
        record["note"] = json.loads(row["note"]) if row["note"] else None
        records.append(record)
    return records


def list_requests(
    query: Query,
    *,
    received_from: datetime,
    received_to: datetime,
    service_codes: Sequence[str] = (),
    statuses: Sequence[str] = (),
    channel: str | None = None,
    page: int = 1,
    page_size: int = MAX_PAGE,
) -> list[dict[str, Any]]:
    """Newest received first, the filters in SQL: one query for one page."""
    if not 1 <= page_size <= MAX_PAGE:
        raise ValidationError(
            "out-of-range", field="page_size", value=page_size, min=1, max=MAX_PAGE
        )
    if not 1 <= page <= MAX_PAGES:
        raise ValidationError("out-of-range", field="page", value=page, min=1, max=MAX_PAGES)
    clauses = ["requested_at >= :start", "requested_at < :end"]
    params: dict[str, Any] = {
        "start": iso(received_from),
        "end": iso(received_to),
        "limit": page_size,
        "offset": (page - 1) * page_size,
    }
    for column, values in (("service_code", service_codes), ("status", statuses)):
        if values:
            clauses.append(f"{column} IN ({in_marks(column, values)})")
            params.update(in_params(column, values))
    if channel is not None:
        clauses.append("channel = :channel")
        params["channel"] = channel
    return _rows(
        query(
            f"SELECT {_COLUMNS} FROM {{open311_requests}} WHERE {' AND '.join(clauses)} "
            "ORDER BY requested_at DESC, grievance_id DESC LIMIT :limit OFFSET :offset",
            params,
        )
    )


def requests_by_number(query: Query, numbers: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The rows of these case numbers (those projected so far), by number: one query."""
    if not numbers:
        return {}
    found = query(
        f"SELECT {_COLUMNS} FROM {{open311_requests}} WHERE number IN ({in_marks('n', numbers)})",
        in_params("n", numbers),
    )
    return {record["number"]: record for record in _rows(found)}
