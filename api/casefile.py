"""案卷: one grievance's printable case file, as a self-contained HTML page.

Built from the grievance's stored events (timeline, deadlines, urges, escalations,
extensions, feedback), its hash-chain check, and the summary of its Temporal workflow
history that the composition root supplies. Simplified Chinese by default, English on
request; inline CSS with print rules, no external resources.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.catalogue import (
    Lang,
    broken_link_text,
    category_name,
    department_name,
    has,
    label,
    localized_name,
    reason_text,
    role_label,
    t,
)
from api.pages import environment
from api.views import mask_phones_in
from domain import audit
from domain.integrity import BrokenLink
from domain.model import mask_name, mask_phone
from domain.policies.categories import Category
from domain.policies.directory import Directory


@dataclass
class CaseFile:
    events: Sequence[Any]
    deadlines: list[audit.DeadlineRecord]
    broken: BrokenLink | None
    generated_at: datetime
    directory: Directory
    tz: ZoneInfo
    categories: dict[str, Category] | None = None  # by code, to name the category
    # Thumbnails of the attached images by their hash, shown in the page itself (it prints).
    thumbnails: dict[str, bytes] = field(default_factory=dict)


@dataclass
class WorkflowSection:
    workflow_id: str
    entries: list[dict[str, Any]] | None = None
    found: bool = False
    error: str | None = None  # unreachable | not_configured


@dataclass(frozen=True)
class Cell:
    """One table cell's text; ``css`` marks it (late, ok, broken, mono)."""

    text: str
    css: str | None = None


@dataclass
class Row:
    cells: list[Cell]
    css: str | None = None


@dataclass
class Table:
    head: list[str]
    rows: list[Row] = field(default_factory=list)


def _row(*cells: str | Cell, css: str | None = None) -> Row:
    return Row([c if isinstance(c, Cell) else Cell(c) for c in cells], css)


