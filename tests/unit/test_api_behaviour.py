"""Cross-cutting API behaviour: Idempotency-Key, If-Match, body limit, language, logging."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from api.problems import domain_problem
from api.stores import TokenStore
from domain.application import GrievanceApp
from domain.errors import (
    AssignmentStateError,
    CommandIdReusedError,
    ConcurrentWriteError,
    DomainError,
    GrievanceNotFoundError,
    IllegalTransitionError,
    NegativeListError,
    NotAssignedError,
    PermissionDeniedError,
    StaleVersionError,
    UnknownAssignmentError,
    ValidationError,
)
from domain.model import Actor, Role
from tests.conftest import FakeClock
from tests.support.api import ApiHarness, api_harness, grievance_body, sqlite_env


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    async with api_harness(sqlite_env(tmp_path), tmp_path, clock, max_body_bytes=4096) as h:
        yield h


def notifications(api: ApiHarness) -> int:
    return int(api.app.recorder.max_notification_id() or 0)


async def test_same_key_same_body_replays_the_first_response(api: ApiHarness) -> None:
    key = {"Idempotency-Key": "intake-0001"}
    first = await api.post("/v1/grievances", "operator", grievance_body(), **key)
    assert first.status_code == 201
    recorded = notifications(api)
    again = await api.post("/v1/grievances", "operator", grievance_body(), **key)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"] == '"1"'
    assert notifications(api) == recorded  # nothing new in the event store

    # key order in the JSON does not make it a different request
    reordered = dict(reversed(list(grievance_body().items())))
    third = await api.post("/v1/grievances", "operator", reordered, **key)
    assert third.status_code == 201 and third.json() == first.json()


async def test_same_key_different_body_or_route_is_422(api: ApiHarness) -> None:
    key = {"Idempotency-Key": "k-1"}
    first = await api.post("/v1/grievances", "operator", grievance_body(), **key)
    assert first.status_code == 201
    recorded = notifications(api)
    r = await api.post("/v1/grievances", "operator", grievance_body(text="另一件事"), **key)
    assert r.status_code == 422 and r.json()["code"] == "idempotency-key-reused"
    gid = first.json()["id"]
    r = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"}, **key)
    assert r.status_code == 422 and r.json()["code"] == "idempotency-key-reused"
    assert notifications(api) == recorded


async def test_keys_are_per_caller(api: ApiHarness) -> None:
    key = {"Idempotency-Key": "shared-key"}
    a = await api.post("/v1/grievances", "operator", grievance_body(), **key)
    b = await api.post("/v1/grievances", "open311", grievance_body(), **key)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_without_a_key_each_post_is_a_new_command(api: ApiHarness) -> None:
    a = await api.post("/v1/grievances", "operator", grievance_body())
    b = await api.post("/v1/grievances", "operator", grievance_body())
    assert a.json()["id"] != b.json()["id"]


async def test_key_becomes_the_domain_command_id(api: ApiHarness) -> None:
    """If the stored response were lost, the domain itself would still replay the command."""
    gid = (await api.new_grievance())["id"]
    key = {"Idempotency-Key": "classify-1"}
    r = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"}, **key)
    assert r.status_code == 200
    api.services.idempotency.db.execute("DELETE FROM api_idempotency")
    again = await api.post(
        f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"}, **key
    )
    assert again.status_code == 200
    assert again.json()["replayed"] is True and again.json()["version"] == r.json()["version"]
    assert len(api.app.history(uuid.UUID(gid))) == 2


async def test_a_refused_command_is_not_stored_under_its_key(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    key = {"Idempotency-Key": "dispatch-1"}
    r = await api.post(f"/v1/grievances/{gid}/dispatch", "operator", {}, **key)
    assert r.status_code == 409
    await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"})
    r = await api.post(f"/v1/grievances/{gid}/dispatch", "operator", {}, **key)
    assert r.status_code == 200 and r.json()["status"] == "dispatched"


async def test_concurrent_requests_with_one_key_run_once_and_replay(api: ApiHarness) -> None:
    """20 at once with one key: one runs; the others wait for it and replay its answer."""
    key = {"Idempotency-Key": "burst-1"}
    recorded = notifications(api)
    answers = await asyncio.gather(
        *(api.post("/v1/grievances", "operator", grievance_body(), **key) for _ in range(20))
    )
    assert [r.status_code for r in answers] == [201] * 20
    assert len({r.content for r in answers}) == 1  # byte for byte
    replayed = [r.headers.get("idempotent-replayed") for r in answers]
    assert replayed.count(None) == 1 and replayed.count("true") == 19
    assert notifications(api) == recorded + 2  # one Received, one case-number claim


async def test_a_token_revoked_elsewhere_stops_working_within_seconds(api: ApiHarness) -> None:
    token = api.token("operator")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get("/v1/categories", headers=headers)).status_code == 200
    assert api.services.tokens.cached(token) is not None  # answered without a query now
    # ``closeloop token revoke`` in another process: its own store, the same table.
    TokenStore(api.services.tokens.db).revoke(token.split("_")[1])
    deadline = time.monotonic() + api.services.tokens.ttl + 3
    while (await api.client.get("/v1/categories", headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked token still works"
        await asyncio.sleep(0.2)
    r = await api.client.get("/v1/categories", headers=headers)
    assert r.status_code == 401


async def test_bad_idempotency_key_is_422(api: ApiHarness) -> None:
    r = await api.post("/v1/grievances", "operator", grievance_body(), **{"Idempotency-Key": "a b"})
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"


async def test_if_match_stale_version_is_412_and_current_version_succeeds(
    api: ApiHarness,
) -> None:
    gid = (await api.new_grievance())["id"]
    path = f"/v1/grievances/{gid}/classify"
    r = await api.post(path, "operator", {"category": "PM03"}, **{"If-Match": '"7"'})
    assert r.status_code == 412 and r.json()["code"] == "stale-version"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(api.app.history(uuid.UUID(gid))) == 1
    etag = (await api.get(f"/v1/grievances/{gid}", "operator")).headers["etag"]
    r = await api.post(path, "operator", {"category": "PM03"}, **{"If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = await api.post(path, "operator", {"category": "PM02"}, **{"If-Match": "1"})
    assert r.status_code == 412
    r = await api.post(path, "operator", {"category": "PM02"}, **{"If-Match": "v-two"})
    assert r.status_code == 422 and r.json()["field"] == "If-Match"


async def test_if_match_on_an_assignment_command(api: ApiHarness) -> None:
    d = await api.dispatched("PM03")
    aid = d["assignments"][0]
    r = await api.post(
        f"/v1/assignments/{aid}/sign-for", "department", {}, "cm.xyl-01", **{"If-Match": "2"}
    )
    assert r.status_code == 412
    r = await api.post(
        f"/v1/assignments/{aid}/sign-for", "department", {}, "cm.xyl-01", **{"If-Match": "3"}
    )
    assert r.status_code == 200


async def test_body_too_large_is_413(api: ApiHarness) -> None:
    r = await api.post("/v1/grievances", "operator", grievance_body(text="很" * 3000))
    assert r.status_code == 413
    assert r.json()["code"] == "payload-too-large"
    assert r.headers["content-type"].startswith("application/problem+json")

    async def chunks():  # no Content-Length: counted while streaming
        for _ in range(10):
            yield b"x" * 1000

    r = await api.client.post("/v1/grievances", content=chunks(), headers=api.auth("operator"))
    assert r.status_code == 413


async def test_problem_language_defaults_to_chinese_with_english_on_request(
    api: ApiHarness,
) -> None:
    missing = f"/v1/grievances/{uuid.uuid4()}"
    zh = (await api.get(missing, "operator")).json()
    assert zh["title"] == "诉求不存在"
    en = (await api.get(missing, "operator", params={"lang": "en"})).json()
    assert en["title"] == "Grievance not found"
    r = await api.client.get(missing, headers=api.auth("operator", **{"Accept-Language": "en-GB"}))
    assert r.json()["title"] == "Grievance not found"
    gid = (await api.new_grievance())["id"]
    r = await api.client.post(
        f"/v1/grievances/{gid}/dispatch?lang=en", json={}, headers=api.auth("operator")
    )
    assert "received" in r.json()["detail"] and r.json()["title"].startswith("Not allowed")
    r = await api.client.get("/v1/categories")
    assert r.json()["title"] == "未认证"


async def test_one_log_line_per_request_without_personal_data(api: ApiHarness) -> None:
    with structlog.testing.capture_logs() as logs:
        r = await api.post(
            "/v1/grievances", "operator", grievance_body(), **{"X-Request-ID": "req-42"}
        )
        assert r.status_code == 201 and r.headers["x-request-id"] == "req-42"
        await api.get(f"/v1/grievances/{r.json()['id']}", "operator")
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 2
    first = lines[0]
    assert first["request_id"] == "req-42"
    assert first["route"] == "/v1/grievances" and first["status"] == 201
    assert first["principal"].startswith("operator-") and first["role"] == "operator"
    assert first["latency_ms"] >= 0
    assert lines[1]["route"] == "/v1/grievances/{grievance_id}"
    text = repr(logs)
    assert "13812345678" not in text and "张秀英" not in text


async def test_negative_list_dispatch_is_422(api: ApiHarness) -> None:
    gid = (await api.new_grievance())["id"]
    await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "UM01"})
    r = await api.post(f"/v1/grievances/{gid}/dispatch", "operator", {"lead": "cm.xyl-01"})
    assert r.status_code == 422 and r.json()["code"] == "negative-list"
    assert "负面清单" in r.json()["title"]
    assert len(api.app.history(uuid.UUID(gid))) == 2


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ValidationError("text-too-long", field="text", max_len=5), 422, "invalid-command"),
        (NegativeListError(category="UM01", department="cm.xyl-01"), 422, "negative-list"),
        (IllegalTransitionError("resolve", "received", ["classify"]), 409, "illegal-transition"),
        (
            AssignmentStateError("sign_for", "g.1", "signed_for", "in_progress"),
            409,
            "illegal-assignment-transition",
        ),
        (ConcurrentWriteError(), 409, "concurrent-write"),
        (CommandIdReusedError(), 409, "command-id-reused"),
        (StaleVersionError(number="N1", version=3, expected=2), 412, "stale-version"),
        (NotAssignedError(assignment_id="g.1", department="hd.urban"), 403, "not-assigned"),
        (PermissionDeniedError(action="merge", role="department"), 403, "permission-denied"),
        (GrievanceNotFoundError(grievance_id="g"), 404, "grievance-not-found"),
        (UnknownAssignmentError(assignment_id="g.9"), 404, "unknown-assignment"),
    ],
)
def test_each_domain_error_has_one_status(error: DomainError, status: int, code: str) -> None:
    for lang in ("zh", "en"):
        body = domain_problem(error, lang)  # type: ignore[arg-type]
        assert body["status"] == status and body["code"] == code
        assert body["title"] and body["detail"]
    assert domain_problem(error, "en")["detail"] != domain_problem(error, "zh")["detail"]


class RacingApp(GrievanceApp):
    """Lets another writer save the same grievance between this app's load and save."""

    race: Callable[[], None] | None = None

    def _save(self, *aggregates: Any) -> None:
        race, RacingApp.race = RacingApp.race, None
        if race is not None:
            race()
        super()._save(*aggregates)


