"""``GET /v1/places`` and the place rule (``api.gazetteer.resolve``): codes, names in the
caller's language, centroids; an address string and/or coordinates to street, community
and grid; what nothing matches to the district's catch-all queue."""

from __future__ import annotations

from typing import Any

import pytest

from api.gazetteer import Gazetteer, OutsideAreaError, UnknownPlaceError, resolve
from domain.policies import load_policies
from domain.policies.directory import Directory
from tests.support.api import ApiHarness, sqlite_api


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_policies().directory


def _walk(nodes: list[dict[str, Any]], depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for node in nodes:
        found.append((depth, node))
        found += _walk(node["children"], depth + 1)
    return found


async def test_places_lists_every_code_with_names_and_centroids(
    api: ApiHarness, directory: Directory
) -> None:
    response = await api.client.get("/v1/places", headers=api.auth("department", "ent.power"))
    assert response.status_code == 200, response.text
    tree = response.json()["items"]
    levels: dict[int, dict[str, dict[str, Any]]] = {0: {}, 1: {}, 2: {}, 3: {}}
    for depth, node in _walk(tree):
        levels[depth][node["code"]] = node
    assert set(levels[0]) == set(directory.districts)
    assert set(levels[1]) == set(directory.streets)
    assert set(levels[2]) == set(directory.communities)
    assert set(levels[3]) == set(directory.grids)
    assert levels[1]["xueyuanlu"]["name"] == "学院路街道"
    assert levels[2]["xyl-01"]["name"] == "石油大院社区"
    assert levels[3]["xyl-01-g2"]["name"] == "第2网格"
    assert levels[3]["xyl-01-g2"]["centroid"] == {"lat": 39.9945, "long": 116.3495}
    # Each place sits under its parent, as the directory nests them.
    street = next(s for s in tree[0]["children"] if s["code"] == "qinghe")
    assert {c["code"] for c in street["children"]} == {"qh-01", "qh-02", "qh-03"}

    english = await api.client.get("/v1/places", params={"lang": "en"}, headers=api.auth("open311"))
    english_tree = english.json()["items"]
    assert english_tree[0]["name"] == "Haidian District"
    names = {node["code"]: node["name"] for _, node in _walk(english_tree)}
    assert names["xueyuanlu"] == "Xueyuan Road Subdistrict"
    assert names["xyl-01"] == "Shiyou Dayuan Community" and names["xyl-01-g2"] == "Grid 2"
    assert (await api.client.get("/v1/places")).status_code == 401


def test_the_gazetteer_covers_every_place(directory: Directory) -> None:
    gazetteer = Gazetteer.load()
    for level, codes in (
        ("street", directory.streets),
        ("community", directory.communities),
        ("grid", directory.grids),
    ):
        assert all(gazetteer.centroid(level, code) for code in codes), level
    assert all(gazetteer.name_en("district", code) for code in directory.districts)
    assert all(gazetteer.name_en("street", code) for code in directory.streets)
    assert all(gazetteer.name_en("community", code) for code in directory.communities)


@pytest.mark.parametrize(
    ("given", "expected", "rule"),
    [
        ({"address_id": "zgc-02-g3"}, ("zhongguancun", "zgc-02", "zgc-02-g3"), "address_id"),
        ({"address_id": "qinghe"}, ("qinghe", None, None), "address_id"),
        ({"address_string": "石油大院 3 号楼"}, ("xueyuanlu", "xyl-01", None), "address_string"),
        ({"address_string": "清河街道毛纺路"}, ("qinghe", None, None), "address_string"),
        # the point refines a named place to its nearest grid inside it
        (
            {"address_string": "石油大院", "lat": 39.9945, "lon": 116.3496},
            ("xueyuanlu", "xyl-01", "xyl-01-g2"),
            "address_string",
        ),
        # ... but never to another community's grid
        (
            {"address_string": "林大社区", "lat": 39.9945, "lon": 116.3496},
            ("xueyuanlu", "xyl-02", None),
            "address_string",
        ),
        ({"lat": 39.9945, "lon": 116.3496}, ("xueyuanlu", "xyl-01", "xyl-01-g2"), "point"),
        ({"lat": 40.036, "lon": 116.322}, ("qinghe", "qh-01", None), "point"),
        ({"lat": 40.06, "lon": 116.33}, ("qinghe", None, None), "point"),
        ({"address_string": "某某路 8 号"}, (None, None, None), "unresolved"),
        (
            {"address_string": "某某路 8 号", "lat": 31.23, "lon": 121.47},
            (None, None, None),
            "unresolved",
        ),
    ],
)
def test_resolve(
    directory: Directory,
    given: dict[str, Any],
    expected: tuple[str | None, str | None, str | None],
    rule: str,
) -> None:
    placed = resolve(directory, "haidian", **given)
    where = placed.location
    assert (where.street, where.community, where.grid) == expected
    assert where.district == "haidian" and placed.rule == rule
    assert where.address == given.get("address_string", "")
    directory.check_location(where)  # always a valid, nested location


def test_unknown_codes_and_far_points_are_refused(directory: Directory) -> None:
    with pytest.raises(UnknownPlaceError):
        resolve(directory, "haidian", address_id="nowhere")
    with pytest.raises(OutsideAreaError):
        resolve(directory, "haidian", lat=37.76, lon=-122.42)


__all__ = ["sqlite_api"]  # the ``api`` fixture
