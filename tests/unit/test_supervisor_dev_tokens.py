"""``closeloop up``'s dev tokens: created once, reused on restart, replaced if revoked;
and the command's refusal of a busy ``--port``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from api.stores import TokenStore
from closeloop.api_wiring import api_database
from closeloop.cli import main
from closeloop.commands.up import ready_line
from closeloop.dev.embedded import (
    DEV_TOKEN_DEPARTMENTS,
    StackConfig,
    StackPorts,
    ensure_dev_tokens,
)
from closeloop.settings import Settings


def roles(settings: Settings, tokens: dict[str, object]) -> dict[str, tuple[str, str | None]]:
    db = api_database(settings)
    try:
        store = TokenStore(db)
        flat = {"operator": tokens["operator"], "supervisor": tokens["supervisor"]}
        flat.update(tokens["departments"])  # type: ignore[arg-type]
        out = {}
        for who, token in flat.items():
            record = store.authenticate(str(token))
            assert record is not None, who
            out[who] = (record.role, record.department)
        return out
    finally:
        db.close()


def test_tokens_are_created_once_and_reused(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = ensure_dev_tokens(settings)
    assert roles(settings, first) == {
        "operator": ("operator", None),
        "supervisor": ("supervisor", None),
        **{code: ("department", code) for code in DEV_TOKEN_DEPARTMENTS},
    }
    saved = json.loads((tmp_path / "dev-tokens.json").read_text())
    assert saved == first
    assert (tmp_path / "dev-tokens.json").stat().st_mode & 0o077 == 0
    assert ensure_dev_tokens(settings) == first  # a restart reuses them


def test_a_revoked_token_is_replaced(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = ensure_dev_tokens(settings)
    db = api_database(settings)
    try:
        record = TokenStore(db).authenticate(first["operator"])
        assert record is not None
        TokenStore(db).revoke(record.id)
    finally:
        db.close()
    second = ensure_dev_tokens(settings)
    assert second["operator"] != first["operator"]
    assert second["supervisor"] == first["supervisor"]
    assert roles(settings, second)["operator"] == ("operator", None)


def test_ready_line_has_the_urls_and_every_token(tmp_path: Path) -> None:
    ports = StackPorts(
        api=8001, temporal=7234, temporal_http=8234, temporal_ui=8235, temporal_metrics=9000
    )
    config = StackConfig(var_dir=tmp_path, ports=ports)
    tokens = {"operator": "op-t", "supervisor": "sup-t", "departments": {"st.x": "d-t"}}
    line = ready_line(config, tokens)
    assert "\n" not in line
    for part in (
        "http://127.0.0.1:8001/docs",
        "http://127.0.0.1:8001/dashboard",
        "工作台 http://127.0.0.1:8001/workbench",
        "http://127.0.0.1:8235",
        "op-t",
        "sup-t",
        "st.x d-t",
        "dev-tokens.json",
    ):
        assert part in line


def test_up_refuses_a_busy_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path))
    from closeloop.settings import get_settings

    get_settings.cache_clear()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        try:
            assert main(["up", "--port", str(port)]) == 2
        finally:
            get_settings.cache_clear()
    assert f"{port}" in capsys.readouterr().err