async def test_a_concurrent_write_is_409_never_a_lost_update(
    tmp_path: Path, clock: FakeClock
) -> None:
    env = sqlite_env(tmp_path)
    async with api_harness(env, tmp_path, clock, app_class=RacingApp) as api:
        d = await api.dispatched("PM03")
        aid = d["assignments"][0]
        await api.post(f"/v1/assignments/{aid}/sign-for", "department", {}, "cm.xyl-01")
        other = GrievanceApp(env, clock=clock)

        def other_writer() -> None:
            other.report_progress(
                aid,
                Actor("dept-other-clerk", Role.DEPARTMENT, "cm.xyl-01"),
                note="另一位工作人员的阶段反馈",
            )

        RacingApp.race = other_writer
        # On a warm copy the lost race is decided again on a fresh load (as if the request
        # came a moment later); here the race hits that fresh load itself.
        api.app.warm.evict(uuid.UUID(d["id"]))
        r = await api.post(
            f"/v1/assignments/{aid}/resolve", "department", {"account": "已修复"}, "cm.xyl-01"
        )
        other.close()
        assert r.status_code == 409 and r.json()["code"] == "concurrent-write"
        history = api.app.history(uuid.UUID(d["id"]))
        assert [type(e).__name__ for e in history][-2:] == ["SignedFor", "ProgressReported"]
        r = await api.post(
            f"/v1/assignments/{aid}/resolve", "department", {"account": "已修复"}, "cm.xyl-01"
        )
        assert r.status_code == 200 and r.json()["version"] == 6
