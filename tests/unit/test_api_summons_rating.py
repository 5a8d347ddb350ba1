"""吹哨 from a street through the API, the 403 with its reason in both languages, and the
rating after the summons, visible in the audit replay."""

from __future__ import annotations

from tests.support.api import ApiHarness, sqlite_api


async def test_a_community_beyond_its_policy_gets_403_with_the_reason(api: ApiHarness) -> None:
    gid = (await api.dispatched("PM03"))["id"]  # the community committee leads
    path = f"/v1/grievances/{gid}/summon"
    body = {"departments": ["hd.urban"], "reason": "x"}
    for lang, words in (("zh", "区城市管理委员会"), ("en", "District Urban Management")):
        r = await api.client.post(
            f"{path}?lang={lang}", json=body, headers=api.auth("department", "cm.xyl-01")
        )
        assert r.status_code == 403, r.text
        problem = r.json()
        assert problem["code"] == "summon-refused"
        assert words in problem["detail"], problem
    r = await api.post(
        path, "department", {"departments": ["st.xueyuanlu"], "reason": "x"}, "cm.xyl-01"
    )
    assert r.status_code == 200, r.text


async def test_a_street_summons_then_rates_and_the_audit_shows_who_rated_whom(
    api: ApiHarness,
) -> None:
    gid = (await api.dispatched("SF02"))["id"]  # the street office leads
    r = await api.post(
        f"/v1/grievances/{gid}/summon",
        "department",
        {"departments": ["hd.urban"], "reason": "联合处置"},
        "st.xueyuanlu",
    )
    assert r.status_code == 200, r.text
    (urban,) = r.json()["assignments"]
    rate = f"/v1/grievances/{gid}/summons-rating"
    r = await api.post(
        rate, "department", {"assignment_id": urban, "rating": "satisfied"}, "st.xueyuanlu"
    )
    assert r.status_code == 409 and r.json()["code"] == "illegal-assignment-transition", r.text
    r = await api.post(f"/v1/assignments/{urban}/report-in", "department", {}, "hd.urban")
    assert r.status_code == 200, r.text
    r = await api.post(
        rate, "department", {"assignment_id": urban, "rating": "unsatisfied"}, "st.xueyuanlu"
    )
    assert r.status_code == 422 and r.json()["field"] == "reason", r.text
    r = await api.post(
        rate,
        "department",
        {"assignment_id": urban, "rating": "unsatisfied", "reason": "到场后未处置"},
        "st.xueyuanlu",
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        rate, "department", {"assignment_id": urban, "rating": "satisfied"}, "hd.urban"
    )
    assert r.status_code == 403 and r.json()["code"] == "summon-refused", r.text
    events = (await api.get(f"/v1/audit/grievances/{gid}/events", "supervisor")).json()
    rated = [e for e in events["events"] if e["type"] == "SummonsRated"]
    assert len(rated) == 1
    data = rated[0]
    assert data["role"] == "department" and data["reason"] == "到场后未处置"
    assert {data["data"]["rater"], data["data"]["department"], data["data"]["rating"]} == {
        "st.xueyuanlu",
        "hd.urban",
        "unsatisfied",
    }


__all__ = ["sqlite_api"]  # the ``api`` fixture
