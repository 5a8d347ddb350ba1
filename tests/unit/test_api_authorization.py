"""The authorization matrix: every route × every kind of caller → allowed, 401 or 403.

A command route admits the roles the domain's table (``domain.rules.ACTION_ROLES``) gives
its action, minus SYSTEM; the read routes' roles are written out here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from api.catalogue import role_label
from api.deps import roles_of
from domain.model import Action
from tests.support.api import ApiHarness, grievance_body, sqlite_api

OP, SUP, DEPT, O311 = "operator", "supervisor", "department", "open311"
ROLES = (OP, SUP, DEPT, O311)
G = "/v1/grievances/{gid}"
A = "/v1/assignments/{aid}"
ARTICLE = "00000000-0000-4000-8000-00000000000a"  # no such article: 404 for who may
ROUND = "00000000-0000-0000-0000-000000000000"  # no such rating round
K = f"/v1/knowledge/articles/{ARTICLE}"


def may(action: Action) -> set[str]:
    """The roles the domain lets send this command (SYSTEM is never an HTTP caller)."""
    return {role.value for role in roles_of(action)}


# (method, path, body, roles allowed). Other roles get 403; no or a bad token gets 401.
MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("POST", "/v1/grievances", grievance_body(), may(Action.RECEIVE)),
    ("GET", "/v1/grievances", None, {OP, SUP}),
    # Open311 clients read only what they filed (tested separately): here that is 403.
    ("GET", G, None, {OP, SUP, DEPT}),
    ("POST", G + "/classify", {"category": "PM03"}, may(Action.CLASSIFY)),
    ("POST", G + "/dispatch", {}, may(Action.DISPATCH)),
    ("POST", G + "/reject", {"reason": "x"}, may(Action.REJECT)),
    ("POST", G + "/merge", {"into": str(uuid.uuid4())}, may(Action.MERGE)),
    ("POST", G + "/withdraw", {"reason": "x"}, may(Action.WITHDRAW)),
    (
        "POST",
        G + "/arbitrate",
        {"assignment_id": "x.1", "decision": "confirm"},
        may(Action.ARBITRATE),
    ),
    ("POST", G + "/feedback", {"contacted": False}, may(Action.RECORD_FEEDBACK)),
    ("GET", "/v1/callbacks", None, {OP, SUP}),
    ("GET", G + "/similar", None, {OP, SUP}),
    ("GET", "/v1/grievances/similar?grid=xyl-01-g1", None, {OP, SUP}),
    ("POST", "/v1/what-if", {"date_from": "2026-11-23", "date_to": "2026-11-23"}, {SUP}),
    ("GET", "/v1/categories", None, {OP, SUP, DEPT, O311}),
    ("GET", "/v1/departments", None, {OP, SUP, DEPT, O311}),
    ("GET", "/v1/places", None, {OP, SUP, DEPT, O311}),
    ("GET", "/v1/assignments?department=cm.xyl-01", None, {OP, SUP, DEPT}),
    ("POST", A + "/sign-for", {}, may(Action.SIGN_FOR)),
    ("POST", A + "/return", {"reason": "x"}, may(Action.RETURN)),
    ("POST", A + "/progress", {"note": "x"}, may(Action.REPORT_PROGRESS)),
    (
        "POST",
        A + "/extension-request",
        {"new_deadline": "2026-12-30T10:00:00+08:00", "reason": "x"},
        may(Action.REQUEST_EXTENSION),
    ),
    ("POST", A + "/complete-part", {"account": "x"}, may(Action.COMPLETE_PART)),
    ("POST", A + "/resolve", {"account": "x"}, may(Action.RESOLVE)),
    ("POST", A + "/report-in", {}, may(Action.REPORT_IN)),
    (
        "POST",
        G + "/extension-decision",
        {"assignment_id": "x.1", "granted": True},
        may(Action.DECIDE_EXTENSION),
    ),
    # The department is the community holding the lead: the policy lets it call its street.
    ("POST", G + "/summon", {"departments": ["st.xueyuanlu"], "reason": "x"}, may(Action.SUMMON)),
    (
        "POST",
        G + "/summons-rating",
        {"assignment_id": "x.1", "rating": "satisfied"},
        may(Action.RATE_SUMMONED),
    ),
    ("POST", G + "/escalate", {"level": 1, "reason": "x"}, may(Action.ESCALATE)),
    ("GET", "/v1/audit/grievances/{gid}/events", None, {OP, SUP}),
    ("GET", "/v1/audit/grievances/{gid}/state", None, {OP, SUP}),
    ("GET", "/v1/audit/grievances/{gid}/lateness", None, {OP, SUP}),
    ("GET", "/v1/audit/grievances/{gid}/casefile", None, {OP, SUP}),
    ("GET", "/v1/audit/departments/cm.xyl-01/lateness", None, {OP, SUP}),
    ("GET", "/v1/audit/verify", None, {OP, SUP}),
    ("GET", "/v1/kpis", None, {SUP}),
    ("GET", "/v1/rankings?period=2026-11", None, {SUP, DEPT}),
    (
        "POST",
        "/v1/rating-rounds",
        {
            "quarter": "2026-Q4",
            "deadline": "2030-01-15T18:00:00+08:00",
            "pairs": {"st.xueyuanlu": ["hd.urban"]},
        },
        may(Action.OPEN_ROUND),
    ),
    (
        "POST",
        f"/v1/rating-rounds/{ROUND}/scores",
        {"department": "hd.urban", "scores": {"responsiveness": 90}},
        may(Action.SCORE_ROUND),
    ),
    ("POST", f"/v1/rating-rounds/{ROUND}/close", {}, may(Action.CLOSE_ROUND)),
    ("POST", f"/v1/rating-rounds/{ROUND}/publish", {}, may(Action.PUBLISH_ROUND)),
    ("GET", f"/v1/rating-rounds/{ROUND}", None, {SUP, DEPT}),
    ("POST", G + "/answer", {"answer": "x"}, may(Action.ANSWER_AT_INTAKE)),
    ("POST", "/v1/knowledge/articles", {"title": "t", "body": "b"}, may(Action.WRITE_ARTICLE)),
    ("POST", K + "/revise", {"title": "t", "body": "b"}, may(Action.WRITE_ARTICLE)),
    ("POST", K + "/approve", None, may(Action.APPROVE_ARTICLE)),
    ("POST", K + "/retire", None, may(Action.RETIRE_ARTICLE)),
    ("GET", K, None, {OP, SUP}),
    ("GET", "/v1/knowledge/articles?waiting=true", None, {OP, SUP}),
    ("GET", "/v1/knowledge/search?q=电梯", None, {OP, SUP}),
    # Uploads without a file are 422 for who may; Open311 reads only what it filed.
    ("POST", G + "/attachments", None, may(Action.ATTACH)),
    ("POST", A + "/attachments", None, may(Action.ATTACH_TO_ASSIGNMENT)),
    ("GET", G + "/attachments", None, {OP, SUP, DEPT}),
    ("GET", G + "/attachments/" + "0" * 64, None, {OP, SUP, DEPT}),
]
PUBLIC = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/openapi.json"), ("GET", "/docs")]


def test_matrix_covers_every_route() -> None:
    from api.app import create_app

    spec = create_app(lambda: None).openapi()  # type: ignore[arg-type,return-value]
    documented = {
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        for method in methods
        if path.startswith("/v1/")
    }
    listed = {
        (
            m,
            p.split("?")[0]
            .replace("{gid}", "{grievance_id}")
            .replace("{aid}", "{assignment_id}")
            .replace("/departments/cm.xyl-01/", "/departments/{code}/")
            .replace("0" * 64, "{sha256}")
            .replace(ARTICLE, "{article_id}")
            .replace(ROUND, "{round_id}"),
        )
        for m, p, _, _ in MATRIX
    }
    assert listed == documented


@pytest.mark.parametrize(("method", "template", "body", "allowed"), MATRIX)
async def test_each_role_on_each_route(
    api: ApiHarness,
    method: str,
    template: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    d = await api.dispatched("PM03")
    path = template.format(gid=d["id"], aid=d["assignments"][0])
    outcomes: dict[str, int] = {}
    for caller in ("none", "bad", "revoked", *ROLES):
        headers: dict[str, str] = {}
        if caller == "bad":
            headers["Authorization"] = "Bearer cl_0000_not-a-real-token"
        elif caller == "revoked":
            record, token = api.services.tokens.create(OP)
            api.services.tokens.revoke(record.id)
            headers["Authorization"] = f"Bearer {token}"
        elif caller in ROLES:
            # the department token belongs to the assignment's own department
            headers = api.auth(caller, "cm.xyl-01" if caller == DEPT else None)
        response = await api.client.request(method, path, json=body, headers=headers)
        outcomes[caller] = response.status_code
        if caller in ("none", "bad", "revoked"):
            assert response.status_code == 401, (caller, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        elif caller in allowed:
            assert response.status_code not in (401, 403), (caller, response.text)
            assert response.status_code < 500, (caller, response.text)
        else:
            assert response.status_code == 403, (caller, response.text)
            assert response.json()["code"] == "forbidden"
    assert outcomes


async def test_public_routes_need_no_token(api: ApiHarness) -> None:
    for method, path in PUBLIC:
        response = await api.client.request(method, path)
        assert response.status_code == 200, path


async def test_department_token_on_another_departments_assignment_is_403(
    api: ApiHarness,
) -> None:
    d = await api.dispatched("PM03")
    aid = d["assignments"][0]
    for action, body in (
        ("sign-for", {}),
        ("return", {"reason": "x"}),
        ("progress", {"note": "x"}),
        ("resolve", {"account": "x"}),
        ("report-in", {}),
    ):
        r = await api.post(f"/v1/assignments/{aid}/{action}", DEPT, body, "hd.urban")
        assert r.status_code == 403 and r.json()["code"] == "not-assigned", action
    events = api.app.history(uuid.UUID(d["id"]))
    assert len(events) == 3  # nothing was recorded


async def test_malformed_authorization_headers_are_401(api: ApiHarness) -> None:
    for value in ("", "Bearer", "Basic dXNlcjpwYXNz", "Bearer cl__", "Token abc"):
        r = await api.client.get("/v1/categories", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.headers["content-type"].startswith("application/problem+json")


def test_the_domain_lets_supervisors_do_the_dispatch_centres_work() -> None:
    """What the routes admit is the domain's rule: supervisors classify, merge, call back."""
    for action in (Action.CLASSIFY, Action.MERGE, Action.RECORD_FEEDBACK):
        assert may(action) == {OP, SUP}, action


