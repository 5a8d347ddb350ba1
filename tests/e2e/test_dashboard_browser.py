"""The dashboard in headless Chromium: loads cleanly and shows the API's own KPI figures.

A real uvicorn server (in a thread, on a free port) serves the app built by the API's
factory over SQLite read models filled by the scenario; Debian's ``chromium`` is driven
by Playwright. The screenshot lands in ``var/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from domain.application import GrievanceApp
from projections.runner import catch_up
from tests.conftest import IN_CI, OPERATOR, FakeClock, make_grievance
from tests.support.api import build_services
from tests.support.browser import SHOTS, chromium, require_browser, serving, watch
from tests.support.evidence import jpeg
from tests.support.projections import run_scenario, sqlite_env

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "api" / "static" / "vendor" / "chart.umd.min.js"


def pct(rate: float | None) -> str:
    """The page's own formatting of a rate (dashboard.js ``pct``)."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = sqlite_env(tmp_path)
    clock = FakeClock()
    app = GrievanceApp(env, clock=clock)
    try:
        run_scenario(app, clock)
        consultation = make_grievance(app, request_type="consultation")
        app.answer_at_intake(consultation, OPERATOR, answer="已电话答复。")  # 直办
    finally:
        app.close()
    catch_up(env)
    fastapi_app = create_app(lambda: build_services(env, tmp_path, clock))
    with serving(fastapi_app) as base:
        services = fastapi_app.state.services
        tokens = {
            "supervisor": services.tokens.create("supervisor", name="督办-王")[1],
            "department": services.tokens.create(
                "department", department="hd.enforcement", name="执法局"
            )[1],
        }
        yield base, tokens


def attach_a_photo(base: str, tokens: dict[str, str]) -> int:
    """A supervisor attaches a photo to a grievance in the department's queue; its row."""
    own = {"Authorization": f"Bearer {tokens['department']}"}
    staff = {"Authorization": f"Bearer {tokens['supervisor']}"}
    items = httpx.get(f"{base}/v1/assignments?limit=100", headers=own, timeout=10).json()["items"]
    for row, item in enumerate(items):
        r = httpx.post(
            f"{base}/v1/grievances/{item['grievance_id']}/attachments",
            files={"file": ("现场.jpg", jpeg(), "image/jpeg")},
            headers=staff,
            timeout=10,
        )
        if r.status_code == 200:
            return row
    raise AssertionError("no grievance of the queue accepts an attachment")


