"""The one catalogue of the words people read: Simplified Chinese (default) and English.

The words live in ``api/locales/zh.toml`` and ``en.toml`` (same keys, one term per concept
from the glossary in ``../shared/DESIGN.md``). ``t(key, lang, **params)`` looks a key up
(``section.name``, e.g. ``status.in_progress`` or ``error.text-too-long``) and fills its
``{placeholders}``. Parameters are formatted by their name, so a domain error's code and
parameters render without knowing the error:

| parameter | rendered as |
| --- | --- |
| ``action``, ``allowed`` | action labels |
| ``status`` | status label |
| ``state`` | assignment-state label |
| ``role``, ``roles`` | role label (a principal's role or an assignment's role) |
| ``department(s)``, ``returned_department``, ``actor_department`` | department names |
| ``category`` | category name |
| ``district``, ``street``, ``community`` | the place's name (Chinese; English keeps the code) |
| ``kind`` | deadline-kind label |
| ``level``, ``levels`` | escalation-level label |
| ``outcome`` | close-outcome label |
| ``due``, ``deadline``, ``latest`` | local time, to the minute |

Lists are joined with 、 in Chinese and ", " in English; an empty list is 无 / nothing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from functools import cache
from importlib import resources
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.errors import DomainError, IllegalTransitionError, ValidationError
from domain.policies import load_policies
from domain.policies.categories import Category
from domain.policies.directory import Directory

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


@cache
def messages(lang: Lang) -> Mapping[str, str]:
    """Every key of one language, flattened to ``section.name``."""
    text = resources.files("api").joinpath("locales", f"{lang}.toml").read_text(encoding="utf-8")
    flat: dict[str, str] = {}
    for section, table in tomllib.loads(text).items():
        for name, value in table.items():
            flat[f"{section}.{name}"] = str(value)
    return flat


def has(key: str, lang: Lang = "zh") -> bool:
    return key in messages(lang)


@cache
def _default_policies() -> tuple[Directory, tzinfo, Mapping[str, Category]]:
    policies = load_policies()
    return policies.directory, ZoneInfo(policies.calendar.timezone), policies.categories.by_code


def localized_name(known: Any, lang: Lang) -> str:
    """A department's or category's name: ``name_en`` in English when it has one."""
    return str(known.name_en if lang == "en" and known.name_en else known.name)


def department_name(code: str | None, lang: Lang, directory: Directory | None = None) -> str:
    """A department by name (its code when the directory does not know it)."""
    if not code:
        return ""
    special = f"department.{code}"
    if special in messages(lang):
        return messages(lang)[special]
    known = (directory or _default_policies()[0]).departments.get(code)
    if known is None:
        return code
    return localized_name(known, lang)


def category_name(code: str | None, lang: Lang) -> str:
    """A category of the packaged tree by name (its code when unknown)."""
    if not code:
        return ""
    known = _default_policies()[2].get(code)
    if known is None:
        return code
    return localized_name(known, lang)


def label(section: str, value: Any, lang: Lang) -> str:
    """One value's label in a section (``status``, ``action`` …), the value itself if unknown."""
    if value is None or value == "":
        return ""
    key = str(getattr(value, "value", value))
    if section == "action":
        key = key.replace(" ", "_")
    return messages(lang).get(f"{section}.{key}", key)


def _role(value: Any, lang: Lang) -> str:
    key = f"role.{value}"
    return messages(lang).get(key) or label("assignment_role", value, lang)


def join(items: Iterable[str], lang: Lang) -> str:
    shown = [i for i in items if i]
    if not shown:
        return messages(lang)["word.none"]
    return messages(lang)["word.list_separator"].join(shown)


