"""Issue 15: authentication before idempotency, and rate limits with ``Retry-After``.

Idempotency-Keys live in the scope of the token's id: a revoked token replays nothing, and
a request without a valid credential has no idempotency at all. Rate limits (``limits``)
count per client address, per token, failed credentials per address, and an Open311
client's filings; their 429 is problem+json (Open311: its own error format).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from api.keyclaims import KeyClaims
from api.ratelimit import Bucket, RateLimiter, RatePolicy
from api.stores import SqliteDatabase
from closeloop.api_wiring import rate_limiter
from closeloop.settings import Settings
from tests.conftest import FakeClock, backend_env
from tests.support.api import ApiHarness, api_harness, grievance_body, sqlite_api

# The limiter counts in sliding windows aligned to the clock's minutes, which weigh the
# previous minute's count by what is left of it: a test whose requests straddle a minute
# boundary would see a limit admit one more. Start each away from the boundary.
QUIET_BEFORE_MINUTE = 15.0


def limit(api: ApiHarness, **rates: str) -> RateLimiter:
    into_minute = time.time() % 60
    if into_minute > 60 - QUIET_BEFORE_MINUTE:
        time.sleep(60 - into_minute + 0.05)
    limiter = RateLimiter(RatePolicy(**rates))
    api.services.rate_limits = limiter
    return limiter


def received(api: ApiHarness) -> int:
    return sum(type(e).__name__ == "Received" for e in api.app.iter_all_events())


# ------------------------------------------------------------- idempotency after auth


async def test_a_revoked_token_replaying_a_stored_key_is_401(api: ApiHarness) -> None:
    key = {"Idempotency-Key": "revoked-1"}
    first = await api.post("/v1/grievances", "operator", grievance_body(), **key)
    assert first.status_code == 201
    api.services.tokens.revoke(api.token("operator").split("_")[1])
    again = await api.post("/v1/grievances", "operator", grievance_body(), **key)
    assert again.status_code == 401, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json()["code"] == "unauthorized"


async def test_keys_are_kept_under_the_token_id(api: ApiHarness) -> None:
    key = "scoped-1"
    r = await api.post("/v1/grievances", "operator", grievance_body(), **{"Idempotency-Key": key})
    assert r.status_code == 201
    token_id = api.token("operator").split("_")[1]
    assert api.services.idempotency.get(token_id, key) is not None
    rows = api.services.idempotency.db.execute("SELECT scope FROM api_idempotency")
    assert rows == [(token_id,)]


async def test_without_a_valid_credential_there_is_no_shared_scope(api: ApiHarness) -> None:
    """Nobody can probe whether a key was used: without a credential nothing is stored or
    replayed, and the answer is the route's 401."""
    key = {"Idempotency-Key": "probe-1"}
    for headers in ({}, {"Authorization": "Bearer cl_nope_nope"}):
        for _ in range(2):
            r = await api.client.post(
                "/v1/grievances", json=grievance_body(), headers=headers | key
            )
            assert r.status_code == 401 and "idempotent-replayed" not in r.headers
    assert api.services.idempotency.db.execute("SELECT count(*) FROM api_idempotency") == [(0,)]


