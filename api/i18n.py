"""Language choice and the words people read: Simplified Chinese by default, English on request."""

from __future__ import annotations

from typing import Literal

from starlette.requests import HTTPConnection

Lang = Literal["zh", "en"]

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "received": ("已受理", "received"),
    "classified": ("已梳理", "classified"),
    "dispatched": ("已派单", "dispatched"),
    "in_progress": ("办理中", "in progress"),
    "returned": ("已退单", "returned"),
    "resolved": ("已办结", "resolved"),
    "closed": ("已归档", "closed"),
    "rejected": ("不予受理", "rejected"),
    "merged": ("已合并", "merged"),
    "withdrawn": ("已撤件", "withdrawn"),
}

ACTION_LABELS: dict[str, str] = {
    "classify": "梳理",
    "reject": "不予受理",
    "merge": "合并",
    "withdraw": "撤件",
    "urge": "催办",
    "escalate": "督办",
    "dispatch": "派单",
    "sign_for": "签收",
    "sign for": "签收",
    "return": "退单",
    "report_progress": "阶段反馈",
    "report progress": "阶段反馈",
    "request_extension": "延期申请",
    "request extension": "延期申请",
    "decide_extension": "延期审批",
    "decide extension": "延期审批",
    "complete_part": "协办完成",
    "complete part": "协办完成",
    "resolve": "办结",
    "summon": "吹哨",
    "report_in": "报到",
    "report in": "报到",
    "arbitrate": "仲裁",
    "record_feedback": "回访",
    "record feedback": "回访",
    "close": "归档",
    "route": "路由",
}


def choose_language(conn: HTTPConnection) -> Lang:
    """``?lang=en`` wins; then the first tag of ``Accept-Language``; Chinese otherwise."""
    explicit = conn.query_params.get("lang", "").strip().lower()
    if explicit.startswith("en"):
        return "en"
    if explicit.startswith("zh"):
        return "zh"
    header = conn.headers.get("accept-language", "")
    first = header.split(",")[0].split(";")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"


def status_label(status: str, lang: Lang) -> str:
    zh, en = STATUS_LABELS.get(status, (status, status))
    return en if lang == "en" else zh


def action_label(action: str, lang: Lang) -> str:
    if lang == "en":
        return action.replace("_", " ")
    return ACTION_LABELS.get(action, action)
