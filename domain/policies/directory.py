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
        if location.street is not None:
            street = self.streets.get(location.street)
            if street is None or street[0] != location.district:
                raise ValidationError(
                    "street-not-in-district",
                    field="location.street",
                    street=location.street,
                    district=location.district,
                )
        if location.community is not None:
            community = self.communities.get(location.community)
            if community is None or community[0] != location.street:
                raise ValidationError(
                    "community-not-in-street",
                    field="location.community",
                    community=location.community,
                    street=location.street,
                )
        if location.grid is not None and self.grids.get(location.grid) != location.community:
            raise ValidationError(
                "grid-not-in-community",
                field="location.grid",
                grid=location.grid,
                community=location.community,
            )
