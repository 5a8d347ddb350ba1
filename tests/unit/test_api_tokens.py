"""Bearer tokens: stored only as hashes, revocable, managed by ``closeloop token``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.stores import (
    DuplicateTokenNameError,
    IdempotencyStore,
    SqliteDatabase,
    TokenStore,
    hash_token,
)
from closeloop.cli import main
from closeloop.settings import get_settings


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(SqliteDatabase(tmp_path / "api.sqlite"))


def test_token_is_returned_once_and_stored_only_as_its_hash(
    store: TokenStore, tmp_path: Path
) -> None:
    record, token = store.create("department", department="hd.urban", name="城管委")
    assert token.startswith(f"cl_{record.id}_")
    assert store.authenticate(token) == record
    with sqlite3.connect(tmp_path / "api.sqlite") as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump and token.split("_", 2)[2] not in dump
    assert hash_token(token) in dump


def test_wrong_secret_unknown_id_and_garbage_do_not_authenticate(store: TokenStore) -> None:
    record, token = store.create("operator")
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.authenticate(f"cl_ffffffffffff_{token.split('_', 2)[2]}") is None
    for garbage in ("", "cl", "cl__", "Bearer x", "cl_" + record.id + "_"):
        assert store.authenticate(garbage) is None


def test_revoke_by_id_or_unique_prefix(store: TokenStore) -> None:
    first, token = store.create("supervisor", name="督办科")
    revoked = store.revoke(first.id[:6])
    assert revoked.revoked_at is not None and not revoked.active
    assert store.authenticate(token) is None
    assert store.revoke(first.id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(LookupError):
        store.revoke("zzzz")
    with pytest.raises(LookupError):
        store.revoke("")


def test_role_and_department_rules(store: TokenStore) -> None:
    with pytest.raises(ValueError):
        store.create("department")
    with pytest.raises(ValueError):
        store.create("operator", department="hd.urban")
    with pytest.raises(ValueError):
        store.create("system")
    record, _ = store.create("open311", name="wechat-miniapp")
    assert record.role == "open311" and record.name == "wechat-miniapp"
    assert [r.id for r in store.list()] == [record.id]


def test_idempotency_store_keeps_the_first_response(tmp_path: Path) -> None:
    store = IdempotencyStore(SqliteDatabase(tmp_path / "api.sqlite"))
    assert store.get("scope", "k") is None
    store.put("scope", "k", "fp1", 201, "application/json", '{"a":"受理"}'.encode())
    store.put("scope", "k", "fp2", 200, "application/json", b"{}")
    kept = store.get("scope", "k")
    assert kept is not None and kept.fingerprint == "fp1" and kept.status == 201
    assert kept.body.decode() == '{"a":"受理"}'
    assert store.get("other-scope", "k") is None


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CLOSELOOP_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_cli_create_list_revoke(var_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "token",
                "create",
                "--role",
                "department",
                "--department",
                "hd.urban",
                "--name",
                "城管委",
                "--json",
            ]
        )
        == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["role"] == "department" and created["token"].startswith("cl_")
    store = TokenStore(SqliteDatabase(var_dir / "api.sqlite"))
    assert store.authenticate(created["token"]) is not None

    assert main(["token", "create", "--role", "operator"]) == 0
    out = capsys.readouterr()
    plain = out.out.strip()
    assert plain.startswith("cl_") and "仅显示这一次" in out.err

    assert main(["token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["role"] for r in listed} == {"department", "operator"}
    assert all("token" not in r and "token_hash" not in r for r in listed)

    assert main(["token", "revoke", created["id"][:8]]) == 0
    assert "已吊销" in capsys.readouterr().out
    assert store.authenticate(created["token"]) is None
    assert store.authenticate(plain) is not None

    assert main(["token", "revoke", "nope"]) == 1
    assert main(["token", "create", "--role", "department", "--department", "no.such"]) == 2
    assert main(["token", "create", "--role", "department"]) == 2
    assert main(["token", "list"]) == 0
    assert "城管委" in capsys.readouterr().out


def test_idempotency_responses_expire(tmp_path: Path) -> None:
    store = IdempotencyStore(SqliteDatabase(tmp_path / "api.sqlite"), retention=timedelta(0))
    store.put("scope", "k", "fp1", 201, "application/json", b"{}")
    assert store.get("scope", "k") is None  # past retention: a new request
    store.put("scope", "k", "fp2", 200, "application/json", b"[]")
    store.purge((datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    assert store.db.execute("SELECT COUNT(*) FROM api_idempotency") == [(0,)]


def test_a_table_from_before_the_headers_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE api_idempotency (scope TEXT NOT NULL, idem_key TEXT NOT NULL, "
            "fingerprint TEXT NOT NULL, status INTEGER NOT NULL, content_type TEXT NOT NULL, "
            "body TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (scope, idem_key))"
        )
    store = IdempotencyStore(SqliteDatabase(path))
    store.put("s", "k", "fp", 201, "application/json", b"{}", [("etag", '"1"')])
    kept = store.get("s", "k")
    assert kept is not None and kept.headers == (("etag", '"1"'),)
    SqliteDatabase(path)  # opening again leaves it alone


def test_tokens_get_unique_client_ids_and_duplicate_names_are_refused(
    store: TokenStore,
) -> None:
    first, _ = store.create("open311", name="fixmystreet", same_client=False)
    second, _ = store.create("open311", name="seeclickfix", same_client=False)
    assert first.client_id and first.client_id != second.client_id
    with pytest.raises(DuplicateTokenNameError) as taken:
        store.create("open311", name="fixmystreet", same_client=False)
    assert taken.value.joinable
    rotated, token = store.create("open311", name="fixmystreet", same_client=True)
    assert rotated.client_id == first.client_id and rotated.id != first.id
    assert store.authenticate(token) == rotated
    with pytest.raises(DuplicateTokenNameError) as other_role:
        store.create("operator", name="fixmystreet", same_client=True)
    assert not other_role.value.joinable
    # Programs that do not say anything get a new client, whatever the name.
    assert store.create("open311", name="fixmystreet")[0].client_id not in {
        first.client_id,
        second.client_id,
    }
    store.revoke(first.id)
    store.revoke(rotated.id)


def test_cli_refuses_a_duplicate_name_unless_same_client(
    var_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["token", "create", "--role", "open311", "--name", "fixmystreet", "--json"]
    assert main(create) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(create) == 2
    assert "fixmystreet" in capsys.readouterr().err
    assert main([*create, "--same-client"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["client_id"] == first["client_id"] and second["id"] != first["id"]
    assert main(["token", "create", "--role", "operator", "--same-client"]) == 2
    assert "--name" in capsys.readouterr().err


def test_tokens_from_before_client_ids_are_their_own_client(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "old.sqlite")
    _, token = TokenStore(db).create("open311", name="old")
    db.execute("ALTER TABLE api_tokens DROP COLUMN client_id")  # as the table was
    db.close()
    record = TokenStore(SqliteDatabase(tmp_path / "old.sqlite")).authenticate(token)
    assert record is not None and record.client_id == record.id
