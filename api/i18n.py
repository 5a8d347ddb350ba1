"""Language choice, and a thin facade over the catalogue for the labels most modules need.

The words themselves live only in the catalogue (``api/catalogue.py``, ``api/locales/``).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from api.catalogue import Lang, label

__all__ = ["Lang", "action_label", "choose_language", "status_label"]


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
    return label("status", status, lang)


def action_label(action: str, lang: Lang) -> str:
    return label("action", action, lang)
