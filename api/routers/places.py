"""``GET /v1/places``: the place codes a ``location`` (and an Open311 ``address_id``) takes,
district → street → community → grid, each with its name in the caller's language and its
centroid (``api.gazetteer``). Chinese names come from ``domain/policies/places.json``,
English ones from ``api/gazetteer.json``; a grid's name is the catalogue's ``place.grid``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.catalogue import t
from api.deps import AppDep, Read, guarded
from api.gazetteer import Gazetteer, Level
from api.i18n import Lang, choose_language
from api.routers.common import problems
from domain.policies.directory import Directory

router = APIRouter(prefix="/v1", tags=["reference"])


class Centroid(BaseModel):
    lat: float
    long: float


class PlaceNode(BaseModel):
    code: str
    name: str
    centroid: Centroid | None = None
    children: list[PlaceNode] = Field(
        default_factory=list, description="the places one level down (a grid has none)"
    )


class PlacesPublic(BaseModel):
    """The districts served, each with its streets, communities and grids."""

    items: list[PlaceNode]


class _Names:
    def __init__(self, gazetteer: Gazetteer, lang: Lang) -> None:
        self.gazetteer, self.lang = gazetteer, lang

    def node(self, level: str, code: str, name: str, children: list[PlaceNode]) -> PlaceNode:
        english = self.gazetteer.name_en(level, code) if self.lang == "en" else ""
        centre = self.gazetteer.centroid(level, code)
        return PlaceNode(
            code=code,
            name=english or name,
            centroid=Centroid(lat=centre[0], long=centre[1]) if centre else None,
            children=children,
        )

    def grid(self, code: str) -> PlaceNode:
        number = code.rsplit("-g", 1)[-1]
        return self.node("grid", code, t("place.grid", self.lang, number=number), [])


def place_tree(directory: Directory, gazetteer: Gazetteer, lang: Lang) -> list[PlaceNode]:
    names = _Names(gazetteer, lang)

    def below(level: Level, parent: str) -> list[PlaceNode]:
        if level == "grid":
            return [names.grid(g) for g, c in directory.grids.items() if c == parent]
        if level == "community":
            found = directory.communities.items()
            return [
                names.node("community", code, name, below("grid", code))
                for code, (street, name) in found
                if street == parent
            ]
        return [
            names.node("street", code, name, below("community", code))
            for code, (district, name) in directory.streets.items()
            if district == parent
        ]

    return [
        names.node("district", code, name, below("street", code))
        for code, name in directory.districts.items()
    ]


@router.get(
    "/places",
    response_model=PlacesPublic,
    responses=problems(401, 403),
    **guarded(Read.REFERENCE),
)
def list_places(app: AppDep, request: Request) -> PlacesPublic:
    """Place codes and names: district → street → community → grid, with centroids."""
    lang = choose_language(request)
    return PlacesPublic(items=place_tree(app.policies.directory, Gazetteer.load(), lang))
