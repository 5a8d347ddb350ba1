"""Issue 15: security headers on every answer, ``no-store`` on personal data, and pages whose
scripts and styles all come from this origin (the API docs included), none inline."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.api import ApiHarness, sqlite_api


def assert_secured(r: httpx.Response) -> None:
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


async def test_every_kind_of_answer_carries_the_security_headers(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    answers = [
        await api.client.get("/dashboard"),
        await api.client.get("/docs"),
        await api.client.get("/redoc"),
        await api.client.get("/openapi.json"),
        await api.client.get("/dashboard/static/dashboard.js"),
        await api.client.get("/docs/assets/swagger-ui.css"),
        await api.client.get("/healthz"),
        await api.client.get("/open311/v2/discovery.xml"),
        await api.get(f"/v1/grievances/{gid}", "operator"),
        await api.get(f"/v1/audit/grievances/{gid}/casefile", "supervisor"),
        await api.client.get("/v1/grievances"),  # 401
        await api.client.get("/nowhere"),  # 404
        await api.client.post("/v1/grievances", content=b"x" * 100_000),  # 413
    ]
    assert [r.status_code for r in answers] == [200] * 10 + [401, 404, 413]
    for r in answers:
        assert_secured(r)


async def test_personal_data_is_never_stored_by_a_cache(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    api.catch_up()
    personal = [
        await api.get(f"/v1/grievances/{gid}", "operator"),
        await api.get("/v1/grievances", "operator"),
        await api.get(f"/v1/audit/grievances/{gid}/events", "supervisor"),
        await api.get(f"/v1/audit/grievances/{gid}/casefile", "supervisor"),
        await api.post("/v1/grievances", "operator", {"channel": "hotline"}),  # 422
        await api.client.get("/dashboard"),
    ]
    for r in personal:
        assert r.headers["cache-control"] == "no-store", (r.request.url, r.status_code)
    # Static files keep their own rule (revalidate), once: nothing added to it.
    static = await api.client.get("/dashboard/static/dashboard.js")
    assert static.headers.get_list("cache-control") == ["no-cache"]


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
_REFERENCE = re.compile(r"""\b(?:src|href)=["']([^"']+)["']""", re.I)


@pytest.mark.parametrize("path", ["/dashboard", "/docs", "/redoc", "/dashboard?lang=en"])
async def test_pages_load_only_this_origins_scripts_and_no_inline_one(
    api: ApiHarness, path: str
) -> None:
    page = (await api.client.get(path)).text
    assert _INLINE_SCRIPT.findall(page) == []
    references = _REFERENCE.findall(page)
    assert references, "the page loads its scripts and styles"
    for ref in references:
        assert ref.startswith(("/", "#", "?", "data:")), ref
        if ref.startswith("/"):
            assert (await api.client.get(ref)).status_code == 200, ref


async def test_the_api_docs_serve_the_packaged_viewers(api: ApiHarness) -> None:
    swagger = (await api.client.get("/docs")).text
    assert 'data-openapi-url="/openapi.json"' in swagger
    bundle = await api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.content
    redoc = await api.client.get("/docs/assets/redoc.standalone.js")
    assert redoc.status_code == 200 and len(redoc.content) > 100_000
    assert '<redoc spec-url="/openapi.json">' in (await api.client.get("/redoc")).text
    spec = (await api.client.get("/openapi.json")).json()
    assert "/docs" not in spec["paths"]
    created = spec["paths"]["/v1/grievances"]["post"]["responses"]
    assert created["429"]["content"]["application/problem+json"]


async def test_the_dashboard_offers_a_links_token_instead_of_replacing_the_saved_one(
    api: ApiHarness,
) -> None:
    """The script keeps a saved token and asks (``#token-offer``); its words are the
    catalogue's. (Driven in Chromium by tests/e2e/test_dashboard_browser.py.)"""
    script = (await api.client.get("/dashboard/static/dashboard.js")).text
    assert "if (offered && !token()) localStorage.setItem(TOKEN_KEY, offered);" in script
    assert "offerToken(offered)" in script
    page = (await api.client.get("/dashboard", params={"lang": "en"})).text
    assert 'id="token-offer"' in page and 'data-s="token_offer_use"' in page
    assert "Keep the saved token" in page  # boot's strings, from the catalogue


__all__ = ["sqlite_api"]  # the ``api`` fixture