def local_time(value: Any, tz: tzinfo | None = None) -> str:
    """An instant (datetime or ISO text) in the city's time, to the minute."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return str(value)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(tz or _default_policies()[1]).strftime("%Y-%m-%d %H:%M")


# Parameters formatted as the label of a catalogue section, by parameter name.
_LABELLED = {
    "action": "action",
    "allowed": "action",
    "status": "status",
    "state": "assignment_state",
    "kind": "deadline_kind",
    "level": "escalation_level",
    "levels": "escalation_level",
    "outcome": "outcome",
}
_DEPARTMENTS = frozenset({"department", "departments", "returned_department", "actor_department"})
_INSTANTS = frozenset({"due", "deadline", "latest"})


class _Context:
    def __init__(self, lang: Lang, directory: Directory | None, tz: tzinfo | None) -> None:
        self.lang = lang
        self.directory = directory
        self.tz = tz

    def place(self, level: str, code: str) -> str:
        """A district, street or community by its Chinese name (English keeps the code)."""
        if self.lang == "en":
            return code
        directory = self.directory or _default_policies()[0]
        if level == "district":
            return directory.districts.get(code, code)
        table = directory.streets if level == "street" else directory.communities
        found = table.get(code)
        return found[1] if found else code

    def item(self, name: str, value: Any) -> str:
        """One value of the parameter ``name``, by what the name says it is."""
        if name in _LABELLED:
            return label(_LABELLED[name], value, self.lang)
        if name in ("role", "roles"):
            return _role(value, self.lang)
        if name in _DEPARTMENTS:
            return department_name(str(value), self.lang, self.directory)
        if name == "category":
            return category_name(str(value), self.lang)
        if name in ("district", "street", "community"):
            return self.place(name, str(value))
        if name in _INSTANTS:
            return local_time(value, self.tz)
        return str(value)

    def one(self, name: str, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            return join((self.item(name, v) for v in items if v is not None), self.lang)
        return self.item(name, value)


class _Filled(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def t(
    key: str,
    lang: Lang = "zh",
    *,
    directory: Directory | None = None,
    tz: tzinfo | None = None,
    **params: Any,
) -> str:
    """The text of ``key`` in ``lang`` with its parameters formatted by name.

    An unknown key is a bug the catalogue tests catch; at run time it shows as the key.
    """
    template = messages(lang).get(key)
    if template is None:
        return key
    if not params and "{" not in template:
        return template
    context = _Context(lang, directory, tz)
    filled = _Filled({name: context.one(name, value) for name, value in params.items()})
    return template.format_map(filled)


def section(name: str, lang: Lang) -> dict[str, str]:
    """Every key of one section, without the section prefix (for pages that ship a table)."""
    prefix = f"{name}."
    return {k[len(prefix) :]: v for k, v in messages(lang).items() if k.startswith(prefix)}


def role_label(role: Any, lang: Lang) -> str:
    """A principal's role (operator, department …) or an assignment's role (lead, assisting …)."""
    return _role(getattr(role, "value", role), lang) if role else ""


def reason_text(
    event: Any, lang: Lang, directory: Directory | None = None, tz: tzinfo | None = None
) -> str:
    """An event's reason: a person's own words as given; a workflow's reason code in words."""
    code = getattr(event, "reason_code", None)
    if code and has(f"event_reason.{code}", lang):
        params = dict(getattr(event, "reason_params", None) or {})
        return t(f"event_reason.{code}", lang, directory=directory, tz=tz, **params)
    return str(getattr(event, "reason", None) or "")


def broken_link_text(link: Any, lang: Lang) -> str:
    """Why a hash chain is broken, from what the check expected (the domain's text is for logs)."""
    reason = str(getattr(link, "reason", ""))
    if has(f"integrity.{reason}", lang):
        return t(f"integrity.{reason}", lang)
    expected = str(getattr(link, "expected", ""))
    if expected == "decodable event":
        return t("integrity.undecodable", lang)
    if expected.startswith("version "):
        return t("integrity.missing-event", lang)
    return t("integrity.hash-mismatch", lang)


def describe(error: DomainError, lang: Lang, directory: Directory | None = None) -> str:
    """One domain error in words, from its code and parameters (API, Open311 and CLI alike).

    A refused transition names the current status, the refused action, what blocks it (the
    reason code's text, e.g. the pending assisting departments by name) and what is allowed.
    """
    params: dict[str, Any] = dict(getattr(error, "params", None) or {})
    code = str(error.code)
    if isinstance(error, IllegalTransitionError):
        reason = params.pop("reason", None)
        key = f"error.{type(error).code}"
        if reason and has(f"reason.{reason}", lang):
            params["reason"] = t(f"reason.{reason}", lang, directory=directory, **params)
            key += "-because"
        return t(key, lang, directory=directory, **params)
    if has(f"error.{code}", lang):
        return t(f"error.{code}", lang, directory=directory, **params)
    fallback = str(type(error).code)
    if not has(f"error.{fallback}", lang):
        fallback = "invalid-command" if isinstance(error, ValidationError) else "domain-error"
    return t(f"error.{fallback}", lang, directory=directory, **params)
