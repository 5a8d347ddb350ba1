"""/docs (Swagger UI) and /redoc (ReDoc) in headless Chromium under the API's
Content-Security-Policy: they render, load nothing from another origin, and break no
rule of the policy (which forbids inline script). ReDoc's sidebar always asks for a
"powered by" logo on its vendor's CDN: the policy refuses it, so it never leaves the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from tests.conftest import FakeClock
from tests.support.api import build_services, sqlite_env
from tests.support.browser import chromium, require_browser, serving, watch


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("docs")
    app = create_app(lambda: build_services(sqlite_env(tmp), tmp, FakeClock()))
    with serving(app) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".opblock-summary-path"), ("/redoc", "[role=menuitem]")],
)
def test_api_docs_render_from_this_origin_under_the_csp(
    base: str, path: str, rendered: str
) -> None:
    require_browser()
    problems: list[str] = []
    reached: list[str] = []  # another origin, answered
    with chromium() as browser:
        page = watch(browser.new_page(), problems)
        page.on(
            "requestfinished",
            lambda r: None if r.url.startswith((base, "data:", "blob:")) else reached.append(r.url),
        )
        response = page.goto(f"{base}{path}")
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector(rendered, timeout=20000)
        assert page.locator(rendered).count() > 10  # the operations are listed
    assert reached == []
    refused = [m for m in problems if "Content Security Policy" in m or "pageerror" in m]
    assert [m for m in refused if "logo-mini.svg" not in m] == []
