"""Where an Open311 request is: ``address_id``, ``address_string`` and/or ``lat``/``long``
resolved to the 区/街道/社区/网格 codes routing needs (``api.gazetteer.resolve``: our own
place codes, place names, the nearest centroid within a limit), refusals in the spec's
format. What nothing matches goes to the district's catch-all queue (兜底), flagged
``unresolved`` in the request's intake data for the dispatch centre to place.
"""

from __future__ import annotations

from api.catalogue import t
from api.gazetteer import OutsideAreaError, Placed, UnknownPlaceError, resolve
from api.i18n import Lang
from api.open311.catalog import Catalog
from api.open311.render import error
from domain.policies.directory import Directory


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
    try:
        return resolve(
            directory,
            catalog.data["location"]["district"],
            address_id=address_id,
            address_string=address_string,
            lat=lat,
            lon=lon,
        )
    except UnknownPlaceError:
        raise error(400, t("open311.address-id-unknown", lang, address_id=address_id)) from None
    except OutsideAreaError:
        raise error(400, t("open311.outside-area", lang, lat=lat, lon=lon)) from None
