"""Routing rules: category × location → lead + assisting departments, and the negative list.

The negative list (社区工作事项负面清单) names duties that must never be given to a
community committee; a dispatch that would do so is refused whatever its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import NegativeListError, ValidationError
from domain.model import Location
from domain.policies.categories import Category
from domain.policies.directory import Directory


@dataclass(frozen=True, slots=True)
class RoutingRule:
    category: str
    lead: str
    assisting: tuple[str, ...]
    street: str | None = None
    community: str | None = None
    description: str = ""

    def matches(self, category: Category, location: Location) -> bool:
        if self.category not in (category.code, category.parent):
            return False
        if self.street is not None and self.street != location.street:
            return False
        return self.community is None or self.community == location.community


@dataclass(frozen=True, slots=True)
class Route:
    lead: str
    assisting: tuple[str, ...]
    rule: str  # which rule produced it, for the audit trail


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    rules: tuple[RoutingRule, ...]
    community_negative_list: frozenset[str]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RoutingPolicy:
        rules = tuple(
            RoutingRule(
                category=r["category"],
                lead=r["lead"],
                assisting=tuple(r.get("assisting", ())),
                street=r.get("street"),
                community=r.get("community"),
                description=r.get("description", ""),
            )
            for r in data.get("rules", [])
        )
        negative = frozenset(data.get("community_negative_list", {}).get("categories", []))
        return cls(rules, negative)

    def _resolve(self, target: str, location: Location, directory: Directory) -> str:
        if target == "street":
            if location.street is None:
                raise ValidationError("location-needs-street", field="location.street")
            return directory.street_office(location.street).code
        if target == "community":
            if location.community is None:
                raise ValidationError("location-needs-community", field="location.community")
            return directory.community_committee(location.community).code
        return directory.department(target).code

    def route(self, category: Category, location: Location, directory: Directory) -> Route:
        """The departments the rules give this category at this place."""
        for index, rule in enumerate(self.rules):
            if rule.matches(category, location):
                lead, assisting, source = rule.lead, rule.assisting, f"rule:{index}"
                break
        else:
            assert category.lead is not None
            lead, assisting, source = category.lead, category.assisting, f"category:{category.code}"
        lead_code = self._resolve(lead, location, directory)
        assisting_codes: list[str] = []
        for target in assisting:
            code = self._resolve(target, location, directory)
            if code != lead_code and code not in assisting_codes:
                assisting_codes.append(code)
        return Route(lead_code, tuple(assisting_codes), source)

    def check(self, category: Category, departments: list[str], directory: Directory) -> None:
        """Refuse a community committee for a duty on the negative list."""
        if category.code not in self.community_negative_list:
            return
        for code in departments:
            department = directory.department(code)
            if department.level == "community":
                raise NegativeListError(category=category.code, department=code)
