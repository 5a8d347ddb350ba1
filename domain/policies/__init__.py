"""Pure, data-driven policies shipped as package data (JSON), replaceable without code changes.

``load_policies()`` reads the packaged files; ``CLOSELOOP_POLICY_DIR`` style overrides are
wired by the composition root, which passes another directory here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from domain.policies.assessment import RankingPolicy, RoundPolicy
from domain.policies.calendar import BusinessCalendar
from domain.policies.categories import Category, CategoryTree
from domain.policies.directory import Department, Directory
from domain.policies.routing import Route, RoutingPolicy
from domain.policies.similarity import SimilarityPolicy
from domain.policies.sla import SlaPolicy, SlaProfile, Window
from domain.policies.summons import SummonsPolicy

__all__ = [
    "BusinessCalendar",
    "Category",
    "CategoryTree",
    "Department",
    "Directory",
    "Policies",
    "RankingPolicy",
    "RoundPolicy",
    "Route",
    "RoutingPolicy",
    "SimilarityPolicy",
    "SlaPolicy",
    "SlaProfile",
    "SummonsPolicy",
    "Window",
    "load_policies",
]


@dataclass(frozen=True, slots=True)
class Policies:
    categories: CategoryTree
    directory: Directory
    routing: RoutingPolicy
    sla: SlaPolicy
    similarity: SimilarityPolicy
    summons: SummonsPolicy
    rankings: RankingPolicy
    rounds: RoundPolicy

    @property
    def calendar(self) -> BusinessCalendar:
        return self.sla.calendar


def _read(name: str, directory: Path | None) -> dict[str, Any]:
    if directory is not None and (directory / name).exists():
        text = (directory / name).read_text(encoding="utf-8")
    else:
        text = resources.files("domain.policies").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def sla_profiles(directory: Path | None = None) -> list[str]:
    return sorted(_read("sla.json", directory)["profiles"])


def load_policies(sla_profile: str | None = None, directory: Path | None = None) -> Policies:
    """Load every policy; files in ``directory`` replace the packaged ones of the same name."""
    sla = _read("sla.json", directory)
    profile_name = sla_profile or sla["default_profile"]
    if profile_name not in sla["profiles"]:
        raise ValueError(
            f"SLA profile {profile_name!r} does not exist; choose one of "
            f"{', '.join(sorted(sla['profiles']))}"
        )
    calendar = BusinessCalendar.from_data(_read("calendar.json", directory))
    assessment = _read("assessment.json", directory)
    return Policies(
        categories=CategoryTree.from_data(_read("categories.json", directory)),
        directory=Directory.from_data(
            _read("departments.json", directory), _read("places.json", directory)
        ),
        routing=RoutingPolicy.from_data(_read("routing.json", directory)),
        sla=SlaPolicy(SlaProfile.from_data(profile_name, sla["profiles"][profile_name]), calendar),
        similarity=SimilarityPolicy.from_data(_read("similarity.json", directory)),
        summons=SummonsPolicy.from_data(_read("summons.json", directory)),
        rankings=RankingPolicy.from_data(assessment["rankings"]),
        rounds=RoundPolicy.from_data(assessment["rounds"]),
    )