class _Page:
    def __init__(self, case: CaseFile, lang: Lang, unmasked: bool) -> None:
        self.case = case
        self.lang = lang
        self.unmasked = unmasked
        self.departments_of: dict[str, str] = {}
        self.roles_of: dict[str, str] = {}
        for event in case.events:
            for data in _assignments(event):
                self.departments_of[data["assignment_id"]] = data["department"]
                self.roles_of[data["assignment_id"]] = data.get("role", "")

    # ------------------------------------------------------------ words

    def w(self, key: str, **params: Any) -> str:
        return t(f"casefile.{key}", self.lang, **params)

    def label(self, section: str, key: Any) -> str:
        if section == "role":
            return role_label(key, self.lang)
        return label(section, key, self.lang)

    def deadline(self, kind: str, moment: datetime | None) -> str:
        return f"{self.label('deadline_kind', kind)} {self.when(moment)}"

    def by(self, event: Any) -> str:
        return f"{event.principal} · {self.label('role', getattr(event, 'role', '') or '')}"

    def reason(self, event: Any) -> str:
        return self.free(reason_text(event, self.lang, self.case.directory, self.case.tz))

    def free(self, text: str) -> str:
        """Text a person wrote: phone numbers in it masked unless the reader sees them."""
        return text if self.unmasked else mask_phones_in(text)

    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        return moment.astimezone(self.case.tz).strftime("%Y-%m-%d %H:%M:%S")

    def when_text(self, value: str | datetime | None) -> str:
        """An instant that may come as ISO text (workflow history) or a datetime (events)."""
        if not value:
            return ""
        if isinstance(value, datetime):
            return self.when(value)
        return self.when(datetime.fromisoformat(value))

    def dept(self, code: str | None) -> str:
        if not code:
            return ""
        name = department_name(code, self.lang, self.case.directory)
        return name if name == code else f"{name} ({code})"

    def place(self, location: dict[str, Any]) -> str:
        """District / street / community by name (codes the directory does not know as is)."""
        directory = self.case.directory
        names = {
            "district": directory.districts.get(location.get("district") or ""),
            "street": (directory.streets.get(location.get("street") or "") or (None, None))[1],
            "community": (
                directory.communities.get(location.get("community") or "") or (None, None)
            )[1],
        }
        return " / ".join(
            str(names.get(k) or location.get(k))
            for k in ("district", "street", "community", "grid", "address")
            if location.get(k)
        )

    def dept_of(self, assignment_id: str | None) -> str:
        return self.dept(self.departments_of.get(assignment_id or ""))

    def yes_no(self, value: bool | None) -> str:
        if value is None:
            return "—"
        return self.w("yes") if value else self.w("no")

    # ------------------------------------------------------------ sections

    def head(self) -> list[tuple[str, Cell]]:
        first = self.case.events[0]
        grievance = audit.replay(self.case.events)
        assert grievance is not None
        name = first.citizen_name if self.unmasked else mask_name(first.citizen_name)
        phone = first.citizen_phone if self.unmasked else mask_phone(first.citizen_phone)
        if self.case.broken is None:
            integrity = Cell(self.w("intact"), "ok")
        else:
            b = self.case.broken
            why = broken_link_text(b, self.lang)
            integrity = Cell(f"{self.w('broken')}: v{b.version} {b.event_type} — {why}", "broken")
        return [
            ("number", Cell(grievance.number)),
            ("id", Cell(str(grievance.id), "mono")),
            ("status", Cell(self.label("status", grievance.status.value))),
            ("category", Cell(self.category(grievance.category))),
            ("channel", Cell(self.label("channel", grievance.channel))),
            ("received", Cell(self.when(grievance.received_at))),
            ("citizen", Cell(f"{name or ''} {phone or ''}")),
            ("place", Cell(self.place(first.location))),
            ("text", Cell(self.free(grievance.text))),
            ("generated", Cell(self.when(self.case.generated_at))),
            ("integrity", integrity),
        ]

    def category(self, code: str | None) -> str:
        if not code:
            return "—"
        found = self.case.categories.get(code) if self.case.categories else None
        # Not among the case's categories: the packaged category tree.
        name = category_name(code, self.lang) if found is None else localized_name(found, self.lang)
        return name if name == code else f"{name} ({code})"

    def timeline(self) -> Table:
        table = Table([self.w(k) for k in ("ver", "time", "event", "by", "detail", "reason")])
        for event in self.case.events:
            name = type(event).__name__
            table.rows.append(
                _row(
                    str(event.originator_version),
                    self.when(getattr(event, "at", event.timestamp)),
                    self.label("event", name),
                    self.by(event),
                    self.detail(event, name),
                    self.reason(event),
                )
            )
        return table

    def detail(self, event: Any, name: str) -> str:
        parts: list[str] = []
        if name == "Classified":
            parts.append(
                f"{self.category(event.category)} · {self.label('urgency', event.urgency)}"
                f" · {event.sla_class}"
            )
        for data in _assignments(event):
            role = self.label("assignment_role", data.get("role", ""))
            line = f"{self.dept(data['department'])} [{role}]"
            for key in ("sign_for_deadline", "resolve_deadline", "report_in_deadline"):
                if data.get(key):
                    kind = key.removesuffix("_deadline")
                    line += f"; {self.label('deadline_kind', kind)} {self.when_text(data[key])}"
            parts.append(line)
        assignment_id = getattr(event, "assignment_id", None)
        if assignment_id and name not in ("Arbitrated",):
            parts.append(self.dept_of(assignment_id))
        if name == "Returned":
            parts.append(self.deadline("redispatch", event.redispatch_deadline))
        if name == "Arbitrated":
            parts.append(self.w("decision", decision=self.label("decision", event.decision)))
        if name in ("ProgressReported",):
            parts.append(self.free(event.note))
        if name in ("PartCompleted", "Resolved"):
            parts.append(self.free(event.account))
        if name == "Resolved":
            parts.append(
                f"{self.label('deadline_kind', 'feedback')} {self.when(event.feedback_deadline)}"
            )
        if name == "ExtensionRequested":
            parts.append(f"{self.w('requested')} {self.when(event.requested_deadline)}")
        if name == "ExtensionGranted":
            parts.append(f"{self.w('new_deadline')} {self.when(event.new_deadline)}")
        if name in ("Urged", "Escalated"):
            if name == "Escalated":
                parts.append(self.label("escalation_level", int(event.level)))
            if event.kind:
                parts.append(
                    f"{self.label('deadline_kind', event.kind)} {self.when(event.deadline)}"
                )
            if event.department and not assignment_id:
                parts.append(self.dept(event.department))
        if name == "FeedbackRecorded":
            satisfaction = (
                self.label("satisfaction", event.satisfaction) if event.satisfaction else "—"
            )
            parts.append(
                f"{self.w('contacted')}: {self.yes_no(event.contacted)}; "
                f"{self.w('resolved')}: {self.yes_no(event.resolved)}; "
                f"{self.w('satisfaction')}: {satisfaction}"
            )
        if name == "Closed":
            parts.append(self.label("outcome", event.outcome))
        if name == "Attached":  # the file itself is shown in the attachments section
            parts.append(f"{event.filename} ({event.media_type})")
        if name == "Merged":
            parts.append(f"→ {event.into_number}")
        if name == "DuplicateLinked":
            parts.append(f"← {event.duplicate_number}")
        if name == "Reopened":
            parts.insert(0, f"#{event.reopen_count}")
        return "; ".join(p for p in parts if p)

    def deadlines(self) -> Table:
        head = ("kind", "owner", "due", "original_due", "outcome", "done_at", "late_by")
        table = Table([*(self.w(k) for k in head), self.w("follow_ups")])
        for r in self.case.deadlines:
            late = audit.late_by_text(r.late_by_seconds) if r.late_by_seconds else ""
            follow = "; ".join(
                f"{self.when(f.at)} {self.label('follow_up', f.action)}"
                + (f" ({self.label('escalation_level', f.level)})" if f.level else "")
                for f in r.follow_ups
            )
            outcome = self.label("deadline_outcome", r.outcome)
            table.rows.append(
                _row(
                    self.label("deadline_kind", r.kind),
                    self.dept(r.department),
                    self.when(r.due),
                    self.when(r.original_due),
                    Cell(outcome, "late" if r.missed else None),
                    self.when(r.closed_at),
                    Cell(late, "late" if late else None),
                    follow,
                )
            )
        return table

    def table(self, head: Iterable[str], *names: str) -> tuple[Table, list[tuple[Any, str]]]:
        """An empty table with ``head`` in words, and the case's events named ``names``."""
        found = [(e, type(e).__name__) for e in self.case.events if type(e).__name__ in names]
        return Table([self.w(k) for k in head]), found

    def step_row(self, event: Any, name: str, *cells: str) -> Row:
        """One recorded step: when, what, its own cells, by whom and why."""
        what = self.label("event", name)
        return _row(self.when(event.at), what, *cells, self.by(event), self.reason(event))

    def urges(self) -> Table:
        head = ("time", "action", "level", "named", "deadline", "by", "reason")
        table, events = self.table(head, "Urged", "Escalated")
        for event, name in events:
            named = event.department or self.departments_of.get(event.assignment_id or "")
            table.rows.append(
                self.step_row(
                    event,
                    name,
                    self.label("escalation_level", int(event.level)) if name == "Escalated" else "",
                    self.dept(named),
                    f"{self.label('deadline_kind', event.kind)} {self.when(event.deadline)}"
                    if event.kind
                    else "",
                )
            )
        return table

    def extensions(self) -> Table:
        head = ("time", "action", "owner", "deadline", "by", "reason")
        table, events = self.table(
            head, "ExtensionRequested", "ExtensionGranted", "ExtensionDenied"
        )
        for event, name in events:
            moment = ""
            if name == "ExtensionRequested":
                moment = f"{self.w('requested')} {self.when(event.requested_deadline)}"
            elif name == "ExtensionGranted":
                moment = f"{self.w('new_deadline')} {self.when(event.new_deadline)}"
            table.rows.append(self.step_row(event, name, self.dept_of(event.assignment_id), moment))
        return table

    def feedback(self) -> Table:
        head = ("time", "contacted", "resolved", "satisfaction", "comment", "by")
        table, events = self.table(head, "FeedbackRecorded")
        for event, _ in events:
            table.rows.append(
                _row(
                    self.when(event.at),
                    self.yes_no(event.contacted),
                    self.yes_no(event.resolved),
                    self.label("satisfaction", event.satisfaction) if event.satisfaction else "—",
                    self.free(event.comment or ""),
                    self.by(event),
                )
            )
        return table

    def attachments(self) -> list[dict[str, Any]]:
        """附件: each attached file with who attached it when, its image inline."""
        shown = []
        for event in self.case.events:
            if type(event).__name__ != "Attached":
                continue
            thumb = self.case.thumbnails.get(event.thumbnail_sha256 or "")
            shown.append(
                {
                    "version": event.originator_version,
                    "when": self.when(event.at),
                    "by": self.by(event),
                    "department": self.dept(getattr(event, "department", None)),
                    "filename": event.filename,
                    "media_type": event.media_type,
                    "size": f"{event.size:,}",
                    "sha256": event.sha256,
                    "note": self.free(event.note or ""),
                    "image": "data:image/jpeg;base64," + base64.b64encode(thumb).decode()
                    if thumb
                    else None,
                    "is_image": event.thumbnail_sha256 is not None,
                }
            )
        return shown

    def workflow(self, section: WorkflowSection) -> dict[str, Any]:
        shown: dict[str, Any] = {"workflow_id": section.workflow_id, "note": None, "note_id": None}
        if section.error is not None:
            unreachable = section.error == "unreachable"
            shown["note"] = "wf_unreachable" if unreachable else "wf_not_configured"
            shown["note_id"] = "workflow-unavailable"
            return shown
        if not section.found or section.entries is None:
            shown["note"] = "wf_not_found"
            return shown
        entries = section.entries
        timers = sum(1 for e in entries if e.get("kind") == "timer")
        activities = sum(1 for e in entries if e.get("kind") == "activity")
        shown["summary"] = self.w("wf_summary", timers=timers, activities=activities)
        table = Table([self.w(k) for k in ("time", "wf_kind", "wf_what", "wf_outcome", "wf_end")])
        table.rows = [self.workflow_row(e) for e in entries]
        shown["table"] = table
        return shown

    def workflow_row(self, entry: dict[str, Any]) -> Row:
        kind = str(entry.get("kind", ""))
        what = ""
        outcome = self.label("workflow_outcome", entry["outcome"]) if "outcome" in entry else ""
        if kind == "timer":
            what = (
                f"{self.w('seconds', n=round(float(entry.get('duration_seconds') or 0), 3))}; "
                f"{self.w('fires_at', t=self.when_text(entry.get('fires_at')))}"
            )
        elif kind == "activity":
            activity_type = str(entry.get("activity_type", ""))
            data = entry.get("input") or {}
            bits = [f"{self.label('activity', activity_type)} ({activity_type})"]
            if isinstance(data, dict):
                if data.get("level"):
                    bits.append(self.label("escalation_level", int(data["level"])))
                if data.get("kind"):
                    bits.append(self.label("deadline_kind", data["kind"]))
                if data.get("department"):
                    bits.append(self.dept(str(data["department"])))
                if data.get("due"):
                    bits.append(f"{self.w('due')} {self.when_text(str(data['due']))}")
                if data.get("command_id"):
                    bits.append(str(data["command_id"]))
            if entry.get("failure"):
                bits.append(str(entry["failure"]))
            what = "; ".join(bits)
        elif kind == "signal":
            events = ", ".join(str(e) for e in entry.get("events") or [] if e)
            what = f"{entry.get('name')} v{entry.get('version')}"
            if events:
                what += f" ({events})"
        elif kind == "run_started":
            what = f"{entry.get('workflow_type')} · {entry.get('run_id')}"
        elif kind == "run_ended":
            what = str(entry.get("run_id", ""))
        return _row(
            self.when_text(entry.get("at")),
            self.w(kind) if has(f"casefile.{kind}", self.lang) else kind,
            what,
            outcome,
            self.when_text(entry.get("ended_at")),
            css=f"wf-{kind}",
        )


def _assignments(event: Any) -> list[dict[str, Any]]:
    name = type(event).__name__
    if name in ("Dispatched", "Reopened", "Summoned"):
        return list(event.assignments)
    if name == "Arbitrated":
        return [event.assignment]
    return []


def render(case: CaseFile, workflow: WorkflowSection, *, lang: Lang, unmasked: bool) -> str:
    """The whole page, from ``api/templates/casefile.html``."""
    page = _Page(case, lang, unmasked)
    grievance = audit.replay(case.events)
    assert grievance is not None
    return (
        environment()
        .get_template("casefile.html")
        .render(
            html_lang="en" if lang == "en" else "zh-CN",
            title=f"{page.w('title')} {grievance.number}",
            w=page.w,
            head=page.head(),
            sections=[
                ("timeline", page.timeline()),
                ("deadlines", page.deadlines()),
                ("urges", page.urges()),
                ("extensions", page.extensions()),
                ("feedback", page.feedback()),
            ],
            workflow=page.workflow(workflow),
            attachments=page.attachments(),
        )
    )
