"""吹哨 policy: which level of department may summon which departments, and the rating
a summoning unit gives each department it summoned.

Data only (``summons.json``); the rule that reads it is ``domain.rules.summon_refusal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.policies.sla import Window


@dataclass(frozen=True, slots=True)
class SummonGrant:
    """A department of some level may summon departments of ``level`` (``own-street``:
    only those of the summoner's own street)."""

    level: str
    scope: str = "any"


@dataclass(frozen=True, slots=True)
class SummonsPolicy:
    grants: dict[str, tuple[SummonGrant, ...]]  # summoner's level -> what it may summon
    holding_states: frozenset[str]  # the assignment states in which a department holds one
    reason_required: frozenset[str]  # ratings that need a reason
    correction_window: Window  # a rating may be corrected this long after it was first given

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SummonsPolicy:
        grants = {
            level: tuple(SummonGrant(g["level"], g.get("scope", "any")) for g in listed)
            for level, listed in data.get("who_may_summon", {}).items()
        }
        for listed in grants.values():
            for grant in listed:
                if grant.scope not in ("any", "own-street"):
                    raise ValueError(f"unknown summon scope {grant.scope!r}")
        rating = data.get("rating", {})
        return cls(
            grants=grants,
            holding_states=frozenset(data.get("holding_states", ["dispatched", "signed_for"])),
            reason_required=frozenset(rating.get("reason_required", ["unsatisfied"])),
            correction_window=Window.from_data(rating.get("correction_window", {"hours": 72})),
        )