async def test_a_supervisor_classifies_merges_and_records_feedback(api: ApiHarness) -> None:
    primary = await api.new_grievance()
    duplicate = await api.new_grievance()
    r = await api.post(f"/v1/grievances/{primary['id']}/classify", SUP, {"category": "PM03"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "classified"
    r = await api.post(
        f"/v1/grievances/{duplicate['id']}/merge", SUP, {"into": primary["id"], "reason": "重复"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "merged"

    d = await api.dispatched("PM03")
    lead = d["assignments"][0]
    for action, body in (("sign-for", {}), ("resolve", {"account": "已处理"})):
        r = await api.post(f"/v1/assignments/{lead}/{action}", DEPT, body, "cm.xyl-01")
        assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/grievances/{d['id']}/feedback",
        SUP,
        {"contacted": True, "resolved": True, "satisfaction": "satisfied"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"
    events = api.app.history(uuid.UUID(d["id"]))
    recorded = [e for e in events if type(e).__name__ == "FeedbackRecorded"]
    assert [e.role for e in recorded] == [SUP]


async def test_a_department_on_an_operator_action_is_403_naming_who_may(api: ApiHarness) -> None:
    created = await api.new_grievance()
    path = f"/v1/grievances/{created['id']}/classify"
    r = await api.post(path, DEPT, {"category": "PM03"}, "cm.xyl-01")
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "forbidden"
    assert body["roles"] == ["operator", "supervisor"]
    for lang in ("zh", "en"):
        r = await api.client.post(
            f"{path}?lang={lang}", json={"category": "PM03"}, headers=api.auth(DEPT, "cm.xyl-01")
        )
        detail = r.json()["detail"]
        for role in ("operator", "supervisor", "department"):
            assert role_label(role, lang) in detail, (lang, detail)
    assert len(api.app.history(uuid.UUID(created["id"]))) == 1  # nothing was recorded


__all__ = ["sqlite_api"]  # the ``api`` fixture
