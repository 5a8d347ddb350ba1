"""Where the places are: English names and centroids of the district → street → community →
grid hierarchy (``gazetteer.json``, data beside ``domain/policies/places.json``, which has
the codes, the nesting and the Chinese names), and the rule that turns an address string
and/or coordinates into those codes.

``resolve`` (first match wins; the citizen's typed address is always kept as the
location's free-text address):

1. ``address_id``: one of our own place codes (grid, community or street), exactly;
   any other ``address_id`` is refused (``UnknownPlaceError``).
2. ``address_string`` naming a community or a street (full name, or without its
   社区/街道 suffix; the longest name found wins): that place, then refined by the
   coordinates, if given, to the nearest grid (or community) inside it within the limit.
3. coordinates alone: the nearest grid centroid within ``limits_km.grid``, else the nearest
   community within ``limits_km.community``, else the nearest street within
   ``limits_km.street``; farther is outside the area served (``OutsideAreaError``) unless
   an address string was given.
4. otherwise (an address string nothing matches): the district alone, the district's
   catch-all queue (兜底), flagged ``unresolved`` for the dispatch centre to place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from domain.model import Location
from domain.policies.directory import Directory

_SUFFIXES = ("社区", "街道", "居委会", "办事处")
Level = Literal["grid", "community", "street"]
Rule = Literal["address_id", "address_string", "point", "unresolved"]
PLURAL = {"district": "districts", "street": "streets", "community": "communities", "grid": "grids"}


class UnknownPlaceError(LookupError):
    """An ``address_id`` that is none of our place codes."""


class OutsideAreaError(LookupError):
    """Coordinates farther than the limits from every place served, with no address."""


@dataclass(frozen=True)
class Placed:
    location: Location
    rule: Rule  # how the place was found; "unresolved": the district's catch-all queue


@dataclass(frozen=True)
class Gazetteer:
    data: dict[str, Any]

    @classmethod
    @cache
    def load(cls) -> Gazetteer:
        text = resources.files("api").joinpath("gazetteer.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    def _places(self, level: str) -> dict[str, Any]:
        places: dict[str, Any] = self.data[PLURAL[level]]
        return places

    def name_en(self, level: str, code: str) -> str:
        return str(self._places(level).get(code, {}).get("name_en", ""))

    def centroid(self, level: str, code: str) -> tuple[float, float] | None:
        centre = self._places(level).get(code, {}).get("centroid")
        return (float(centre[0]), float(centre[1])) if centre else None

    def limit_km(self, level: Level) -> float:
        return float(self.data["limits_km"][level])

    def nearest(
        self, level: Level, lat: float, lon: float, codes: Iterable[str]
    ) -> tuple[str, float] | None:
        """The place among ``codes`` whose centroid is nearest, within this level's limit."""
        best: tuple[str, float] | None = None
        for code in codes:
            centre = self.centroid(level, code)
            if centre is None:
                continue
            km = haversine_km(lat, lon, *centre)
            if best is None or km < best[1]:
                best = (code, km)
        return best if best is not None and best[1] <= self.limit_km(level) else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _names(name: str) -> list[str]:
    names = [name]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            names.append(name[: -len(suffix)])
    return names


def place_from_code(directory: Directory, code: str) -> Location | None:
    if code in directory.grids:
        community = directory.grids[code]
        street = directory.communities[community][0]
        return Location(directory.streets[street][0], street, community, code)
    if code in directory.communities:
        street = directory.communities[code][0]
        return Location(directory.streets[street][0], street, code)
    if code in directory.streets:
        return Location(directory.streets[code][0], code)
    return None


def place_from_text(directory: Directory, text: str) -> Location | None:
    best: tuple[int, Location] | None = None
    for code, (street, name) in directory.communities.items():
        for candidate in _names(name):
            if candidate in text and (best is None or len(candidate) > best[0]):
                best = (len(candidate), Location(directory.streets[street][0], street, code))
    for code, (district, name) in directory.streets.items():
        for candidate in _names(name):
            if candidate in text and (best is None or len(candidate) > best[0]):
                best = (len(candidate), Location(district, code))
    return best[1] if best else None


def _inside(
    directory: Directory, found: Location, gazetteer: Gazetteer, lat: float, lon: float
) -> Location:
    """The nearest grid (or, for a street, community) inside ``found``, else ``found``."""
    communities = (
        [found.community]
        if found.community is not None
        else [c for c, (street, _) in directory.communities.items() if street == found.street]
    )
    grids = [g for g, c in directory.grids.items() if c in communities]
    near = gazetteer.nearest("grid", lat, lon, grids)
    if near is None and found.community is None:
        near = gazetteer.nearest("community", lat, lon, communities)
    return (place_from_code(directory, near[0]) if near else None) or found


def _near(directory: Directory, gazetteer: Gazetteer, lat: float, lon: float) -> Location | None:
    levels: tuple[tuple[Level, Iterable[str]], ...] = (
        ("grid", directory.grids),
        ("community", directory.communities),
        ("street", directory.streets),
    )
    for level, codes in levels:
        near = gazetteer.nearest(level, lat, lon, codes)
        if near is not None:
            return place_from_code(directory, near[0])
    return None


def resolve(
    directory: Directory,
    district: str,
    *,
    address_id: str | None = None,
    address_string: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    gazetteer: Gazetteer | None = None,
) -> Placed:
    """Apply the rule above; the returned location's address is the citizen's text."""
    gazetteer = gazetteer or Gazetteer.load()
    address = address_string or ""

    def placed(found: Location, rule: Rule) -> Placed:
        where = Location(found.district, found.street, found.community, found.grid, address)
        return Placed(where, rule)

    if address_id:
        found = place_from_code(directory, address_id)
        if found is None:
            raise UnknownPlaceError(address_id)
        return placed(found, "address_id")
    point = (lat, lon) if lat is not None and lon is not None else None
    if address_string:
        found = place_from_text(directory, address_string)
        if found is not None:
            if point is not None and found.grid is None:
                found = _inside(directory, found, gazetteer, *point)
            return placed(found, "address_string")
    if point is not None:
        found = _near(directory, gazetteer, *point)
        if found is not None:
            return placed(found, "point")
        if not address_string:
            raise OutsideAreaError(point)
    return placed(Location(district), "unresolved")
