"""The workbench in headless Chromium: the whole loop driven through the pages alone, in
Chinese. An operator takes a call (keyboard), classifies by keyword, sees the negative list
refuse a community committee, dispatches on the routing suggestion; the community committee
signs for, attaches a photo and resolves; the operator records an unsatisfied 回访; the
committee resolves again; a satisfied 回访 closes it. Screenshots land in ``var/``.

The pages act only through the API's own routes: the events afterwards name the tokens the
pages used, and the read models (a projector thread follows the log) feed the queues.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from api.app import create_app
from projections.runner import run_forever
from tests.conftest import FakeClock
from tests.support.api import build_services, grievance_body
from tests.support.browser import SHOTS, chromium, require_browser, serving, watch
from tests.support.evidence import jpeg
from tests.support.projections import sqlite_env

COMMITTEE = "cm.xyl-01"  # 石油大院社区居委会: PM03 (公共区域设施维修) goes to the community
TEXT = "石油大院3号楼2单元楼道灯坏了两周，晚上老人上下楼很危险，请尽快维修。"


@pytest.fixture
def workbench(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], FakeClock]]:
    """The app on a real port over SQLite, a projector following the log, four tokens, and
    the service's clock (it moves only when the test says)."""
    env = sqlite_env(tmp_path)
    clock = FakeClock(datetime.now(UTC))
    app = create_app(lambda: build_services(env, tmp_path, clock))
    stop = threading.Event()
    projector = threading.Thread(
        target=run_forever, args=(env, stop), kwargs={"interval": 0.1}, daemon=True
    )
    with serving(app) as base:
        tokens = app.state.services.tokens
        made = {
            "operator": tokens.create("operator", name="李接线员")[1],
            "supervisor": tokens.create("supervisor", name="督办科")[1],
            "urban": tokens.create("department", department="hd.urban", name="区城管委")[1],
            "department": tokens.create("department", department=COMMITTEE, name="石油大院居委会")[
                1
            ],
        }
        projector.start()
        try:
            yield base, made, clock
        finally:
            stop.set()
            projector.join(timeout=10)


def person(browser: Any, problems: list[str], locale: str = "zh-CN") -> Any:
    """A page in its own browser context (its own localStorage: its own token)."""
    viewport = {"width": 1400, "height": 1300}
    page = watch(browser.new_page(locale=locale, viewport=viewport), problems)
    page.set_default_timeout(15000)
    return page


def sign_in(page: Any, base: str, path: str, token: str) -> None:
    """Open a page and paste the token into its form, as a person would."""
    page.goto(base + path)
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("body[data-loaded]")


def act(page: Any, action: str, status: str) -> None:
    """Send the visible form of ``action`` and wait until the grievance shows ``status``."""
    before = int(page.get_attribute("body", "data-loaded") or 0)
    page.locator(f"#form-{action} button[type=submit]").click()
    # Polled from here: the page's CSP forbids the eval a string wait_for_function needs.
    for _ in range(150):
        if int(page.get_attribute("body", "data-loaded") or 0) > before:
            break
        page.wait_for_timeout(100)
    expect(page.locator("#g-status")).to_have_text(status)


def open_from_queue(page: Any, queue: str, number: str) -> None:
    page.locator(f"#{queue} a", has_text=number).click()
    page.wait_for_selector("#g-number:has-text('" + number + "')")
    page.wait_for_selector("body[data-loaded]")


def wait_in_queue(page: Any, base: str, queue: str, number: str, query: str = "") -> None:
    """Reload the queues until the projector has put ``number`` in ``queue``."""
    for _ in range(50):
        page.goto(base + "/workbench" + query)
        page.wait_for_selector("body[data-loaded]")
        if page.locator(f"#{queue} a", has_text=number).count():
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"{number} never reached {queue}")


