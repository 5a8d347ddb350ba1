"""Duplicate suggestions, the pure part: which grievances are alike, how they score, what
they say about it, and which merge joins them (domain.similarity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.policies import load_policies
from domain.policies.similarity import SimilarityPolicy
from domain.similarity import Likeness, Merge, Place, bounding_box, distance_metres, match, suggest

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def policy() -> SimilarityPolicy:
    return load_policies().similarity


def place(gid: str, hours: float = 0, **kw: object) -> Place:
    fields: dict[str, object] = {
        "grievance_id": gid,
        "number": f"N-{gid}",
        "status": "classified",
        "category": "PM03",
        "district": "haidian",
        "street": "xueyuanlu",
        "community": "xyl-01",
        "grid": "xyl-01-g1",
    }
    fields.update(kw)
    return Place(received_at=T0 + timedelta(hours=hours), **fields)  # type: ignore[arg-type]


def test_the_shipped_policy_is_read_from_its_json(policy: SimilarityPolicy) -> None:
    assert policy.window == timedelta(hours=72)
    assert policy.radius_metres == 50
    assert policy.best_score == pytest.approx(1.0)


def test_same_grid_same_category_two_hours_apart_is_explained(policy: SimilarityPolicy) -> None:
    probe, earlier = place("b", hours=2), place("a")
    found = match(probe, earlier, policy)
    assert found is not None
    assert found.reasons == (
        Likeness("same-grid", {"grid": "xyl-01-g1"}),
        Likeness("same-category", {"category": "PM03"}),
        Likeness("hours-earlier", {"hours": 2}),
    )
    # grid 0.5 + category 0.3 + recency 0.2 × (1 - 2/72)
    assert found.score == pytest.approx(round(0.8 + 0.2 * (70 / 72), 3))
    assert found.merge == Merge(duplicate="b", primary="a")  # the later joins the earlier


def test_a_community_match_with_an_unclassified_candidate_scores_lower(
    policy: SimilarityPolicy,
) -> None:
    probe = place("b", hours=1)
    same_grid = match(probe, place("a"), policy)
    community = match(probe, place("c", grid="xyl-01-g2", category=None), policy)
    assert same_grid is not None and community is not None
    assert community.reasons[:2] == (
        Likeness("same-community", {"community": "xyl-01"}),
        Likeness("category-unknown"),
    )
    assert community.score < same_grid.score
    assert [
        s.candidate.grievance_id
        for s in suggest(probe, [place("c", grid="xyl-01-g2", category=None), place("a")], policy)
    ] == ["a", "c"]


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        (place("x", category="UM04"), "another category"),
        (place("x", hours=-73), "outside the window"),
        (place("x", community="xyl-02", grid="xyl-02-g1"), "another place"),
        (place("x", status="closed"), "final"),
        (place("b", hours=2), "itself"),
    ],
)
def test_not_alike(policy: SimilarityPolicy, candidate: Place, why: str) -> None:
    assert match(place("b", hours=2), candidate, policy) is None, why


def test_coordinates_within_the_radius_make_a_place_match(policy: SimilarityPolicy) -> None:
    probe = place("p", community=None, grid=None, lat=39.99, long=116.35)
    # 0.0003° of latitude ≈ 33 m; 0.001° ≈ 111 m
    near = place("n", hours=-1, community="xyl-02", grid=None, lat=39.9903, long=116.35)
    far = place("f", hours=-1, community="xyl-02", grid=None, lat=39.991, long=116.35)
    distance = distance_metres(probe, near)
    assert distance is not None and 32 < distance < 35
    found = match(probe, near, policy)
    assert found is not None and found.reasons[0] == Likeness("within-distance", {"metres": 33})
    assert found.distance_metres == pytest.approx(distance, abs=0.1)
    assert match(probe, far, policy) is None
    box = bounding_box(probe, policy.radius_metres)
    assert box is not None
    assert box[0] < near.lat < box[1]  # type: ignore[operator]
    assert not box[0] < far.lat < box[1]  # type: ignore[operator]


def test_merge_direction_follows_the_rules(policy: SimilarityPolicy) -> None:
    resolved_later = place("b", hours=2, status="resolved")  # resolved: merge not allowed
    found = match(resolved_later, place("a"), policy)
    assert found is not None and found.merge == Merge(duplicate="a", primary="b")
    both_resolved = match(resolved_later, place("a", status="resolved"), policy)
    assert both_resolved is not None and both_resolved.merge is None
    draft = Place(received_at=T0, community="xyl-01", category="PM03")
    from_draft = match(draft, place("a", hours=-1), policy)
    assert from_draft is not None and from_draft.merge is None
    assert from_draft.reasons[-1] == Likeness("hours-earlier", {"hours": 1})
    soon = match(draft, place("s", hours=-0.5), policy)
    assert soon is not None and soon.reasons[-1] == Likeness("minutes-earlier", {"minutes": 30})


def test_the_limit_and_minimum_score_come_from_the_policy(policy: SimilarityPolicy) -> None:
    probe = place("p", hours=80)
    many = [place(f"c{i:02d}", hours=80 - i) for i in range(1, 12)]
    found = suggest(probe, many, policy)
    assert len(found) == policy.limit
    assert [s.candidate.grievance_id for s in found] == ["c01", "c02", "c03", "c04", "c05"]
    strict = SimilarityPolicy.from_data(
        {
            "window_hours": 72,
            "radius_metres": 50,
            "min_score": 0.999,
            "limit": 5,
            "weights": dict(policy.weights),
        }
    )
    assert suggest(probe, many, strict) == []


def test_a_policy_with_an_unknown_weight_is_refused(policy: SimilarityPolicy) -> None:
    data = {"window_hours": 72, "radius_metres": 50, "min_score": 0.5, "limit": 5}
    with pytest.raises(ValueError, match="unknown similarity weight"):
        SimilarityPolicy.from_data({**data, "weights": {**policy.weights, "colour": 1.0}})
