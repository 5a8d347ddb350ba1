"""The category tree (分类): top categories and leaves, each leaf with its default routing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    name_en: str
    parent: str | None
    lead: str | None = None  # a department code, or "street" / "community" (of the location)
    assisting: tuple[str, ...] = ()
    sla_class: str | None = None
    default_urgency: str | None = None

    @property
    def is_leaf(self) -> bool:
        return self.sla_class is not None


@dataclass(frozen=True, slots=True)
class CategoryTree:
    top: tuple[Category, ...]
    by_code: dict[str, Category]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CategoryTree:
        top: list[Category] = []
        by_code: dict[str, Category] = {}
        for node in data["categories"]:
            parent = Category(node["code"], node["name"], node.get("name_en", ""), None)
            top.append(parent)
            by_code[parent.code] = parent
            for leaf in node["children"]:
                if leaf["code"] in by_code:
                    raise ValueError(f"duplicate category code {leaf['code']}")
                by_code[leaf["code"]] = Category(
                    code=leaf["code"],
                    name=leaf["name"],
                    name_en=leaf.get("name_en", ""),
                    parent=parent.code,
                    lead=leaf["lead"],
                    assisting=tuple(leaf.get("assisting", ())),
                    sla_class=leaf["sla_class"],
                    default_urgency=leaf.get("default_urgency"),
                )
        return cls(tuple(top), by_code)

    def leaves(self) -> list[Category]:
        return [c for c in self.by_code.values() if c.is_leaf]

    def children(self, code: str) -> list[Category]:
        return [c for c in self.by_code.values() if c.parent == code]

    def leaf(self, code: str) -> Category:
        category = self.by_code.get(code)
        if category is None:
            raise ValidationError("unknown-category", field="category", category=code)
        if not category.is_leaf:
            raise ValidationError(
                "category-not-leaf",
                field="category",
                category=code,
                leaves=[c.code for c in self.children(code)],
            )
        return category
