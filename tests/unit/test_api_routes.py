"""Every route through the ASGI app (SQLite event store in tmp_path): happy paths and errors."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tests.support.api import ApiHarness, grievance_body, sqlite_api

PROBLEM = "application/problem+json"


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


# ------------------------------------------------------------------ operators


async def test_create_grievance_answers_201_with_location_and_version(api: ApiHarness) -> None:
    r = await api.post("/v1/grievances", "operator", grievance_body())
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "received" and body["version"] == 1
    assert len(body["number"]) == 14 and body["number"].startswith("20261123")
    assert r.headers["location"] == f"/v1/grievances/{body['id']}"
    assert r.headers["etag"] == '"1"'
    assert r.headers["x-request-id"]


async def test_create_grievance_validates_phone_location_and_fields(api: ApiHarness) -> None:
    r = await api.post("/v1/grievances", "operator", grievance_body(citizen_phone="12345"))
    assert problem(r, 422, "invalid-command")["field"] == "citizen_phone"

    bad_place = grievance_body()
    bad_place["location"]["district"] = "chaoyang"
    r = await api.post("/v1/grievances", "operator", bad_place)
    assert problem(r, 422, "invalid-command")["field"] == "location.district"

    missing = grievance_body()
    del missing["text"], missing["channel"]
    body = problem(await api.post("/v1/grievances", "operator", missing), 422, "invalid-request")
    assert {e["field"] for e in body["errors"]} == {"text", "channel"}

    r = await api.post("/v1/grievances", "operator", grievance_body(extra="x"))
    assert problem(r, 422, "invalid-request")["field"] == "extra"

    r = await api.post("/v1/grievances", "operator", grievance_body(text="x" * 4001))
    assert problem(r, 422, "invalid-request")["field"] == "text"

    import json

    lone_surrogate = json.dumps(grievance_body(text="X broken")).replace("X", "\\ud800")
    r = await api.client.post(
        "/v1/grievances",
        content=lone_surrogate.encode(),
        headers=api.auth("operator", **{"content-type": "application/json"}),
    )
    assert problem(r, 422, "invalid-request")["field"] == "text"

    r = await api.client.post(
        "/v1/grievances",
        content=b"{not json",
        headers=api.auth("operator", **{"content-type": "application/json"}),
    )
    problem(r, 422, "invalid-request")


async def test_text_is_stored_nfc_and_returned_unchanged(api: ApiHarness) -> None:
    decomposed = "Cafe\u0301 门口 噪音扰民"
    created = await api.new_grievance(text=decomposed)
    r = await api.get(f"/v1/grievances/{created['id']}", "operator")
    assert r.json()["text"] == "Café 门口 噪音扰民"


async def test_classify_then_dispatch_by_routing_rules(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    r = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "SF02"})
    assert r.status_code == 200 and r.json()["status"] == "classified"
    r = await api.post(f"/v1/grievances/{gid}/dispatch", "operator")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "dispatched" and len(body["assignments"]) == 3
    g = (await api.get(f"/v1/grievances/{gid}", "operator")).json()
    assert g["lead_department"] == "st.xueyuanlu"
    assert {a["department"] for a in g["assignments"]} == {"st.xueyuanlu", "hd.fire", "cm.xyl-01"}
    assert all(a["allowed_actions"] for a in g["assignments"])


async def test_dispatch_to_named_departments(api: ApiHarness) -> None:
    body = await api.dispatched("PM02", lead="st.xueyuanlu", assisting=["hd.housing"])
    assert len(body["assignments"]) == 2


async def test_classify_errors_unknown_category_unknown_id_and_final_status(
    api: ApiHarness,
) -> None:
    gid = (await api.new_grievance())["id"]
    r = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "ZZ99"})
    assert problem(r, 422, "invalid-command")["field"] == "category"

    r = await api.post(f"/v1/grievances/{uuid.uuid4()}/classify", "operator", {"category": "PM03"})
    problem(r, 404, "grievance-not-found")

    r = await api.post("/v1/grievances/not-a-uuid/classify", "operator", {"category": "PM03"})
    assert problem(r, 422, "invalid-request")["field"] == "grievance_id"

    r = await api.post(f"/v1/grievances/{gid}/reject", "operator", {"reason": "不属于受理范围"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"})
    body = problem(r, 409, "illegal-transition")
    assert body["current_status"] == "rejected" and body["allowed_actions"] == []
    assert "不予受理" in body["detail"]


async def test_dispatch_before_classify_is_409_naming_status_and_allowed(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    body = problem(
        await api.post(f"/v1/grievances/{gid}/dispatch", "operator"), 409, "illegal-transition"
    )
    assert body["current_status"] == "received"
    assert "classify" in body["allowed_actions"]
    assert "已受理" in body["detail"] and "梳理" in body["detail"]


async def test_reject_needs_a_reason(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    r = await api.post(f"/v1/grievances/{gid}/reject", "operator", {"reason": ""})
    assert problem(r, 422, "invalid-request")["field"] == "reason"


async def test_merge_and_withdraw(api: ApiHarness) -> None:
    primary = (await api.new_grievance())["id"]
    duplicate = (await api.new_grievance())["id"]
    r = await api.post(
        f"/v1/grievances/{duplicate}/merge", "operator", {"into": primary, "reason": "重复来电"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "merged" and r.json()["into"] == primary
    g = (await api.get(f"/v1/grievances/{primary}", "operator")).json()
    assert g["duplicates"] == [duplicate]

    r = await api.post(f"/v1/grievances/{primary}/merge", "operator", {"into": primary})
    assert problem(r, 422, "invalid-command")["field"] == "into"

    r = await api.post(f"/v1/grievances/{primary}/withdraw", "operator", {"reason": "市民撤回"})
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"


async def test_return_then_arbitrate_redispatch(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    gid, aid = d["id"], d["assignments"][0]
    r = await api.post(
        f"/v1/assignments/{aid}/return", "department", {"reason": "非本社区职责"}, "cm.xyl-01"
    )
    assert r.status_code == 200 and r.json()["status"] == "returned"
    r = await api.post(
        f"/v1/grievances/{gid}/arbitrate",
        "operator",
        {"assignment_id": aid, "decision": "redispatch"},
    )
    assert problem(r, 422, "invalid-command")["field"] == "department"
    r = await api.post(
        f"/v1/grievances/{gid}/arbitrate",
        "supervisor",
        {"assignment_id": aid, "decision": "redispatch", "department": "st.xueyuanlu"},
    )
    assert r.status_code == 200, r.text
    new_aid = r.json()["assignment_id"]
    assert new_aid.endswith(".2") and r.json()["status"] == "dispatched"
    r = await api.post(f"/v1/assignments/{new_aid}/sign-for", "department", None, "st.xueyuanlu")
    assert r.status_code == 200 and r.json()["status"] == "in_progress"


async def test_get_grievance_masks_personal_data_except_for_operators(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    gid = d["id"]
    full = await api.get(f"/v1/grievances/{gid}", "operator")
    assert full.status_code == 200 and full.headers["etag"] == '"3"'
    assert full.json()["citizen_phone"] == "13812345678"
    assert full.json()["citizen_name"] == "张秀英"
    for role, dept in (("supervisor", None), ("department", "cm.xyl-01")):
        masked = (await api.get(f"/v1/grievances/{gid}", role, dept)).json()
        assert masked["citizen_phone"] == "138****5678", role
        assert masked["citizen_name"] == "张**", role
    r = await api.get(f"/v1/grievances/{gid}", "department", "hd.urban")
    problem(r, 403, "forbidden")
    problem(await api.get(f"/v1/grievances/{uuid.uuid4()}", "operator"), 404, "grievance-not-found")


async def test_open311_files_and_reads_only_its_own(api: ApiHarness) -> None:
    r = await api.post("/v1/grievances", "open311", grievance_body(channel="open311"))
    assert r.status_code == 201
    own = r.json()["id"]
    r = await api.get(f"/v1/grievances/{own}", "open311")
    assert r.status_code == 200 and r.json()["citizen_phone"] == "138****5678"
    other = (await api.new_grievance())["id"]
    problem(await api.get(f"/v1/grievances/{other}", "open311"), 403, "forbidden")


async def test_list_grievances_filters_and_cursor_pagination(api: ApiHarness) -> None:
    first = (await api.dispatched("PM03"))["id"]
    api.clock.advance(minutes=5)
    second = (await api.new_grievance())["id"]
    api.clock.advance(minutes=5)
    third = (await api.new_grievance(text="噪音扰民，夜间施工"))["id"]
    api.catch_up()

    r = await api.get("/v1/grievances", "operator", params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert [i["id"] for i in page["items"]] == [third, second]
    assert page["items"][0]["citizen_phone"] == "138****5678"  # lists never show it
    r = await api.get(
        "/v1/grievances", "operator", params={"limit": 2, "cursor": page["next_cursor"]}
    )
    assert [i["id"] for i in r.json()["items"]] == [first] and r.json()["next_cursor"] is None

    r = await api.get("/v1/grievances", "supervisor", params={"status": "dispatched"})
    assert [i["id"] for i in r.json()["items"]] == [first]
    assert r.json()["items"][0]["citizen_phone"] == "138****5678"
    r = await api.get("/v1/grievances", "operator", params={"department": "cm.xyl-01"})
    assert [i["id"] for i in r.json()["items"]] == [first]
    r = await api.get("/v1/grievances", "operator", params={"street": "xueyuanlu", "limit": 10})
    assert len(r.json()["items"]) == 3
    r = await api.get("/v1/grievances", "operator", params={"escalation_level": 1})
    assert r.json()["items"] == []

    api.clock.advance(days=30)
    r = await api.get("/v1/grievances", "operator", params={"overdue": "true"})
    assert [i["id"] for i in r.json()["items"]] == [first]

    received = api.app.get_grievance(uuid.UUID(second)).received_at
    r = await api.get(
        "/v1/grievances",
        "operator",
        params={
            "received_from": received.isoformat(),
            "received_to": (received + timedelta(minutes=1)).isoformat(),
        },
    )
    assert [i["id"] for i in r.json()["items"]] == [second]

    r = await api.get("/v1/grievances", "operator", params={"cursor": "garbage!!"})
    assert problem(r, 422, "invalid-command")["field"] == "cursor"
    r = await api.get("/v1/grievances", "operator", params={"limit": 0})
    assert problem(r, 422, "invalid-request")["field"] == "limit"
    r = await api.get("/v1/grievances", "operator", params={"status": "nonsense"})
    assert problem(r, 422, "invalid-request")["field"] == "status"
    r = await api.get("/v1/grievances", "operator", params={"received_from": "2026-11-23T09:00:00"})
    assert problem(r, 422, "invalid-request")["field"] == "received_from"


async def test_text_search(api: ApiHarness) -> None:
    created = await api.new_grievance()
    api.catch_up()
    r = await api.get("/v1/grievances", "operator", params={"q": created["number"]})
    assert [i["id"] for i in r.json()["items"]] == [created["id"]]
    r = await api.get("/v1/grievances", "operator", params={"q": "no-such-thing"})
    assert r.json()["items"] == []


async def test_callbacks_queue_lists_resolved_grievances(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    aid = d["assignments"][0]
    await api.post(f"/v1/assignments/{aid}/sign-for", "department", None, "cm.xyl-01")
    r = await api.post(
        f"/v1/assignments/{aid}/resolve", "department", {"account": "已修复"}, "cm.xyl-01"
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    api.catch_up()
    r = await api.get("/v1/callbacks", "operator")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["grievance_id"] for i in items] == [d["id"]]
    assert items[0]["citizen_phone"] == "13812345678"
    masked = (await api.get("/v1/callbacks", "supervisor")).json()["items"][0]
    assert masked["citizen_phone"] == "138****5678"


async def test_feedback_on_an_unresolved_grievance_is_409(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    r = await api.post(
        f"/v1/grievances/{d['id']}/feedback",
        "operator",
        {"contacted": True, "resolved": True, "satisfaction": "satisfied"},
    )
    body = problem(r, 409, "illegal-transition")
    assert body["current_status"] == "dispatched"


async def test_categories_and_departments(api: ApiHarness) -> None:
    r = await api.get("/v1/categories", "department", "cm.xyl-01")
    assert r.status_code == 200
    tree = r.json()["items"]
    pm = next(c for c in tree if c["code"] == "PM")
    pm03 = next(c for c in pm["children"] if c["code"] == "PM03")
    assert pm03["sla_class"] == "B" and pm03["lead"] == "community" and pm03["name"]
    r = await api.get("/v1/departments", "operator")
    codes = {d["code"]: d for d in r.json()["items"]}
    assert codes["hd.urban"]["level"] == "district" and codes["cm.xyl-01"]["level"] == "community"


# ---------------------------------------------------------------- departments


async def test_assignments_are_scoped_to_the_department(api: ApiHarness) -> None:
    d = await api.dispatched("SF02")
    api.catch_up()
    r = await api.get("/v1/assignments", "department", "hd.fire")
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 1 and items[0]["department"] == "hd.fire"
    assert items[0]["grievance_id"] == d["id"]
    r = await api.get(
        "/v1/assignments", "department", "hd.fire", params={"department": "cm.xyl-01"}
    )
    problem(r, 403, "forbidden")
    r = await api.get("/v1/assignments", "department", "hd.fire", params={"department": "hd.fire"})
    assert [i["department"] for i in r.json()["items"]] == ["hd.fire"]
    r = await api.get("/v1/assignments", "department", "hd.fire", params={"state": "signed_for"})
    assert r.json()["items"] == []
    r = await api.get("/v1/assignments", "supervisor", params={"department": "cm.xyl-01"})
    assert len(r.json()["items"]) == 1
    r = await api.get("/v1/assignments", "supervisor")
    assert problem(r, 422, "invalid-request")["field"] == "department"


async def test_department_work_progress_extension_parts_and_resolve(api: ApiHarness) -> None:
    d = await api.dispatched("SF02")
    gid = d["id"]
    lead, fire, community = d["assignments"]
    for aid, dept in ((lead, "st.xueyuanlu"), (fire, "hd.fire"), (community, "cm.xyl-01")):
        r = await api.post(f"/v1/assignments/{aid}/sign-for", "department", None, dept)
        assert r.status_code == 200, r.text

    r = await api.post(
        f"/v1/assignments/{lead}/progress", "department", {"note": "已约谈物业"}, "st.xueyuanlu"
    )
    assert r.status_code == 200
    r = await api.post(
        f"/v1/assignments/{lead}/progress", "department", {"note": ""}, "st.xueyuanlu"
    )
    assert problem(r, 422, "invalid-request")["field"] == "note"

    g = (await api.get(f"/v1/grievances/{gid}", "operator")).json()
    current = next(a for a in g["assignments"] if a["id"] == lead)["resolve_deadline"]
    from datetime import datetime

    later = (datetime.fromisoformat(current) + timedelta(days=3)).isoformat()
    r = await api.post(
        f"/v1/assignments/{lead}/extension-request",
        "department",
        {"new_deadline": later, "reason": "需协调燃气公司"},
        "st.xueyuanlu",
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/assignments/{lead}/extension-request",
        "department",
        {"new_deadline": "2026-12-01T10:00:00", "reason": "x"},
        "st.xueyuanlu",
    )
    assert problem(r, 422, "invalid-request")["field"] == "new_deadline"

    r = await api.post(
        f"/v1/grievances/{gid}/extension-decision",
        "supervisor",
        {"assignment_id": lead, "granted": False},
    )
    assert problem(r, 422, "invalid-command")["field"] == "reason"
    r = await api.post(
        f"/v1/grievances/{gid}/extension-decision",
        "supervisor",
        {"assignment_id": lead, "granted": True, "reason": "同意"},
    )
    assert r.status_code == 200, r.text
    g = (await api.get(f"/v1/grievances/{gid}", "operator")).json()
    moved = next(a for a in g["assignments"] if a["id"] == lead)
    assert datetime.fromisoformat(moved["resolve_deadline"]) == datetime.fromisoformat(later)
    assert moved["extensions_granted"] == 1

    # the lead cannot resolve while an assisting part is open: 409 naming why
    r = await api.post(
        f"/v1/assignments/{lead}/resolve", "department", {"account": "完成"}, "st.xueyuanlu"
    )
    body = problem(r, 409, "illegal-assignment-transition")
    assert body["current_status"] == "in_progress" and body["assignment_id"] == lead
    # an assisting department cannot resolve; the lead cannot complete a part
    r = await api.post(
        f"/v1/assignments/{fire}/resolve", "department", {"account": "完成"}, "hd.fire"
    )
    assert problem(r, 409, "illegal-assignment-transition")["assignment_id"] == fire
    for aid, dept in ((fire, "hd.fire"), (community, "cm.xyl-01")):
        r = await api.post(
            f"/v1/assignments/{aid}/complete-part", "department", {"account": "已排查"}, dept
        )
        assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/assignments/{lead}/resolve", "department", {"account": "完成"}, "st.xueyuanlu"
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"


async def test_assignment_errors_unknown_malformed_and_foreign(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    aid = d["assignments"][0]
    r = await api.post(f"/v1/assignments/{d['id']}.9/sign-for", "department", None, "cm.xyl-01")
    problem(r, 404, "unknown-assignment")
    r = await api.post(
        f"/v1/assignments/{uuid.uuid4()}.1/sign-for", "department", None, "cm.xyl-01"
    )
    problem(r, 404, "grievance-not-found")
    r = await api.post("/v1/assignments/nonsense/sign-for", "department", None, "cm.xyl-01")
    assert problem(r, 422, "invalid-command")["field"] == "assignment_id"
    r = await api.post(f"/v1/assignments/{aid}/sign-for", "department", None, "hd.urban")
    problem(r, 403, "not-assigned")
    r = await api.post(f"/v1/assignments/{aid}/report-in", "department", None, "cm.xyl-01")
    body = problem(r, 409, "illegal-assignment-transition")
    assert body["allowed_actions"] == [
        "attach_to_assignment",
        "request_extension",
        "return",
        "sign_for",
    ]


# ---------------------------------------------------------------- supervisors


async def test_summon_report_in_and_escalate(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    gid = d["id"]
    r = await api.post(
        f"/v1/grievances/{gid}/summon",
        "supervisor",
        {"departments": ["hd.urban", "hd.enforcement"], "reason": "联合处置"},
    )
    assert r.status_code == 200, r.text
    summoned = r.json()["assignments"]
    assert len(summoned) == 2
    r = await api.post(f"/v1/assignments/{summoned[0]}/report-in", "department", {}, "hd.urban")
    assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/grievances/{gid}/summon", "supervisor", {"departments": [], "reason": "x"}
    )
    assert problem(r, 422, "invalid-request")["field"] == "departments"

    r = await api.post(
        f"/v1/grievances/{gid}/escalate", "supervisor", {"level": 1, "reason": "督办"}
    )
    assert r.status_code == 200
    g = (await api.get(f"/v1/grievances/{gid}", "supervisor")).json()
    assert g["escalation_level"] == 1
    r = await api.post(f"/v1/grievances/{gid}/escalate", "supervisor", {"level": 4, "reason": "x"})
    assert problem(r, 422, "invalid-request")["field"] == "level"


async def test_audit_events_and_state_by_version_and_instant(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    gid = d["id"]
    r = await api.get(f"/v1/audit/grievances/{gid}/events", "supervisor")
    assert r.status_code == 200
    events = r.json()["events"]
    assert [e["type"] for e in events] == ["Received", "Classified", "Dispatched"]
    assert [e["version"] for e in events] == [1, 2, 3]
    assert events[0]["data"]["citizen_phone"] == "138****5678"
    assert events[0]["role"] == "operator" and events[0]["principal"]

    r = await api.get(f"/v1/audit/grievances/{gid}/state", "supervisor", params={"version": 2})
    assert r.status_code == 200
    assert r.json()["version"] == 2 and r.json()["grievance"]["status"] == "classified"

    at_classify = events[1]["timestamp"]
    r = await api.get(
        f"/v1/audit/grievances/{gid}/state", "supervisor", params={"as_of": at_classify}
    )
    assert r.json()["version"] == 2
    r = await api.get(
        f"/v1/audit/grievances/{gid}/state", "supervisor", params={"as_of": "2000-01-01T00:00:00Z"}
    )
    problem(r, 404, "grievance-not-found")
    r = await api.get(f"/v1/audit/grievances/{gid}/state", "supervisor", params={"version": 9})
    assert problem(r, 422, "invalid-request")["field"] == "version"
    r = await api.get(
        f"/v1/audit/grievances/{gid}/state",
        "supervisor",
        params={"version": 1, "as_of": at_classify},
    )
    problem(r, 422, "invalid-request")
    r = await api.get(f"/v1/audit/grievances/{gid}/state", "supervisor")
    assert r.json()["version"] == 3
    problem(
        await api.get(f"/v1/audit/grievances/{uuid.uuid4()}/events", "supervisor"),
        404,
        "grievance-not-found",
    )


async def test_kpis_per_department(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    await api.post(
        f"/v1/assignments/{d['assignments'][0]}/sign-for", "department", None, "cm.xyl-01"
    )
    api.catch_up()
    r = await api.get("/v1/kpis", "supervisor")
    assert r.status_code == 200, r.text
    body = r.json()
    row = next(i for i in body["items"] if i["department"] == "cm.xyl-01")
    assert row["dispatched"] == 1 and row["signed_for"] == 1
    r = await api.get("/v1/kpis", "supervisor", params={"department": "hd.urban"})
    assert r.json()["items"] == []
    r = await api.get(
        "/v1/kpis", "supervisor", params={"date_from": "2026-11-30", "date_to": "2026-11-01"}
    )
    assert problem(r, 422, "invalid-request")["field"] == "date_from"


# --------------------------------------------------------------------- health


async def test_healthz_and_readyz(api: ApiHarness) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await api.client.get("/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["event_store"]["ok"] and checks["projections"]["lag"] == 0


async def test_unknown_route_and_method_are_problems(api: ApiHarness) -> None:
    problem(await api.client.get("/v1/nothing-here"), 404, "not-found")
    r = await api.client.delete("/v1/categories", headers=api.auth("operator"))
    problem(r, 405, "method-not-allowed")


async def test_openapi_documents_every_route_with_examples(api: ApiHarness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
        if path.startswith(("/v1/", "/healthz", "/readyz"))
    ]
    # 29 + the audit routes (lateness x2, casefile, verify) + attachments (2 uploads, 2 reads)
    # + duplicate suggestions (2) + the policy what-if
    # + the answer at intake and the knowledge base (8)
    # + the summons rating
    # + the places (GET /v1/places)
    # + the rankings
    # + the rating rounds (5)
    assert len(operations) == 56
    for path, method, op in operations:
        assert op.get("summary"), (path, method)
        if method == "post" and "multipart/form-data" in op["requestBody"]["content"]:
            continue  # an upload: the file is its example
        if method == "post":
            content = op["requestBody"]["content"]["application/json"]["schema"]
            ref = content.get("$ref") or next(
                s["$ref"] for s in content.get("anyOf", []) if "$ref" in s
            )
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            assert schema.get("examples"), (path, schema)
    assert "Problem" in spec["components"]["schemas"]
    assert (await api.client.get("/docs")).status_code == 200


__all__ = ["sqlite_api"]  # the ``api`` fixture
