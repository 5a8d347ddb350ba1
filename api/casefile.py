"""案卷: one grievance's printable case file, as a self-contained HTML page.

Built from the grievance's stored events (timeline, deadlines, urges, escalations,
extensions, feedback), its hash-chain check, and the summary of its Temporal workflow
history that the composition root supplies. Simplified Chinese by default, English on
request; inline CSS with print rules, no external resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from api.i18n import Lang, status_label
from domain import audit
from domain.integrity import BrokenLink
from domain.model import mask_name, mask_phone
from domain.policies.directory import Directory


@dataclass
class CaseFile:
    events: Sequence[Any]
    deadlines: list[audit.DeadlineRecord]
    broken: BrokenLink | None
    generated_at: datetime
    directory: Directory
    tz: ZoneInfo


@dataclass
class WorkflowSection:
    workflow_id: str
    entries: list[dict[str, Any]] | None = None
    found: bool = False
    error: str | None = None  # unreachable | not_configured


# (zh, en) for every word a reader sees.
EVENT_LABELS: dict[str, tuple[str, str]] = {
    "Received": ("受理", "Received"),
    "Classified": ("梳理分类", "Classified"),
    "Rejected": ("不予受理", "Rejected"),
    "Dispatched": ("派单", "Dispatched"),
    "SignedFor": ("签收", "Signed for"),
    "Returned": ("退单", "Returned"),
    "Arbitrated": ("仲裁", "Arbitrated"),
    "ProgressReported": ("阶段反馈", "Progress reported"),
    "ExtensionRequested": ("延期申请", "Extension requested"),
    "ExtensionGranted": ("同意延期", "Extension granted"),
    "ExtensionDenied": ("不同意延期", "Extension denied"),
    "PartCompleted": ("协办完成", "Part completed"),
    "Resolved": ("办结", "Resolved"),
    "Summoned": ("吹哨", "Summoned"),
    "ReportedIn": ("报到", "Reported in"),
    "Urged": ("催办", "Urged"),
    "Escalated": ("督办", "Escalated"),
    "FeedbackRecorded": ("回访", "Feedback recorded"),
    "Reopened": ("重办", "Reopened"),
    "Merged": ("合并", "Merged"),
    "DuplicateLinked": ("关联重复件", "Duplicate linked"),
    "Withdrawn": ("撤件", "Withdrawn"),
    "Closed": ("归档", "Closed"),
}
KIND_LABELS: dict[str, tuple[str, str]] = {
    "sign_for": ("签收时限", "sign-for deadline"),
    "resolve": ("办结时限", "resolve deadline"),
    "report_in": ("报到时限", "report-in deadline"),
    "redispatch": ("改派时限", "re-dispatch deadline"),
    "feedback": ("回访时限", "feedback deadline"),
}
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "met": ("按时", "met"),
    "met_late": ("逾期完成", "met late"),
    "lapsed": ("逾期失效", "lapsed"),
    "returned": ("已退单", "returned"),
    "superseded": ("已被取代", "superseded"),
    "cancelled": ("已取消", "cancelled"),
    "open": ("进行中", "open"),
    "open_overdue": ("已逾期未完成", "open, overdue"),
}
FOLLOW_UP_LABELS: dict[str, tuple[str, str]] = {
    "urged": ("催办", "urged"),
    "escalated": ("督办", "escalated"),
    "extension_requested": ("申请延期", "extension requested"),
    "extension_granted": ("同意延期", "extension granted"),
    "extension_denied": ("不同意延期", "extension denied"),
}
ROLE_LABELS: dict[str, tuple[str, str]] = {
    "operator": ("接线员", "operator"),
    "department": ("承办单位", "department"),
    "supervisor": ("督办", "supervisor"),
    "system": ("系统（流程）", "system (workflow)"),
    "open311": ("Open311 渠道", "Open311 client"),
    "lead": ("主办", "lead"),
    "assisting": ("协办", "assisting"),
    "summoned": ("吹哨报到", "summoned"),
}
LEVEL_LABELS: dict[int, tuple[str, str]] = {
    1: ("一级：街道领导", "level 1: street leader"),
    2: ("二级：区督查", "level 2: district supervision"),
    3: ("三级：兜底办", "level 3: leader-led resolution"),
}
SATISFACTION_LABELS: dict[str, tuple[str, str]] = {
    "satisfied": ("满意", "satisfied"),
    "basically_satisfied": ("基本满意", "basically satisfied"),
    "unsatisfied": ("不满意", "unsatisfied"),
    "no_response": ("未能回访", "no response"),
    "closed_by_supervisor": ("督办归档", "closed by supervisor"),
}
ACTIVITY_LABELS: dict[str, tuple[str, str]] = {
    "urge": ("催办", "urge"),
    "escalate": ("督办", "escalate"),
    "close_no_response": ("回访超时归档", "close (no response)"),
    "notify": ("通知承办单位", "notify department"),
}
WORKFLOW_OUTCOMES: dict[str, tuple[str, str]] = {
    "fired": ("已触发", "fired"),
    "cancelled": ("已取消", "cancelled"),
    "pending": ("等待中", "pending"),
    "completed": ("已完成", "completed"),
    "failed": ("失败", "failed"),
    "timed_out": ("超时", "timed out"),
    "continued_as_new": ("续新运行", "continued as new"),
    "terminated": ("已终止", "terminated"),
}
WORDS: dict[str, tuple[str, str]] = {
    "title": ("诉求案卷", "Grievance case file"),
    "number": ("工单编号", "Case number"),
    "id": ("诉求标识", "Grievance id"),
    "status": ("当前状态", "Current status"),
    "category": ("分类", "Category"),
    "channel": ("渠道", "Channel"),
    "received": ("受理时间", "Received"),
    "citizen": ("诉求人", "Citizen"),
    "place": ("地点", "Place"),
    "text": ("诉求内容", "Request"),
    "generated": ("生成时间", "Generated"),
    "integrity": ("防篡改校验", "Tamper check"),
    "intact": ("哈希链完整，记录未被改动", "hash chain intact: the record was not altered"),
    "broken": ("哈希链断裂", "hash chain broken"),
    "timeline": ("办理经过", "Timeline"),
    "deadlines": ("时限与履行", "Deadlines and whether they were met"),
    "urges": ("催办与督办", "Urges and escalations"),
    "extensions": ("延期", "Extensions"),
    "feedback": ("回访", "Feedback"),
    "workflow": ("流程记录（Temporal）", "Workflow history (Temporal)"),
    "ver": ("版本", "Ver."),
    "time": ("时间", "Time"),
    "event": ("事项", "Event"),
    "by": ("经办", "By"),
    "detail": ("内容", "Details"),
    "reason": ("理由", "Reason"),
    "kind": ("时限", "Deadline"),
    "owner": ("责任单位", "Owner"),
    "due": ("到期", "Due"),
    "original_due": ("原到期", "Originally due"),
    "outcome": ("结果", "Outcome"),
    "done_at": ("完成时间", "Done at"),
    "late_by": ("逾期", "Late by"),
    "follow_ups": ("后续", "What followed"),
    "action": ("措施", "Action"),
    "level": ("级别", "Level"),
    "named": ("督办对象", "Named"),
    "deadline": ("对应时限", "Deadline"),
    "requested": ("申请至", "Requested until"),
    "new_deadline": ("新时限", "New deadline"),
    "contacted": ("联系上", "Reached"),
    "resolved": ("已解决", "Solved"),
    "satisfaction": ("满意度", "Satisfaction"),
    "comment": ("意见", "Comment"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "none": ("无", "none"),
    "workflow_id": ("流程标识", "Workflow id"),
    "wf_kind": ("类型", "Kind"),
    "wf_what": ("内容", "What"),
    "wf_outcome": ("结果", "Outcome"),
    "wf_end": ("结束", "Ended"),
    "timer": ("定时器", "timer"),
    "activity": ("活动", "activity"),
    "signal": ("信号", "signal"),
    "run_started": ("开始运行", "run started"),
    "run_ended": ("运行结束", "run ended"),
    "wf_unreachable": (
        "无法连接 Temporal，流程记录暂不可得（案卷其余内容来自事件存储，不受影响）。",
        "Temporal could not be reached: the workflow history is unavailable "
        "(the rest of this file comes from the event store and is complete).",
    ),
    "wf_not_configured": (
        "本服务未配置 Temporal，流程记录不可得。",
        "This server has no Temporal connection configured: no workflow history.",
    ),
    "wf_not_found": (
        "Temporal 中尚无此流程（事件可能尚未转发）。",
        "Temporal has no such workflow (the events may not have been relayed yet).",
    ),
    "wf_summary": (
        "定时器 {timers} 个，活动 {activities} 个",
        "{timers} timers, {activities} activities",
    ),
    "seconds": ("{n} 秒", "{n} s"),
    "fires_at": ("到点 {t}", "fires {t}"),
    "print": ("打印", "Print"),
}

CSS = """
:root { --ink:#1a1a1a; --muted:#666; --line:#ccc; --warn:#b00020; --ok:#1b5e20; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
  color: var(--ink); margin: 2rem auto; max-width: 1100px; padding: 0 1rem; line-height: 1.45;
  font-size: 14px; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; border-bottom: 2px solid var(--ink); padding-bottom: .2rem;
  margin-top: 1.8rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .45rem; text-align: left;
  vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
dl.head { display: grid; grid-template-columns: 8rem 1fr; gap: .2rem 1rem; margin: 1rem 0; }
dl.head dt { color: var(--muted); }
dl.head dd { margin: 0; }
.late, .broken { color: var(--warn); font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
.muted { color: var(--muted); }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px;
  word-break: break-all; }
.note { border-left: 4px solid var(--warn); padding: .4rem .7rem; background: #fff5f5; }
.toolbar { float: right; }
@media print {
  @page { size: A4; margin: 15mm 12mm; }
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  .toolbar { display: none; }
  h2 { break-after: avoid; }
  tr, dl.head { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


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

    def w(self, key: str, **fmt: Any) -> str:
        zh, en = WORDS[key]
        text = en if self.lang == "en" else zh
        return text.format(**fmt) if fmt else text

    def label(self, table: dict[Any, tuple[str, str]], key: Any) -> str:
        pair = table.get(key)
        if pair is None:
            return str(key)
        return pair[1] if self.lang == "en" else pair[0]

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
        if code == "dispatch-centre":
            return "派单中心" if self.lang == "zh" else "dispatch centre"
        department = self.case.directory.departments.get(code)
        if department is None:
            return code
        name = department.name_en if self.lang == "en" and department.name_en else department.name
        return f"{name} ({code})"

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

    def head(self) -> str:
        first = self.case.events[0]
        grievance = audit.replay(self.case.events)
        assert grievance is not None
        name = first.citizen_name if self.unmasked else mask_name(first.citizen_name)
        phone = first.citizen_phone if self.unmasked else mask_phone(first.citizen_phone)
        place = self.place(first.location)
        if self.case.broken is None:
            integrity = f'<span class="ok">{escape(self.w("intact"))}</span>'
        else:
            b = self.case.broken
            integrity = (
                f'<span class="broken">{escape(self.w("broken"))}: v{b.version} {b.event_type} '
                f"— {escape(b.reason)}</span>"
            )
        rows = [
            ("number", escape(grievance.number)),
            ("id", f'<span class="mono">{grievance.id}</span>'),
            ("status", escape(status_label(grievance.status.value, self.lang))),
            ("category", escape(grievance.category or "—")),
            ("channel", escape(grievance.channel)),
            ("received", escape(self.when(grievance.received_at))),
            ("citizen", escape(f"{name or ''} {phone or ''}")),
            ("place", escape(place)),
            ("text", escape(grievance.text)),
            ("generated", escape(self.when(self.case.generated_at))),
            ("integrity", integrity),
        ]
        body = "".join(f"<dt>{escape(self.w(k))}</dt><dd>{v}</dd>" for k, v in rows)
        return f'<dl class="head">{body}</dl>'

    def timeline(self) -> str:
        rows = []
        for event in self.case.events:
            name = type(event).__name__
            role = getattr(event, "role", "") or ""
            by = f"{event.principal} · {self.label(ROLE_LABELS, role)}"
            rows.append(
                _row(
                    str(event.originator_version),
                    self.when(getattr(event, "at", event.timestamp)),
                    self.label(EVENT_LABELS, name),
                    by,
                    self.detail(event, name),
                    event.reason or "",
                )
            )
        return _table([self.w(k) for k in ("ver", "time", "event", "by", "detail", "reason")], rows)

    def detail(self, event: Any, name: str) -> str:
        parts: list[str] = []
        en = self.lang == "en"
        if name == "Classified":
            parts.append(f"{event.category} · {event.urgency} · {event.sla_class}")
        for data in _assignments(event):
            role = self.label(ROLE_LABELS, data.get("role", ""))
            line = f"{self.dept(data['department'])} [{role}]"
            for key in ("sign_for_deadline", "resolve_deadline", "report_in_deadline"):
                if data.get(key):
                    kind = key.removesuffix("_deadline")
                    line += f"; {self.label(KIND_LABELS, kind)} {self.when_text(data[key])}"
            parts.append(line)
        assignment_id = getattr(event, "assignment_id", None)
        if assignment_id and name not in ("Arbitrated",):
            parts.append(self.dept_of(assignment_id))
        if name == "Returned":
            parts.append(
                f"{self.label(KIND_LABELS, 'redispatch')} {self.when(event.redispatch_deadline)}"
            )
        if name == "Arbitrated":
            parts.append(("decision: " if en else "裁定：") + str(event.decision))
        if name in ("ProgressReported",):
            parts.append(event.note)
        if name in ("PartCompleted", "Resolved"):
            parts.append(event.account)
        if name == "Resolved":
            parts.append(
                f"{self.label(KIND_LABELS, 'feedback')} {self.when(event.feedback_deadline)}"
            )
        if name == "ExtensionRequested":
            parts.append(f"{self.w('requested')} {self.when(event.requested_deadline)}")
        if name == "ExtensionGranted":
            parts.append(f"{self.w('new_deadline')} {self.when(event.new_deadline)}")
        if name in ("Urged", "Escalated"):
            if name == "Escalated":
                parts.append(self.label(LEVEL_LABELS, int(event.level)))
            if event.kind:
                parts.append(f"{self.label(KIND_LABELS, event.kind)} {self.when(event.deadline)}")
            if event.department and not assignment_id:
                parts.append(self.dept(event.department))
        if name == "FeedbackRecorded":
            satisfaction = (
                self.label(SATISFACTION_LABELS, event.satisfaction) if event.satisfaction else "—"
            )
            parts.append(
                f"{self.w('contacted')}: {self.yes_no(event.contacted)}; "
                f"{self.w('resolved')}: {self.yes_no(event.resolved)}; "
                f"{self.w('satisfaction')}: {satisfaction}"
            )
        if name == "Closed":
            parts.append(self.label(SATISFACTION_LABELS, event.outcome))
        if name == "Merged":
            parts.append(f"→ {event.into_number}")
        if name == "DuplicateLinked":
            parts.append(f"← {event.duplicate_number}")
        if name == "Reopened":
            parts.insert(0, f"#{event.reopen_count}")
        return "; ".join(p for p in parts if p)

    def deadlines(self) -> str:
        rows = []
        for r in self.case.deadlines:
            late = audit.late_by_text(r.late_by_seconds) if r.late_by_seconds else ""
            follow = "; ".join(
                f"{self.when(f.at)} {self.label(FOLLOW_UP_LABELS, f.action)}"
                + (f" ({self.label(LEVEL_LABELS, f.level)})" if f.level else "")
                for f in r.follow_ups
            )
            outcome = self.label(OUTCOME_LABELS, r.outcome)
            rows.append(
                _row(
                    self.label(KIND_LABELS, r.kind),
                    self.dept(r.department),
                    self.when(r.due),
                    self.when(r.original_due),
                    _Raw(f'<span class="late">{escape(outcome)}</span>') if r.missed else outcome,
                    self.when(r.closed_at),
                    _Raw(f'<span class="late">{escape(late)}</span>') if late else "",
                    follow,
                )
            )
        head = ("kind", "owner", "due", "original_due", "outcome", "done_at", "late_by")
        return _table([*(self.w(k) for k in head), self.w("follow_ups")], rows)

    def urges(self) -> str:
        rows = []
        for event in self.case.events:
            name = type(event).__name__
            if name not in ("Urged", "Escalated"):
                continue
            named = event.department or self.departments_of.get(event.assignment_id or "")
            rows.append(
                _row(
                    self.when(event.at),
                    self.label(EVENT_LABELS, name),
                    self.label(LEVEL_LABELS, int(event.level)) if name == "Escalated" else "",
                    self.dept(named),
                    f"{self.label(KIND_LABELS, event.kind)} {self.when(event.deadline)}"
                    if event.kind
                    else "",
                    f"{event.principal} · {self.label(ROLE_LABELS, event.role)}",
                    event.reason or "",
                )
            )
        head = ("time", "action", "level", "named", "deadline", "by", "reason")
        return _table([self.w(k) for k in head], rows)

    def extensions(self) -> str:
        rows = []
        for event in self.case.events:
            name = type(event).__name__
            if not name.startswith("Extension"):
                continue
            moment = ""
            if name == "ExtensionRequested":
                moment = f"{self.w('requested')} {self.when(event.requested_deadline)}"
            elif name == "ExtensionGranted":
                moment = f"{self.w('new_deadline')} {self.when(event.new_deadline)}"
            rows.append(
                _row(
                    self.when(event.at),
                    self.label(EVENT_LABELS, name),
                    self.dept_of(event.assignment_id),
                    moment,
                    f"{event.principal} · {self.label(ROLE_LABELS, event.role)}",
                    event.reason or "",
                )
            )
        head = ("time", "action", "owner", "deadline", "by", "reason")
        return _table([self.w(k) for k in head], rows)

    def feedback(self) -> str:
        rows = []
        for event in self.case.events:
            if type(event).__name__ != "FeedbackRecorded":
                continue
            rows.append(
                _row(
                    self.when(event.at),
                    self.yes_no(event.contacted),
                    self.yes_no(event.resolved),
                    self.label(SATISFACTION_LABELS, event.satisfaction)
                    if event.satisfaction
                    else "—",
                    event.comment or "",
                    f"{event.principal} · {self.label(ROLE_LABELS, event.role)}",
                )
            )
        head = ("time", "contacted", "resolved", "satisfaction", "comment", "by")
        return _table([self.w(k) for k in head], rows)

    def workflow(self, section: WorkflowSection) -> str:
        head = (
            f"<p>{escape(self.w('workflow_id'))}: "
            f'<span class="mono" id="workflow-id">{escape(section.workflow_id)}</span></p>'
        )
        if section.error is not None:
            key = "wf_unreachable" if section.error == "unreachable" else "wf_not_configured"
            return head + f'<p class="note" id="workflow-unavailable">{escape(self.w(key))}</p>'
        if not section.found or section.entries is None:
            return head + f'<p class="note">{escape(self.w("wf_not_found"))}</p>'
        entries = section.entries
        timers = sum(1 for e in entries if e.get("kind") == "timer")
        activities = sum(1 for e in entries if e.get("kind") == "activity")
        summary = self.w("wf_summary", timers=timers, activities=activities)
        rows = [self.workflow_row(e) for e in entries]
        table = _table(
            [self.w(k) for k in ("time", "wf_kind", "wf_what", "wf_outcome", "wf_end")], rows
        )
        return head + f"<p>{escape(summary)}</p>" + table

    def workflow_row(self, entry: dict[str, Any]) -> str:
        kind = str(entry.get("kind", ""))
        what = ""
        outcome = self.label(WORKFLOW_OUTCOMES, entry["outcome"]) if "outcome" in entry else ""
        if kind == "timer":
            what = (
                f"{self.w('seconds', n=round(float(entry.get('duration_seconds') or 0), 3))}; "
                f"{self.w('fires_at', t=self.when_text(entry.get('fires_at')))}"
            )
        elif kind == "activity":
            activity_type = str(entry.get("activity_type", ""))
            data = entry.get("input") or {}
            bits = [f"{self.label(ACTIVITY_LABELS, activity_type)} ({activity_type})"]
            if isinstance(data, dict):
                if data.get("level"):
                    bits.append(self.label(LEVEL_LABELS, int(data["level"])))
                if data.get("kind"):
                    bits.append(self.label(KIND_LABELS, data["kind"]))
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
            self.w(kind) if kind in WORDS else kind,
            what,
            outcome,
            self.when_text(entry.get("ended_at")),
            css=f"wf-{kind}",
        )


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _cell(value: str) -> str:
    return value if isinstance(value, _Raw) else escape(value)


def _row(*cells: str, css: str | None = None) -> str:
    attr = f' class="{escape(css)}"' if css else ""
    return f"<tr{attr}>" + "".join(f"<td>{_cell(c)}</td>" for c in cells) + "</tr>"


def _table(head: list[str], rows: list[str]) -> str:
    if not rows:
        return '<p class="muted">—</p>'
    heading = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{heading}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _assignments(event: Any) -> list[dict[str, Any]]:
    name = type(event).__name__
    if name in ("Dispatched", "Reopened", "Summoned"):
        return list(event.assignments)
    if name == "Arbitrated":
        return [event.assignment]
    return []


def render(case: CaseFile, workflow: WorkflowSection, *, lang: Lang, unmasked: bool) -> str:
    """The whole page."""
    page = _Page(case, lang, unmasked)
    grievance = audit.replay(case.events)
    assert grievance is not None
    title = f"{page.w('title')} {grievance.number}"
    sections = [
        ("timeline", page.timeline()),
        ("deadlines", page.deadlines()),
        ("urges", page.urges()),
        ("extensions", page.extensions()),
        ("feedback", page.feedback()),
        ("workflow", page.workflow(workflow)),
    ]
    body = "".join(
        f'<section id="{key}"><h2>{escape(page.w(key))}</h2>{html}</section>'
        for key, html in sections
    )
    html_lang = "en" if lang == "en" else "zh-CN"
    return (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<div class="toolbar"><button onclick="window.print()">{escape(page.w("print"))}'
        f"</button></div><h1>{escape(title)}</h1>{page.head()}{body}</body></html>"
    )