async def test_an_open311_key_scopes_its_idempotency_keys_too(api: ApiHarness) -> None:
    key = api.token("open311")
    form = open311_form(key)
    headers = {"Idempotency-Key": "o311-1"}
    first = await api.client.post("/open311/v2/requests.json", data=form, headers=headers)
    again = await api.client.post("/open311/v2/requests.json", data=form, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert api.services.idempotency.get(key.split("_")[1], "o311-1") is not None
    # The same key as HTTP Basic's password: the same client, the same scope.
    basic = await api.client.post(
        "/open311/v2/requests.json",
        data={k: v for k, v in form.items() if k != "api_key"},
        headers={"Idempotency-Key": "o311-basic"},
        auth=("open311", key),
    )
    assert basic.status_code == 201
    assert api.services.idempotency.get(key.split("_")[1], "o311-basic") is not None
    assert received(api) == 2


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_concurrent_duplicates_on_two_api_processes_replay_the_first(
    backend: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    """Two API apps over one database (two replicas behind a proxy), 12 requests with one key
    at once, alternating between them: one runs; the others wait for its stored answer and
    replay it byte for byte, on either replica."""
    env = backend_env(backend, tmp_path, request)
    async with (
        api_harness(env, tmp_path, clock) as one,
        api_harness(env, tmp_path, clock) as twin,
    ):
        token = one.token("operator")
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "across-1"}
        before = received(one)
        answers = await asyncio.gather(
            *(
                client.post("/v1/grievances", json=grievance_body(), headers=headers)
                for client in [one.client, twin.client] * 6
            )
        )
        assert [r.status_code for r in answers] == [201] * 12
        assert len({r.content for r in answers}) == 1  # none says "replayed": true
        replayed = [r.headers.get("idempotent-replayed") for r in answers]
        assert replayed.count(None) == 1 and replayed.count("true") == 11
        assert received(one) == before + 1
        # The claim is gone once the answer is kept.
        db = one.services.idempotency.db
        assert db.execute("SELECT count(*) FROM api_idempotency_claims") == [(0,)]


def test_a_claim_is_held_once_and_a_stale_one_is_taken_over(tmp_path: Path) -> None:
    claims = KeyClaims(SqliteDatabase(tmp_path / "api.sqlite"), stale_after=timedelta(0))
    first = claims.claim("tok", "k")
    assert first is not None
    taken = claims.claim("tok", "k")  # stale at once here: a dead process's claim
    assert taken is not None and taken != first
    held = KeyClaims(claims.db)
    assert held.claim("tok", "k2") is not None and held.claim("tok", "k2") is None
    claims.release("tok", "k", first)  # not the owner any more: nothing happens
    assert claims.db.execute("SELECT owner FROM api_idempotency_claims WHERE idem_key = 'k'") == [
        (taken,)
    ]


# ------------------------------------------------------------------- rate limits


def assert_429(r: Any) -> int:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "rate-limited" and r.json()["status"] == 429
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60
    return wait


async def test_an_address_over_its_limit_gets_429_with_retry_after(api: ApiHarness) -> None:
    limit(api, address="5/minute")
    answers = [(await api.get("/v1/categories", "operator")).status_code for _ in range(7)]
    assert answers == [200] * 5 + [429] * 2
    r = await api.client.get("/healthz", params={"lang": "en"})
    assert_429(r)
    assert "try again in" in r.json()["detail"]


async def test_each_token_has_its_own_limit(api: ApiHarness) -> None:
    limit(api, token="3/minute")
    ops = [(await api.get("/v1/categories", "operator")).status_code for _ in range(4)]
    assert ops == [200, 200, 200, 429]
    assert_429(await api.get("/v1/categories", "operator"))
    # Another token from the same address is not held back.
    assert (await api.get("/v1/categories", "supervisor")).status_code == 200


async def test_invalid_credentials_lock_the_address_out(api: ApiHarness) -> None:
    limiter = limit(api, failed_auth="5/minute")
    bad = {"Authorization": "Bearer cl_abcdef_guess"}
    answers = [(await api.client.get("/v1/categories", headers=bad)).status_code for _ in range(7)]
    assert answers == [401] * 5 + [429] * 2
    # Spent: even a valid token from this address waits now.
    assert_429(await api.get("/v1/categories", "operator"))
    # Requests without any credential never counted.
    limiter.reset()
    for _ in range(6):
        assert (await api.client.get("/v1/categories")).status_code == 401
    assert (await api.get("/v1/categories", "operator")).status_code == 200


async def test_a_token_over_its_limit_does_not_reach_the_domain(api: ApiHarness) -> None:
    limit(api, token="2/minute")
    answers = [
        (await api.post("/v1/grievances", "operator", grievance_body())).status_code
        for _ in range(3)
    ]
    assert answers == [201, 201, 429]
    assert received(api) == 2


def open311_form(key: str, **more: str) -> dict[str, str]:
    return {
        "api_key": key,
        "service_code": "PM03",
        "address_id": "xyl-01",
        "phone": "13812345678",
        "description": "楼道堆放杂物",
        **more,
    }


async def test_an_open311_client_has_a_filing_quota(api: ApiHarness) -> None:
    limit(api, filing="3/minute")
    key = api.token("open311")
    answers = []
    for i in range(5):
        r = await api.client.post(
            "/open311/v2/requests.json",
            data=open311_form(key),
            headers={"Idempotency-Key": f"file-{i}"},
        )
        answers.append(r)
    assert [r.status_code for r in answers] == [201, 201, 201, 429, 429]
    refused = answers[3]
    assert refused.headers["content-type"].startswith("application/json")
    [problem] = refused.json()  # GeoReport v2's errors: [{code, description}]
    assert problem["code"] == 429 and problem["description"]
    assert int(refused.headers["retry-after"]) >= 1
    assert received(api) == 3

    # A retry with an accepted key replays its answer: no filing, no quota spent.
    replay = await api.client.post(
        "/open311/v2/requests.json", data=open311_form(key), headers={"Idempotency-Key": "file-0"}
    )
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"

    # In XML when asked in XML.
    xml = await api.client.post("/open311/v2/requests.xml", data=open311_form(key))
    assert xml.status_code == 429 and xml.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "errors" and root.findtext("error/code") == "429"

    # The quota is the client's: an open311 token filing through /v1 counts too ...
    r = await api.client.post(
        "/v1/grievances",
        json=grievance_body(channel="open311"),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert_429(r)
    # ... and another client, or the dispatch centre, is not held back.
    other = api.services.tokens.create("open311", name="another-app")[1]
    r = await api.client.post("/open311/v2/requests.json", data=open311_form(other))
    assert r.status_code == 201
    assert (await api.post("/v1/grievances", "operator", grievance_body())).status_code == 201


async def test_a_clients_rotated_tokens_share_its_filing_quota(api: ApiHarness) -> None:
    limit(api, filing="2/minute")
    tokens = api.services.tokens
    old = tokens.create("open311", name="city-app")[1]
    new = tokens.create("open311", name="city-app", same_client=True)[1]
    assert (
        await api.client.post("/open311/v2/requests.json", data=open311_form(old))
    ).status_code == 201
    assert (
        await api.client.post("/open311/v2/requests.json", data=open311_form(new))
    ).status_code == 201
    r = await api.client.post("/open311/v2/requests.json", data=open311_form(new))
    assert r.status_code == 429 and r.json()[0]["code"] == 429


async def test_open311_reads_over_the_limit_answer_in_open311_format(api: ApiHarness) -> None:
    limit(api, address="1/minute")
    assert (await api.client.get("/open311/v2/services.xml")).status_code == 200
    r = await api.client.get("/open311/v2/services.xml")
    assert r.status_code == 429 and "retry-after" in r.headers
    assert ElementTree.fromstring(r.content).findtext("error/code") == "429"


def test_the_limits_come_from_settings_and_can_be_turned_off() -> None:
    assert rate_limiter(Settings(rate_limits=False)) is None
    limiter = rate_limiter(Settings(rate_limit_token="2/second", open311_filing_quota=""))
    assert limiter is not None
    assert limiter.policy.token == "2/second" and limiter.policy.address  # a default
    assert limiter.hit(Bucket.FILING, "x") is None  # '' = not limited
    with pytest.raises(ValueError):
        Settings(rate_limit_address="lots")


def test_a_spent_limit_tells_when_it_frees_up() -> None:
    limiter = RateLimiter(RatePolicy(address="2/second;4/minute"))
    assert [limiter.hit(Bucket.ADDRESS, "a") for _ in range(2)] == [None, None]
    wait = limiter.hit(Bucket.ADDRESS, "a")
    assert wait == 1  # the per-second part is spent
    assert limiter.spent(Bucket.ADDRESS, "a") == 1
    assert limiter.hit(Bucket.ADDRESS, "b") is None  # per who


__all__ = ["sqlite_api"]  # the ``api`` fixture