def test_dashboard_in_chromium(server: tuple[str, dict[str, str]]) -> None:
    require_browser(VENDORED)

    base, tokens = server
    token = tokens["supervisor"]
    api = httpx.get(f"{base}/v1/kpis", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert api.status_code == 200, api.text
    kpis: list[dict[str, Any]] = api.json()["items"]
    intake: dict[str, Any] = api.json()["intake"]
    assert {k["department"] for k in kpis} >= {"hd.enforcement", "hd.market"}

    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1400}, locale="zh-CN")
        watch(page, problems)
        page.goto(f"{base}/dashboard?token={token}")
        page.wait_for_selector("body[data-loaded]", timeout=15000)
        assert "token=" not in page.url  # the token left the address bar
        assert page.title() == "接诉即办 · 闭环看板"
        assert page.evaluate("typeof window.Chart") == "function"

        for k in kpis:
            row = page.locator(f'#kpi-table tr[data-department="{k["department"]}"]')
            shown = {
                key: row.locator(f'td[data-kpi="{key}"]').inner_text()
                for key in (
                    "dispatched",
                    "response_rate",
                    "resolution_rate",
                    "satisfaction_rate",
                    "overdue",
                )
            }
            assert shown == {
                "dispatched": str(k["dispatched"]),
                "response_rate": pct(k["response_rate"]),
                "resolution_rate": pct(k["resolution_rate"]),
                "satisfaction_rate": pct(k["satisfaction_rate"]),
                "overdue": str(k["overdue"]),
            }, k["department"]
        overdue_rows = page.locator("#overdue-table tbody tr.late")
        assert overdue_rows.count() >= 1
        assert page.locator("#hotspot-table tbody tr").count() == 2
        direct = page.locator("#direct-answer-table")
        total = direct.locator('tr[data-request-type="total"] td[data-kpi]').last
        assert total.inner_text() == pct(intake["direct_answer_rate"])
        consult = direct.locator('tr[data-request-type="consultation"]')
        assert consult.locator("td").first.inner_text() == "咨询"
        assert consult.locator('td[data-kpi="direct_answer_rate"]').inner_text() == "100.0%"
        # 排名 of this month's district bureaus: the API's lines, ranked ones first.
        month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        ranks = httpx.get(
            f"{base}/v1/rankings",
            params={"period": month, "level": "bureau"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        lines = [*ranks["ranked"], *ranks["below_minimum"]]
        shown = page.locator("#ranking-bureau-table tbody tr")
        assert shown.count() == len(lines) > 0
        assert shown.first.get_attribute("data-department") == lines[0]["department"]
        page.screenshot(path=str(SHOTS / "dashboard-supervisor.png"), full_page=True)

        page.click('#tabs button[data-tab="operator"]')
        assert page.locator("#callback-table tbody tr").count() == 1
        page.screenshot(path=str(SHOTS / "dashboard-operator.png"), full_page=True)

        # English, and a department's own queue with its token.
        page.evaluate("window.closeloopDashboard.stop()")
        page.goto(f"{base}/dashboard?lang=en&token={tokens['department']}")
        # A link's other token is offered, not swapped in: the saved one stays until
        # the user takes the link's.
        page.wait_for_selector("#token-offer:not([hidden])", timeout=15000)
        page.wait_for_selector("body[data-loaded]", timeout=15000)
        saved = "localStorage.getItem('closeloop.dashboard.token')"
        assert page.evaluate(saved) == token
        assert "token=" not in page.url
        page.click("#token-offer-use")
        page.wait_for_selector('body[data-loaded="2"]', timeout=15000)  # refreshed
        assert page.evaluate(saved) == tokens["department"]
        assert page.locator("#token-offer").is_hidden()
        assert page.locator("h1").inner_text() == "12345 grievance loop · dashboard"
        assert page.locator('#tabs button[data-tab="supervisor"]').is_hidden()
        queue = page.locator("#assignment-table tbody tr")
        assert queue.count() == 3
        own_rank = page.locator("#ranking-own-table tbody tr")  # its own line only
        assert own_rank.count() == 1
        assert own_rank.first.get_attribute("data-department") == "hd.enforcement"
        # A grievance's view from its case number: its attachments, thumbnails inline.
        photo = attach_a_photo(base, tokens)
        queue.nth(photo).locator("a.number").click()
        page.wait_for_selector("#attachment-table img.thumb[src^='blob:']", timeout=10000)
        assert page.locator("#attachment-table tbody tr").count() == 1
        assert page.locator("#grievance h3").inner_text() == "Attachments and evidence"
        page.screenshot(path=str(SHOTS / "dashboard-department-en.png"), full_page=True)
    assert problems == []
    assert (SHOTS / "dashboard-supervisor.png").stat().st_size > 10_000


def test_dashboard_static_files_stay_inside_static_dir(
    server: tuple[str, dict[str, str]],
) -> None:
    base, _ = server
    assert httpx.get(f"{base}/dashboard/static/dashboard.js").status_code == 200
    outside = httpx.get(f"{base}/dashboard/static/..%2F..%2Fpyproject.toml")
    assert outside.status_code == 404
    assert outside.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(f"{base}/dashboard/data/me").status_code == 401


def test_chromium_is_installed_by_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install -y -qq chromium" in ci
    assert shutil.which("chromium") or not IN_CI
