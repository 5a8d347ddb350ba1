"""Category tree, directory and routing rules with the community negative list."""

from __future__ import annotations

import pytest

from domain.errors import NegativeListError, ValidationError
from domain.policies import Policies, load_policies
from tests.conftest import make_location


@pytest.fixture(scope="module")
def policies() -> Policies:
    return load_policies()


def test_category_tree_is_broad_enough(policies: Policies) -> None:
    assert len(policies.categories.top) >= 8
    leaves = policies.categories.leaves()
    assert len(leaves) >= 40
    for leaf in leaves:
        assert leaf.sla_class in policies.sla.profile.classes
        if leaf.lead not in ("street", "community"):
            policies.directory.department(leaf.lead or "")
        for target in leaf.assisting:
            if target not in ("street", "community"):
                policies.directory.department(target)


def test_top_category_is_not_a_leaf(policies: Policies) -> None:
    with pytest.raises(ValidationError, match="category-not-leaf"):
        policies.categories.leaf("PM")
    with pytest.raises(ValidationError, match="unknown-category"):
        policies.categories.leaf("ZZ99")


def test_default_route_resolves_street_and_community(policies: Policies) -> None:
    route = policies.routing.route(
        policies.categories.leaf("SF02"), make_location(), policies.directory
    )
    assert route.lead == "st.xueyuanlu"
    assert route.assisting == ("hd.fire", "cm.xyl-01")
    assert route.rule == "category:SF02"


def test_a_street_specific_rule_overrides_the_category_default(policies: Policies) -> None:
    qinghe = make_location(street="qinghe", community="qh-01", grid=None)
    route = policies.routing.route(policies.categories.leaf("TR01"), qinghe, policies.directory)
    assert route.rule == "rule:0"
    assert route.lead == "st.qinghe"
    assert route.assisting == ("hd.transport", "hd.traffic-police")
    elsewhere = policies.routing.route(
        policies.categories.leaf("TR01"), make_location(), policies.directory
    )
    assert elsewhere.rule == "category:TR01"


def test_negative_list_refuses_a_community_committee(policies: Policies) -> None:
    wage_arrears = policies.categories.leaf("LB01")
    with pytest.raises(NegativeListError, match="negative-list"):
        policies.routing.check(wage_arrears, ["hd.hrss", "cm.xyl-01"], policies.directory)
    policies.routing.check(wage_arrears, ["hd.hrss", "st.xueyuanlu"], policies.directory)
    # A category not on the list may go to a community.
    policies.routing.check(policies.categories.leaf("CS01"), ["cm.xyl-01"], policies.directory)


def test_location_codes_must_nest(policies: Policies) -> None:
    policies.directory.check_location(make_location())
    with pytest.raises(ValidationError, match="community-not-in-street"):
        policies.directory.check_location(make_location(community="qh-01", grid=None))
    with pytest.raises(ValidationError, match="district-not-served"):
        policies.directory.check_location(make_location(district="chaoyang"))
    with pytest.raises(ValidationError) as info:
        policies.directory.check_location(make_location(grid="zgc-01-g1"))
    assert info.value.field == "location.grid"


def test_community_route_needs_a_community(policies: Policies) -> None:
    no_community = make_location(community=None, grid=None)
    with pytest.raises(ValidationError, match="community"):
        policies.routing.route(policies.categories.leaf("CS01"), no_community, policies.directory)


@pytest.mark.parametrize("field", ["weight", "round_weight"])
def test_the_street_ratings_weights_lie_in_0_to_1(field: str) -> None:
    import json
    from pathlib import Path

    from domain.policies.assessment import RankingPolicy

    path = Path(__file__).parents[2] / "domain" / "policies" / "assessment.json"
    data = json.loads(path.read_text())["rankings"]
    assert RankingPolicy.from_data(data).street_rating.round_weight == 0.5
    data["street_rating"][field] = 1.5
    with pytest.raises(ValueError, match=r"must lie in 0\.\.1"):
        RankingPolicy.from_data(data)
