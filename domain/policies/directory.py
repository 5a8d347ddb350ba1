"""Reference data: departments (承办单位) and places (区/街道/社区/网格)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import ValidationError
from domain.model import Location


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    name_en: str
    level: str  # district | street | community | enterprise
    street: str | None = None
    community: str | None = None


# Each level of a place, the level it must lie in, and the error when it does not.
_NESTING = (
    ("street", "district", "street-not-in-district"),
    ("community", "street", "community-not-in-street"),
    ("grid", "community", "grid-not-in-community"),
)


@dataclass(frozen=True, slots=True)
class Directory:
    departments: dict[str, Department]
    districts: dict[str, str]  # code -> name
    streets: dict[str, tuple[str, str]]  # code -> (district, name)
    communities: dict[str, tuple[str, str]]  # code -> (street, name)
    grids: dict[str, str]  # code -> community

    @classmethod
    def from_data(cls, departments: dict[str, Any], places: dict[str, Any]) -> Directory:
        deps = {
            d["code"]: Department(
                code=d["code"],
                name=d["name"],
                name_en=d.get("name_en", ""),
                level=d["level"],
                street=d.get("street"),
                community=d.get("community"),
            )
            for d in departments["departments"]
        }
        districts: dict[str, str] = {}
        streets: dict[str, tuple[str, str]] = {}
        communities: dict[str, tuple[str, str]] = {}
        grids: dict[str, str] = {}
        for district in places["districts"]:
            districts[district["code"]] = district["name"]
            for street in district["streets"]:
                streets[street["code"]] = (district["code"], street["name"])
                for community in street["communities"]:
                    communities[community["code"]] = (street["code"], community["name"])
                    for grid in community.get("grids", []):
                        grids[grid] = community["code"]
        return cls(deps, districts, streets, communities, grids)

    def department(self, code: str) -> Department:
        department = self.departments.get(code)
        if department is None:
            raise ValidationError("unknown-department", field="department", department=code)
        return department

    def street_office(self, street: str) -> Department:
        for department in self.departments.values():
            if department.level == "street" and department.street == street:
                return department
        raise ValidationError("street-has-no-office", field="location.street", street=street)

    def community_committee(self, community: str) -> Department:
        for department in self.departments.values():
            if department.level == "community" and department.community == community:
                return department
        raise ValidationError(
            "community-has-no-committee", field="location.community", community=community
        )

    def check_location(self, location: Location) -> None:
        """Codes must exist and nest: grid in community in street in district."""
        if location.district not in self.districts:
            raise ValidationError(
                "district-not-served", field="location.district", district=location.district
            )
        for level, parent_level, code in _NESTING:
            place, parent = getattr(location, level), getattr(location, parent_level)
            if place is not None and (parent is None or self._parent(level, place) != parent):
                raise ValidationError(
                    code, field=f"location.{level}", **{level: place, parent_level: parent}
                )

    def _parent(self, level: str, code: str) -> str | None:
        """The code of the place one level up; None when the place is unknown."""
        if level == "grid":
            return self.grids.get(code)
        found = (self.streets if level == "street" else self.communities).get(code)
        return found[0] if found else None
