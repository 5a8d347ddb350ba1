"""The workbench's pages: catalogue words, no inline script, CSP, the API's own command
routes, and the routing suggestion (a read of the domain's routing policy)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from api.catalogue import messages
from tests.support.api import ApiHarness, sqlite_api

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("/workbench", "/workbench/intake", "/workbench/grievances/{gid}")


def boot_of(page: str) -> dict[str, Any]:
    raw = re.search(r'<script id="boot" type="application/json">(.*?)</script>', page, re.S)
    assert raw is not None
    data: dict[str, Any] = json.loads(raw.group(1))
    return data


async def test_pages_carry_words_and_no_inline_script(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    for path in PAGES:
        r = await api.client.get(path.format(gid=gid))
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"  # the API's own headers too
        page = r.text
        # The only <script> with content is the JSON data block; code comes from files.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert [a for a, body in scripts if body.strip()] == [' id="boot" type="application/json"']
        assert all('type="module" src="/workbench/static/' in a for a, body in scripts if not body)
        assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
        assert not re.search(r"""(src|href)=["']?https?:""", page)  # nothing from elsewhere
        assert 'lang="zh-CN"' in page and "接诉即办 · 工作台" in page
    en = (await api.client.get("/workbench/intake", params={"lang": "en"})).text
    assert "12345 grievance loop · workbench" in en and 'lang="en"' in en
    assert not re.search(r"[\u4e00-\u9fff]", en.split('<script id="boot"')[0])


async def test_every_form_posts_to_a_command_route_of_the_api(api: ApiHarness) -> None:
    page = (await api.client.get(f"/workbench/grievances/{(await api.new_grievance())['id']}")).text
    boot = boot_of(page)
    commands = boot["commands"]
    actions = re.findall(r'<form class="action" id="form-([a-z_]+)"', page)
    assert len(actions) == 19
    for action in actions:
        assert commands[action]["path"].startswith("/v1/"), action
    assert commands["sign_for"] == {
        "path": "/v1/assignments/{assignment_id}/sign-for",
        "roles": ["department"],
    }
    assert commands["record_feedback"]["path"] == "/v1/grievances/{grievance_id}/feedback"
    # Every word the scripts read is in both languages.
    used = set()
    for script in (ROOT / "api" / "static" / "workbench").glob("*.js"):
        used |= set(re.findall(r"\bS\.([a-z_]+)", script.read_text(encoding="utf-8")))
    for lang in ("zh", "en"):
        assert {f"workbench.{k}" for k in used} <= set(messages(lang)), lang


async def test_static_files_are_served_from_the_package(api: ApiHarness) -> None:
    for name in ("core.js", "queues.js", "intake.js", "grievance.js", "workbench.css"):
        r = await api.client.get(f"/workbench/static/{name}")
        assert r.status_code == 200, name
    assert (await api.client.get("/workbench/static/..%2F..%2Fworkbench.py")).status_code == 404


async def test_routing_suggestion_is_what_dispatch_would_do(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    path = f"/workbench/data/grievances/{gid}/routing"
    r = await api.get(path, "operator")
    assert r.status_code == 200 and r.json() == {"lead": "", "assisting": [], "rule": ""}
    await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM02"})
    suggestion = (await api.get(path, "operator")).json()
    assert suggestion == {
        "lead": "st.xueyuanlu",
        "assisting": ["hd.housing"],
        "rule": "category:PM02",
    }
    dispatched = (await api.post(f"/v1/grievances/{gid}/dispatch", "operator")).json()
    g = (await api.get(f"/v1/grievances/{gid}", "operator")).json()
    assert dispatched["status"] == "dispatched"
    assert {(a["department"], a["role"]) for a in g["assignments"]} == {
        ("st.xueyuanlu", "lead"),
        ("hd.housing", "assisting"),
    }
    assert (await api.get(path, "department", "hd.housing")).status_code == 403
    assert (await api.client.get(path)).status_code == 401


def test_the_workbench_module_holds_no_words_of_its_own() -> None:
    from tests.unit.test_catalogue import CJK, _string_literals

    assert [s for s in _string_literals(ROOT / "api" / "workbench.py") if CJK.search(s)] == []
    for script in (ROOT / "api" / "static" / "workbench").glob("*.js"):
        code = "\n".join(
            line
            for line in script.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("//")
        )
        assert not CJK.search(code), script.name


__all__ = ["sqlite_api"]  # the ``api`` fixture
