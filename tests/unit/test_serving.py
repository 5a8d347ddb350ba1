"""``closeloop api``'s uvicorn settings against its clients' and proxies' (issue 22): on
every hop the client side closes idle connections before the server side does, and the
graceful shutdown fits in the orchestrators' grace periods."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from closeloop.serving import LoggedH11Protocol, uvicorn_options
from closeloop.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_api_keeps_idle_connections_longer_than_httpx_and_nginx() -> None:
    options = uvicorn_options(Settings())
    assert options["http"] is LoggedH11Protocol
    httpx_expiry = httpx.Limits().keepalive_expiry
    assert httpx_expiry is not None and options["timeout_keep_alive"] > httpx_expiry

    conf = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream closeloop_api \{(.*?)\}", conf, re.S)
    assert upstream is not None
    nginx_idle = re.search(r"^\s*keepalive_timeout\s+(\d+)s;", upstream.group(1), re.M)
    assert nginx_idle is not None, "set keepalive_timeout in the upstream block explicitly"
    assert int(nginx_idle.group(1)) < options["timeout_keep_alive"]


def test_the_graceful_shutdown_fits_the_grace_periods() -> None:
    graceful = uvicorn_options(Settings())["timeout_graceful_shutdown"]
    manifest = (DEPLOY / "k8s" / "api.yaml").read_text(encoding="utf-8")
    grace = re.search(r"terminationGracePeriodSeconds:\s*(\d+)", manifest)
    pre_stop = re.search(r'command:\s*\["sleep",\s*"(\d+)"\]', manifest)
    assert grace is not None and pre_stop is not None
    assert int(pre_stop.group(1)) + graceful < int(grace.group(1))
    assert graceful < 10  # compose's default stop grace and closeloop up's stop timeout


def test_the_settings_can_be_changed_per_deployment() -> None:
    options = uvicorn_options(Settings(api_keep_alive=120, api_graceful_timeout=20))
    assert options["timeout_keep_alive"] == 120
    assert options["timeout_graceful_shutdown"] == 20
