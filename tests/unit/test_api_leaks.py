"""Issue 15, leaks and spoofing: a department learns no other department's assignment owner
and no case number from an error; names, phones and structured fields refuse invisible
format characters and line separators (text: direction controls); phone numbers written
into free text are masked for every role but operators."""

from __future__ import annotations

import uuid

import pytest

from api.catalogue import department_name
from api.views import mask_phones_in
from tests.support.api import ApiHarness, grievance_body, sqlite_api

# ------------------------------------------------------------------ error leaks


async def test_a_department_learns_no_owner_or_case_number_from_an_error(
    api: ApiHarness,
) -> None:
    d = await api.dispatched("PM03")
    gid, aid = d["id"], d["assignments"][0]
    g = api.app.get_grievance(uuid.UUID(gid))
    owner, number = g.assignment(aid).department, g.number
    directory = api.app.policies.directory
    secrets = {owner, number, *(department_name(owner, lang, directory) for lang in ("zh", "en"))}
    for lang in ("zh", "en"):
        foreign = await api.post(
            f"/v1/assignments/{aid}/sign-for?lang={lang}", "department", {}, "hd.urban"
        )
        assert foreign.status_code == 403 and foreign.json()["code"] == "not-assigned"
        unknown = await api.post(
            f"/v1/assignments/{gid}.9/sign-for?lang={lang}", "department", {}, "hd.urban"
        )
        assert unknown.status_code == 404 and unknown.json()["code"] == "unknown-assignment"
        for r in (foreign, unknown):
            assert not [s for s in secrets if s in r.text], r.text
        assert aid in foreign.json()["detail"]  # what it sent, nothing more
    # The owner itself, and staff, still get the whole story.
    r = await api.post(f"/v1/assignments/{gid}.9/sign-for?lang=en", "department", {}, owner)
    assert r.status_code == 404 and number not in r.text  # a department: never the number
    assert api.app.history(uuid.UUID(gid))[-1].originator_version == g.version  # nothing recorded


# ------------------------------------------------------------- invisible characters

SPOOFS = [
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u200b",
    "\ufeff",
    "\u2028",
    "\u2029",
    "\u061c",
]


@pytest.mark.parametrize("char", SPOOFS)
async def test_names_phones_and_addresses_refuse_format_characters(
    api: ApiHarness, char: str
) -> None:
    for field, value in (
        ("citizen_name", f"张{char}秀英"),
        ("citizen_phone", f"138{char}12345678"),
    ):
        r = await api.post("/v1/grievances?lang=en", "operator", grievance_body(**{field: value}))
        assert r.status_code == 422, (field, r.text)
        problem = r.json()
        assert problem["field"] == field
        assert "invisible format characters" in problem["errors"][0]["message"]
    location = grievance_body()["location"] | {"address": f"石油大院{char}3号楼"}
    r = await api.post("/v1/grievances", "operator", grievance_body(location=location))
    assert r.status_code == 422 and r.json()["field"] == "location.address"
    assert api.app.recorder.max_notification_id() in (None, 0)  # nothing recorded


@pytest.mark.parametrize("char", ["\u202e", "\u202b", "\u2067"])
async def test_free_text_refuses_direction_controls(api: ApiHarness, char: str) -> None:
    r = await api.post("/v1/grievances", "operator", grievance_body(text=f"楼道堆物{char}请处理"))
    assert r.status_code == 422 and r.json()["field"] == "text"
    assert r.json()["errors"][0]["message"] == "不得含有文字方向控制字符"


async def test_free_text_keeps_line_breaks_and_emoji_joiners(api: ApiHarness) -> None:
    text = "楼道堆物\n请处理 👨\u200d👩\u200d👧"
    r = await api.post("/v1/grievances", "operator", grievance_body(text=text))
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ phones in text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("请回电13812345678谢谢", "请回电138****5678谢谢"),
        ("电话 138 1234 5678。", "电话 138****5678。"),
        ("+86-138-1234-5678", "138****5678"),
        ("座机010-62345678", "座机010****5678"),
        ("（010）62345678", "010****5678"),
        ("１３８１２３４５６７８", "138****5678"),
        ("小卖部 62345678", "小卖部 ****5678"),
        # not phone numbers: a case number, a date, an amount, a postcode, a house number
        ("案件20261123126263", "案件20261123126263"),
        ("2026-11-23 起", "2026-11-23 起"),
        ("共12345元", "共12345元"),
        ("邮编100083", "邮编100083"),
        ("3号楼2单元502", "3号楼2单元502"),
        ("第12次巡查：摊贩已劝离。", "第12次巡查：摊贩已劝离。"),  # no three digits in a row
    ],
)
def test_phone_numbers_in_free_text_are_found_and_masked(text: str, masked: str) -> None:
    assert mask_phones_in(text) == masked


async def test_phone_numbers_in_text_are_shown_only_to_operators(api: ApiHarness) -> None:
    text = "楼道堆物，联系邻居王先生13987654321，或座机010-62345678"
    d = await api.dispatched("PM03", **{})
    gid = d["id"]
    # Put the numbers into the citizen's text and a department's account.
    created = await api.post("/v1/grievances", "operator", grievance_body(text=text))
    assert created.status_code == 201
    cid = created.json()["id"]
    owner = api.app.get_grievance(uuid.UUID(gid)).lead_assignment()
    assert owner is not None
    r = await api.post(f"/v1/assignments/{owner.id}/sign-for", "department", {}, owner.department)
    assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/assignments/{owner.id}/progress",
        "department",
        {"note": "已联系 13987654321"},
        owner.department,
    )
    assert r.status_code == 200, r.text
    operator = (await api.get(f"/v1/grievances/{cid}", "operator")).json()
    assert operator["text"] == text
    supervisor = (await api.get(f"/v1/grievances/{cid}", "supervisor")).json()
    assert "13987654321" not in supervisor["text"] and "62345678" not in supervisor["text"]
    assert "139****4321" in supervisor["text"] and "010****5678" in supervisor["text"]
    events = (await api.get(f"/v1/audit/grievances/{gid}/events", "supervisor")).text
    assert "13987654321" not in events and "139****4321" in events
    own = (await api.get(f"/v1/grievances/{gid}", "department", owner.department)).text
    assert "13987654321" not in own
    op_events = (await api.get(f"/v1/audit/grievances/{gid}/events", "operator")).text
    assert "13987654321" in op_events
    # The case file (HTML, for supervisors' audit): the text and a department's note too.
    for grievance in (cid, gid):
        page = (await api.get(f"/v1/audit/grievances/{grievance}/casefile", "supervisor")).text
        assert "13987654321" not in page and "139****4321" in page
    op_page = (await api.get(f"/v1/audit/grievances/{cid}/casefile", "operator")).text
    assert "13987654321" in op_page


__all__ = ["sqlite_api"]  # the ``api`` fixture
