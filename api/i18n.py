"""Language choice (and ``Lang``, re-exported for the modules that only need the type).

The words themselves live only in the catalogue (``api/catalogue.py``, ``api/locales/``).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from api.catalogue import Lang

__all__ = ["Lang", "choose_language"]


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
