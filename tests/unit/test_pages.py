"""Pages from templates: the case file and the dashboard shell escape what people typed."""

from __future__ import annotations

import json
import re

from tests.support.api import ApiHarness, sqlite_api

ATTACK = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def test_the_case_file_escapes_citizen_text_and_reasons(api: ApiHarness) -> None:
    gid = (await api.new_grievance(text=f"楼道堆物 {ATTACK}", citizen_name="<b>张</b>"))["id"]
    r = await api.post(f"/v1/grievances/{gid}/reject", "operator", {"reason": f"重复 {ATTACK}"})
    assert r.status_code == 200, r.text
    for lang in ("zh", "en"):
        r = await api.get(f"/v1/audit/grievances/{gid}/casefile", "operator", params={"lang": lang})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        page = r.text
        assert "<script>" not in page and "<img" not in page and "<b>" not in page
        assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 2  # text, reason
        assert "&lt;b&gt;张&lt;/b&gt;" in page
        assert "@media print" in page and not re.search(r"""(src|href)=["']?https?:""", page)
    zh = (await api.get(f"/v1/audit/grievances/{gid}/casefile", "supervisor")).text
    assert 'lang="zh-CN"' in zh and "不予受理" in zh and "12345 热线" in zh
    en = (await api.get(f"/v1/audit/grievances/{gid}/casefile?lang=en", "supervisor")).text
    assert 'lang="en"' in en and "Rejected" in en and "12345 hotline" in en


async def test_the_dashboard_shell_carries_its_words_as_json(api: ApiHarness) -> None:
    r = await api.client.get("/dashboard")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    page = r.text
    assert 'lang="zh-CN"' in page and "<title>接诉即办 · 闭环看板</title>" in page
    raw = re.search(r'<script id="boot" type="application/json">(.*?)</script>', page, re.S)
    assert raw is not None
    boot = json.loads(raw.group(1))
    assert boot["strings"]["title"] == "接诉即办 · 闭环看板"
    assert boot["terms"]["kind"]["redispatch"] == "改派时限"
    assert boot["terms"]["state"]["dispatched"] == "待签收"
    assert boot["terms"]["status"]["dispatched"] == "已派单"
    assert boot["terms"]["request_type"]["consultation"] == "咨询"
    assert boot["strings"]["direct_answer_rate"] == "直办率"
    assert 'id="direct-answer-table"' in page
    assert boot["departments"]["hd.housing"] == "区住房和城乡建设委员会"
    en = (await api.client.get("/dashboard", params={"lang": "en"})).text
    assert "<title>12345 grievance loop · dashboard</title>" in en


async def test_static_files_are_served_and_stay_inside_their_directory(api: ApiHarness) -> None:
    r = await api.client.get("/dashboard/static/dashboard.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert "javascript" in r.headers["content-type"]
    assert (await api.client.get("/dashboard/static/vendor/chart.umd.min.js")).status_code == 200
    for path in ("..%2F..%2Fpyproject.toml", "../casefile.py", "nope.js"):
        r = await api.client.get(f"/dashboard/static/{path}")
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "not-found"


async def test_the_dashboard_data_routes_take_their_window(api: ApiHarness) -> None:
    r = await api.get("/dashboard/data/trend", "supervisor", params={"weeks": 3})
    assert r.status_code == 200, r.text
    assert r.json()["weeks"] == 3 and len(r.json()["items"]) == 3
    r = await api.get("/dashboard/data/hotspots", "operator", params={"weeks": 2, "limit": 5})
    assert r.status_code == 200 and r.json()["weeks"] == 2, r.text
    r = await api.get("/dashboard/data/trend", "supervisor", params={"weeks": 0})
    assert r.status_code == 422 and r.json()["field"] == "weeks"
    assert (await api.get("/dashboard/data/trend", "operator")).status_code == 403


__all__ = ["sqlite_api"]  # the ``api`` fixture
