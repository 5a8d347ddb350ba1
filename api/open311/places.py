"""Where an Open311 request is: from ``address_id``, ``address_string`` or ``lat``/``long`` to
the 区/街道/社区 codes routing needs.

The rule, first match wins:

1. ``address_id`` is one of our own place codes (a grid, community or street code from
   ``domain/policies/places.json``): that place exactly. Any other ``address_id`` is a 400.
2. ``address_string`` names a community or a street (its full name, or the name without
   the 社区/街道 suffix, e.g. "石油大院"): that community (with its street) or street.
   The longest name found wins, so "石油大院社区" beats a street named in the same text.
3. ``lat``/``long``: the street whose centre (``open311.json``) is nearest, if it lies
   within ``max_distance_km``; farther away is outside the area served (400) unless an
   ``address_string`` was given.
4. Otherwise (an ``address_string`` we cannot place): the district's default street from
   ``open311.json``, for the dispatch centre to correct when it classifies.

The address the citizen typed is kept as the location's free-text address.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.catalogue import t
from api.i18n import Lang
from api.open311.catalog import Catalog
from api.open311.render import error
from domain.model import Location
from domain.policies.directory import Directory

_SUFFIXES = ("社区", "街道", "居委会", "办事处")


@dataclass(frozen=True)
class Placed:
    location: Location
    rule: str  # address_id | address_string | lat_long | default


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


def locate(
    catalog: Catalog,
    directory: Directory,
    *,
    address_id: str | None,
    address_string: str | None,
    lat: float | None,
    lon: float | None,
    lang: Lang = "zh",
) -> Placed:
    """Apply the rule above; the returned location's address is the citizen's text."""
    address = address_string or ""

    def with_address(found: Location) -> Location:
        return Location(found.district, found.street, found.community, found.grid, address)

    if address_id:
        found = place_from_code(directory, address_id)
        if found is None:
            raise error(400, t("open311.address-id-unknown", lang, address_id=address_id))
        return Placed(with_address(found), "address_id")
    if address_string:
        found = place_from_text(directory, address_string)
        if found is not None:
            return Placed(with_address(found), "address_string")
    rules = catalog.data["location"]
    if lat is not None and lon is not None:
        near = catalog.street_near(lat, lon)
        if near is not None and near[1] <= float(rules["max_distance_km"]):
            street = near[0]
            return Placed(with_address(Location(directory.streets[street][0], street)), "lat_long")
        if not address_string:
            raise error(400, t("open311.outside-area", lang, lat=lat, lon=lon))
    street = rules["default_street"]
    return Placed(with_address(Location(rules["district"], street)), "default")
