"""The Open311 service catalogue: the category tree's leaves as services, plus the extra fields
(attributes) some categories ask for, read from ``open311.json`` (plain data, like the
domain's policies, so the dispatch centre can change it without touching code).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from api.i18n import Lang
from domain.policies import Policies
from domain.policies.categories import Category

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


@cache
def load_data() -> dict[str, Any]:
    text = resources.files("api.open311").joinpath("open311.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str
    name_en: str

    def label(self, lang: Lang) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name


@dataclass(frozen=True)
class Attribute:
    """One extra field of a service definition (the spec's ``attribute``)."""

    code: str
    datatype: str
    required: bool
    order: int
    description: str
    description_en: str
    datatype_description: str | None
    datatype_description_en: str | None
    values: tuple[AttributeValue, ...] = ()

    @classmethod
    def from_data(cls, data: dict[str, Any], order: int) -> Attribute:
        if data["datatype"] not in DATATYPES:
            raise ValueError(f"attribute {data['code']}: unknown datatype {data['datatype']!r}")
        values = tuple(
            AttributeValue(str(v["key"]), v["name"], v.get("name_en", ""))
            for v in data.get("values", [])
        )
        if data["datatype"].endswith("valuelist") and not values:
            raise ValueError(f"attribute {data['code']}: a value list needs values")
        return cls(
            code=data["code"],
            datatype=data["datatype"],
            required=bool(data["required"]),
            order=order,
            description=data["description"],
            description_en=data.get("description_en", ""),
            datatype_description=data.get("datatype_description"),
            datatype_description_en=data.get("datatype_description_en"),
            values=values,
        )

    def label(self, lang: Lang) -> str:
        return self.description_en if lang == "en" and self.description_en else self.description

    def value(self, key: str) -> AttributeValue | None:
        return next((v for v in self.values if v.key == key), None)

    def public(self, lang: Lang) -> dict[str, Any]:
        en = lang == "en"
        body: dict[str, Any] = {
            "variable": True,
            "code": self.code,
            "datatype": self.datatype,
            "required": self.required,
            "datatype_description": (
                self.datatype_description_en if en else self.datatype_description
            ),
            "order": self.order,
            "description": self.label(lang),
            # Empty for free-form datatypes: every attribute has the spec's full shape.
            "values": [{"key": v.key, "name": v.label(lang)} for v in self.values],
        }
        return body


@dataclass(frozen=True)
class Service:
    leaf: Category
    top: Category
    attributes: tuple[Attribute, ...]
    keywords: tuple[str, ...]

    @property
    def code(self) -> str:
        return self.leaf.code

    def name(self, lang: Lang) -> str:
        return self.leaf.name_en if lang == "en" and self.leaf.name_en else self.leaf.name

    def group(self, lang: Lang) -> str:
        return self.top.name_en if lang == "en" and self.top.name_en else self.top.name

    def attribute(self, code: str) -> Attribute | None:
        return next((a for a in self.attributes if a.code == code), None)


@dataclass(frozen=True)
class Catalog:
    """Services by code, the district served, and what discovery says."""

    services: dict[str, Service]
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def build(cls, policies: Policies, data: dict[str, Any] | None = None) -> Catalog:
        data = data if data is not None else load_data()
        sets = data.get("attribute_sets", {})
        extras = data.get("services", {})
        tree = policies.categories
        services: dict[str, Service] = {}
        for leaf in tree.leaves():
            assert leaf.parent is not None
            top = tree.by_code[leaf.parent]
            extra = extras.get(leaf.code, {})
            specs = [spec for name in extra.get("attributes", []) for spec in sets[name]]
            attributes = tuple(Attribute.from_data(spec, i) for i, spec in enumerate(specs, 1))
            words = [top.name, top.name_en, leaf.name_en, *extra.get("keywords", [])]
            keywords = tuple(dict.fromkeys(w for w in words if w))
            services[leaf.code] = Service(leaf, top, attributes, keywords)
        unknown = set(extras) - set(services)
        if unknown:
            raise ValueError(f"open311.json names categories that are not leaves: {unknown}")
        return cls(services, data)

    @property
    def jurisdiction_id(self) -> str:
        return str(self.data["jurisdiction_id"])


def parse_w3c(value: str) -> datetime | None:
    """A W3C/ISO 8601 instant with its zone (``Z`` or an offset), or None."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