def test_the_whole_loop_through_the_workbench(
    workbench: tuple[str, dict[str, str], FakeClock],
) -> None:
    require_browser()
    base, tokens, clock = workbench
    problems: list[str] = []
    with chromium() as browser:
        op, dept = person(browser, problems), person(browser, problems)

        # --- the operator takes a call: keyboard from the name to the filing
        sign_in(op, base, "/workbench/intake", tokens["operator"])
        assert op.title() == "接诉即办 · 工作台 · 新建受理"
        op.focus("#citizen_name")
        op.keyboard.type("张秀英")
        op.keyboard.press("Tab")
        op.keyboard.type("1381234")
        op.keyboard.press("Tab")
        op.keyboard.type(TEXT)
        op.select_option("#street", "xueyuanlu")
        op.select_option("#community", "xyl-01")  # the place picker: GET /v1/places
        op.select_option("#grid", "xyl-01-g1")
        op.focus("#address")
        op.keyboard.type("石油大院3号楼2单元")
        op.keyboard.press("Enter")
        # the API's refusal, in Chinese, next to the field it is about
        wrong = op.locator('[data-error-for="citizen_phone"]')
        wrong.wait_for()
        assert "电话号码无效" in wrong.inner_text()
        op.screenshot(path=str(SHOTS / "workbench-1-intake.png"), full_page=True)
        op.fill("#citizen_phone", "13812345678")
        op.press("#address", "Enter")
        op.wait_for_url("**/workbench/grievances/**")
        op.wait_for_selector("#form-classify:not([hidden])")
        number = op.locator("#g-number").inner_text()
        assert "学院路街道 · 石油大院社区" in op.locator("#g-place").inner_text()
        assert number and op.locator("#g-status").inner_text() == "已受理"
        # the focus is already in the category search
        expect(op.locator("#f-classify-category")).to_be_focused()

        # --- classify by keyword: a negative-list duty first, to see the refusal in words
        op.keyboard.type("违法建设")
        assert op.locator("#f-classify-category-list li[role=option]").count() == 1
        op.keyboard.press("Enter")  # take the highlighted leaf
        op.keyboard.press("Enter")  # send the form
        op.wait_for_selector("#form-dispatch:not([hidden])")
        op.wait_for_selector("#routing-suggestion:has-text('区城市管理综合行政执法局')")
        op.select_option("#f-dispatch-lead", COMMITTEE)
        op.locator("#form-dispatch button[type=submit]").click()
        refusal = op.locator('#form-dispatch [data-error-for=""]')
        refusal.wait_for()
        assert "社区工作事项负面清单不允许" in refusal.inner_text()
        assert op.locator("#g-status").inner_text() == "已梳理"
        op.screenshot(path=str(SHOTS / "workbench-2-negative-list.png"), full_page=True)

        # --- reclassify: 公共区域设施维修 goes to the community committee, as suggested
        op.fill("#f-classify-category", "")
        op.focus("#f-classify-category")
        op.keyboard.type("公共区域 维修")
        op.keyboard.press("Enter")
        assert op.input_value("#form-classify input[name=category]") == "PM03"
        act(op, "classify", "已梳理")
        op.wait_for_selector("#routing-suggestion:has-text('石油大院社区居委会')")
        assert op.input_value("#f-dispatch-lead") == COMMITTEE
        op.screenshot(path=str(SHOTS / "workbench-3-dispatch.png"), full_page=True)
        # the suggestion taken as it is: the focus waits on the dispatch button
        expect(op.locator("#form-dispatch button[type=submit]")).to_be_focused()
        op.keyboard.press("Enter")
        op.wait_for_selector("#g-status:has-text('已派单')")
        assert "签收时限" in op.locator("#g-deadlines").inner_text()
        assert "剩余" in op.locator("#g-deadlines").inner_text()

        # --- a second call about the same stairwell: shown as a possible duplicate while
        # the place is entered, and merged in one click once filed
        clock.advance(minutes=20)  # the later call is the one merged into the first
        op.goto(base + "/workbench/intake")
        op.wait_for_selector("body[data-loaded]")
        op.fill("#citizen_name", "王建国")
        op.fill("#citizen_phone", "13900001111")
        op.fill("#text", "石油大院3号楼楼道灯不亮。")
        op.select_option("#street", "xueyuanlu")
        for _ in range(20):  # the projector may not have read the first call yet
            op.select_option("#community", "")
            op.select_option("#community", "xyl-01")
            if op.locator("#similar li").count():
                break
            op.wait_for_timeout(250)
        assert number in op.locator("#similar").inner_text()
        op.screenshot(path=str(SHOTS / "workbench-3b-duplicate.png"), full_page=True)
        op.locator("#intake button[type=submit]").click()
        op.wait_for_url("**/workbench/grievances/**")
        op.locator(f"#similar li:has-text('{number}') button").click()
        op.wait_for_selector("#g-status:has-text('已合并')")

        # --- the committee: its queue by deadline, sign for, a photo, resolve
        sign_in(dept, base, "/workbench", tokens["department"])
        wait_in_queue(dept, base, "q-assignments", number)
        dept.screenshot(path=str(SHOTS / "workbench-4-department-queue.png"), full_page=True)
        open_from_queue(dept, "q-assignments", number)
        act(dept, "sign_for", "办理中")
        dept.set_input_files(
            "#f-attach_to_assignment-file",
            files=[{"name": "现场照片.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}],
        )
        dept.fill("#f-attach_to_assignment-note", "维修前现场")
        dept.locator("#form-attach_to_assignment button[type=submit]").click()
        dept.wait_for_selector("#g-attachments img.thumb[src^='blob:']")
        dept.fill("#f-resolve-account", "已更换楼道灯具并检查线路，夜间照明恢复。")
        act(dept, "resolve", "已办结")
        dept.screenshot(path=str(SHOTS / "workbench-5-resolved.png"), full_page=True)

        # --- the operator's 回访: not satisfied, so it is reopened (重办)
        wait_in_queue(op, base, "q-callbacks", number)
        open_from_queue(op, "q-callbacks", number)
        op.select_option("#f-record_feedback-contacted", "true")
        op.select_option("#f-record_feedback-resolved", "false")
        op.select_option("#f-record_feedback-satisfaction", "unsatisfied")
        op.fill("#f-record_feedback-comment", "市民反映灯仍然时亮时灭。")
        op.locator("#form-record_feedback button[type=submit]").click()
        op.wait_for_selector("#g-reopened:has-text('1')")
        assert op.locator("#g-status").inner_text() != "已办结"
        # The history is drawn after the counters: wait for it rather than read it at once.
        op.wait_for_selector("#g-history:has-text('重办')")

        # --- the committee works it again
        dept.reload()
        dept.wait_for_selector("body[data-loaded]")
        if dept.locator("#form-sign_for").is_visible():
            act(dept, "sign_for", "办理中")
        dept.fill("#f-resolve-account", "已更换整段线路，连续三晚复查照明正常。")
        act(dept, "resolve", "已办结")

        # --- a satisfied 回访 closes the loop
        op.reload()
        op.wait_for_selector("#form-record_feedback:not([hidden])")
        op.select_option("#f-record_feedback-contacted", "true")
        op.select_option("#f-record_feedback-resolved", "true")
        op.select_option("#f-record_feedback-satisfaction", "satisfied")
        act(op, "record_feedback", "已归档")
        assert op.locator("#no-actions").is_visible()
        history = op.locator("#g-history").inner_text()
        for step in ("受理", "梳理分类", "派单", "签收", "附件", "办结", "回访", "重办", "归档"):
            assert step in history, step
        op.screenshot(path=str(SHOTS / "workbench-6-closed.png"), full_page=True)
        gid = op.url.rsplit("/", 1)[-1]

    # The browser logs the refused requests (the phone number, the negative list) itself.
    refused = "console.error: Failed to load resource: the server responded with a status of 422"
    assert [p for p in problems if not p.startswith(refused)] == []
    assert len(problems) == 2
    # The API tells the same story, and every step was recorded under the pages' tokens.
    staff = {"Authorization": f"Bearer {tokens['operator']}"}
    g = httpx.get(f"{base}/v1/grievances/{gid}", headers=staff, timeout=10).json()
    assert (g["status"], g["outcome"], g["reopen_count"]) == ("closed", "satisfied", 1)
    assert [a["filename"] for a in g["attachments"]] == ["现场照片.jpg"]
    events = httpx.get(f"{base}/v1/audit/grievances/{gid}/events", headers=staff, timeout=10)
    by = {(e["type"], e["principal"]) for e in events.json()["events"]}
    (dispatched,) = [e for e in events.json()["events"] if e["type"] == "Dispatched"]
    assert dispatched["data"]["routed_by"] == "category:PM03"  # the suggestion, as it was
    operator, committee = "李接线员", "石油大院居委会"
    assert {
        ("Received", operator),
        ("Classified", operator),
        ("Dispatched", operator),
        ("SignedFor", committee),
        ("Attached", committee),
        ("Resolved", committee),
        ("FeedbackRecorded", operator),
    } <= by
    assert (SHOTS / "workbench-6-closed.png").stat().st_size > 10_000


def local_minute(iso: str, days: int) -> str:
    """An instant moved by ``days``, as a ``datetime-local`` input takes it (Beijing time)."""
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai"))
    return (moment + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_extension_and_escalation_in_english(
    workbench: tuple[str, dict[str, str], FakeClock],
) -> None:
    """A department asks for more time (first too early: the API's words, in English, by
    the field), the supervisor finds it in the extension queue and grants it, then escalates."""
    require_browser()
    base, tokens, _ = workbench
    staff = {"Authorization": f"Bearer {tokens['operator']}"}
    made = filed_and_dispatched(base, tokens)
    gid = made["id"]
    problems: list[str] = []
    with chromium() as browser:
        dept, sup = person(browser, problems, "en-GB"), person(browser, problems, "en-GB")

        sign_in(dept, base, f"/workbench/grievances/{gid}?lang=en", tokens["department"])
        assert dept.locator("#form-sign_for h3").inner_text() == "sign for"
        act(dept, "sign_for", "in progress")
        g = httpx.get(f"{base}/v1/grievances/{gid}", headers=staff, timeout=10).json()
        due = g["assignments"][0]["resolve_deadline"]
        dept.fill("#f-request_extension-new_deadline", local_minute(due, -1))
        dept.fill("#f-request_extension-reason", "Waiting for the electrician's spare parts.")
        dept.locator("#form-request_extension button[type=submit]").click()
        wrong = dept.locator('#form-request_extension [data-error-for="new_deadline"]')
        wrong.wait_for()
        assert "must be later than the current one" in wrong.inner_text()
        dept.fill("#f-request_extension-new_deadline", local_minute(due, 2))
        act(dept, "request_extension", "in progress")
        assert "Extension waiting for a decision" in dept.locator("#g-assignments").inner_text()
        dept.screenshot(path=str(SHOTS / "workbench-en-extension-asked.png"), full_page=True)

        sign_in(sup, base, "/workbench?lang=en", tokens["supervisor"])
        # a link's other token is offered in the form, never swapped in silently
        sup.goto(f"{base}/workbench?lang=en&token={tokens['department']}")
        expect(sup.locator("#message")).to_contain_text("the saved one was kept")
        assert "token=" not in sup.url
        saved = "localStorage.getItem('closeloop.dashboard.token')"
        assert sup.evaluate(saved) == tokens["supervisor"]
        assert sup.input_value("#token") == tokens["department"]
        wait_in_queue(sup, base, "q-extensions", made["number"], "?lang=en")
        sup.screenshot(path=str(SHOTS / "workbench-en-supervisor-queues.png"), full_page=True)
        open_from_queue(sup, "q-extensions", made["number"])
        sup.select_option("#f-decide_extension-granted", "true")
        act(sup, "decide_extension", "in progress")
        assert "Extension waiting" not in sup.locator("#g-assignments").inner_text()
        sup.select_option("#f-escalate-level", "1")
        sup.fill("#f-escalate-reason", "Two weeks without light on the stairs.")
        act(sup, "escalate", "in progress")
        sup.select_option("#f-summon-departments", ["hd.urban"])
        sup.fill("#f-summon-reason", "The wiring runs through the street's lighting mains.")
        act(sup, "summon", "in progress")
        history = sup.locator("#g-history").inner_text()
        assert "Extension granted" in history and "Escalated" in history
        sup.screenshot(path=str(SHOTS / "workbench-en-supervisor.png"), full_page=True)

        # the summoned bureau reports in (报到) from its own page
        urban = person(browser, problems, "en-GB")
        sign_in(urban, base, f"/workbench/grievances/{gid}?lang=en", tokens["urban"])
        act(urban, "report_in", "in progress")
        assert "reported in" in urban.locator("#g-assignments").inner_text()

    refused = "console.error: Failed to load resource: the server responded with a status of 422"
    assert [p for p in problems if not p.startswith(refused)] == [] and len(problems) == 1
    g = httpx.get(f"{base}/v1/grievances/{gid}", headers=staff, timeout=10).json()
    work, summoned = g["assignments"]
    assert work["extensions_granted"] == 1 and work["extension_requested"] is None
    assert (summoned["department"], summoned["state"]) == ("hd.urban", "reported_in")
    assert datetime.fromisoformat(work["resolve_deadline"]) > datetime.fromisoformat(due)
    assert g["escalation_level"] == 1


def filed_and_dispatched(base: str, tokens: dict[str, str]) -> dict[str, Any]:
    """A grievance filed, classified (PM03) and dispatched over HTTP, as set-up."""
    staff = {"Authorization": f"Bearer {tokens['operator']}"}
    made: dict[str, Any] = httpx.post(
        f"{base}/v1/grievances", json=grievance_body(text=TEXT), headers=staff, timeout=10
    ).json()
    for step, body in (("classify", {"category": "PM03"}), ("dispatch", None)):
        url = f"{base}/v1/grievances/{made['id']}/{step}"
        r = httpx.post(url, json=body, headers=staff, timeout=10)
        assert r.status_code == 200, r.text
    return made


def test_a_return_arbitrated(workbench: tuple[str, dict[str, str], FakeClock]) -> None:
    """The committee returns the case with its reason; the operator finds it among the
    returned and re-dispatches it to the street office (仲裁)."""
    require_browser()
    base, tokens, _ = workbench
    made = filed_and_dispatched(base, tokens)
    problems: list[str] = []
    with chromium() as browser:
        dept, op = person(browser, problems), person(browser, problems)
        sign_in(dept, base, f"/workbench/grievances/{made['id']}", tokens["department"])
        dept.fill("#f-return-reason", "楼道照明线路属街道统一改造范围，非居委会职责。")
        act(dept, "return", "已退单")
        assert "退单理由" in dept.locator("#g-assignments").inner_text()

        sign_in(op, base, "/workbench", tokens["operator"])
        wait_in_queue(op, base, "q-returned", made["number"])
        open_from_queue(op, "q-returned", made["number"])
        op.select_option("#f-arbitrate-decision", "redispatch")
        op.select_option("#f-arbitrate-department", "st.xueyuanlu")
        op.fill("#f-arbitrate-reason", "属街道职责")
        act(op, "arbitrate", "已派单")
        assert "学院路街道办事处" in op.locator("#g-lead").inner_text()
        assert "仲裁" in op.locator("#g-history").inner_text()
        op.screenshot(path=str(SHOTS / "workbench-arbitrated.png"), full_page=True)
    assert problems == []


def test_department_queue_due_first_overdue_in_red(
    workbench: tuple[str, dict[str, str], FakeClock],
) -> None:
    """The committee's queue: what is due first on top; a lapsed deadline in red, its time
    shown as overdue."""
    require_browser()
    base, tokens, clock = workbench
    late = filed_and_dispatched(base, tokens)
    clock.advance(days=10)  # the first one's sign-for deadline has long passed
    fresh = filed_and_dispatched(base, tokens)
    problems: list[str] = []
    with chromium() as browser:
        dept = person(browser, problems)
        sign_in(dept, base, "/workbench", tokens["department"])
        wait_in_queue(dept, base, "q-assignments", fresh["number"])
        rows = dept.locator("#q-assignments tbody tr")
        assert rows.count() == 2
        assert late["number"] in rows.nth(0).inner_text()
        assert rows.nth(0).get_attribute("class") == "late"
        assert "已超时" in rows.nth(0).inner_text()
        assert rows.nth(1).get_attribute("class") in (None, "")
        assert "剩余" in rows.nth(1).inner_text()
        red = rows.nth(0).locator("td").first.evaluate("td => getComputedStyle(td).color")
        assert red == "rgb(200, 30, 30)"  # --accent
        dept.screenshot(path=str(SHOTS / "workbench-department-queue-late.png"), full_page=True)
    assert problems == []


ARTICLE = {
    "title": "计划停水期间如何用水",
    "body": "计划停水会提前在小区公告栏通知；停水期间可到小区东门临时供水点取水，"
    "恢复供水后请先放水一分钟再饮用。",
    "keywords": ["停水", "临时供水"],
}


def test_a_consultation_answered_from_the_knowledge_base(
    workbench: tuple[str, dict[str, str], FakeClock],
) -> None:
    """A 咨询 taken at intake is answered on the call from the knowledge base and closed
    without dispatch: the answer quotes the article's revision in force."""
    require_browser()
    base, tokens, _ = workbench
    boss = {"Authorization": f"Bearer {tokens['supervisor']}"}
    made = httpx.post(f"{base}/v1/knowledge/articles", json=ARTICLE, headers=boss, timeout=10)
    assert made.status_code == 201, made.text
    article = made.json()["id"]
    approved = httpx.post(
        f"{base}/v1/knowledge/articles/{article}/approve", json={}, headers=boss, timeout=10
    )
    assert approved.status_code == 200, approved.text
    problems: list[str] = []
    with chromium() as browser:
        op = person(browser, problems)
        sign_in(op, base, "/workbench/intake", tokens["operator"])
        op.select_option("#request_type", "consultation")
        op.fill("#citizen_name", "赵敏")
        op.fill("#citizen_phone", "13700002222")
        op.fill("#text", "明天小区计划停水，停水期间去哪里取水？")
        op.select_option("#street", "xueyuanlu")
        op.press("#citizen_phone", "Enter")
        op.wait_for_url("**/workbench/grievances/**")
        # a consultation: the answer form comes first and has the focus
        op.wait_for_selector("#form-answer_at_intake:not([hidden])")
        first = op.locator("form.action:not([hidden])").first
        assert first.get_attribute("id") == "form-answer_at_intake"
        assert op.locator("#g-request-type").inner_text() == "咨询"
        expect(op.locator("#f-answer_at_intake-articles")).to_be_focused()
        for _ in range(20):  # the projector indexes the article shortly after approval
            op.fill("#f-answer_at_intake-articles", "停水")
            op.press("#f-answer_at_intake-articles", "Enter")
            hit = op.locator("#form-answer_at_intake li", has_text=ARTICLE["title"])
            if hit.count():
                break
            op.wait_for_timeout(250)
        hit.locator("input[type=checkbox]").check()
        expect(op.locator("#f-answer_at_intake-answer")).to_have_value(re.compile("临时供水点"))
        op.screenshot(path=str(SHOTS / "workbench-kb-answer.png"), full_page=True)
        act(op, "answer_at_intake", "已归档")
        assert "临时供水点" in op.locator("#g-answer").inner_text()
        assert "直接答复" in op.locator("#g-history").inner_text()
        assert op.locator("#no-actions").is_visible()
        gid = op.url.rsplit("/", 1)[-1]
    assert problems == []
    staff = {"Authorization": f"Bearer {tokens['operator']}"}
    g = httpx.get(f"{base}/v1/grievances/{gid}", headers=staff, timeout=10).json()
    assert (g["status"], g["outcome"], g["assignments"]) == ("closed", "answered_at_intake", [])
    assert g["intake_answer"]["articles"][0]["article_id"] == article
