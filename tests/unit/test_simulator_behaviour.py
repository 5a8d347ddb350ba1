"""The simulator: its data, its tally, and a short run against the real API app (ASGI,
SQLite event store, a projector catching up alongside) with no Temporal."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api.schemas import GrievanceCreate
from closeloop.dev.simulator import (
    TRANSPORT_ATTEMPTS,
    Behaviour,
    SimConfig,
    SimulationError,
    Simulator,
    format_summary,
    new_grievance_body,
    percentile,
    sim_data,
)
from domain.model import Location
from domain.policies import load_policies
from tests.conftest import FakeClock
from tests.support.api import api_harness, sqlite_env

DEPARTMENTS = ("st.xueyuanlu", "cm.xyl-01")


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_generated_grievances_are_valid_skewed_and_recurring() -> None:
    rng = random.Random(1)
    bodies = [new_grievance_body(rng) for _ in range(2000)]
    for body, _ in bodies[:200]:
        GrievanceCreate.model_validate(body)  # what the API accepts
    categories = Counter(code for _, code in bodies)
    top, top_count = categories.most_common(1)[0]
    assert top == "UM06"
    assert top_count > 4 * categories["PM02"]  # a skewed mix, not uniform
    places = Counter(body["location"]["address"] for body, _ in bodies)
    assert len(places) <= 10 and places.most_common(1)[0][1] > 400  # hotspots recur
    assert all("\u4e00" <= body["text"][-2] <= "\u9fff" for body, _ in bodies[:50])


def test_the_packaged_data_names_real_categories_and_places() -> None:
    data = sim_data()
    policies = load_policies()
    leaves = {c.code for c in policies.categories.leaves()}
    assert {c.code for c in data.categories} <= leaves
    assert all(c.texts and c.weight > 0 for c in data.categories)
    for _, place in data.places:
        policies.directory.check_location(Location(**place))  # raises when it does not nest
    assert data.accounts and data.channels and data.surnames and data.given_names
    assert all(text for text in data.says.values())


def test_same_seed_same_grievances() -> None:
    first = [new_grievance_body(random.Random("7/3")) for _ in range(3)]
    again = [new_grievance_body(random.Random("7/3")) for _ in range(3)]
    assert first == again


def config(**overrides: object) -> SimConfig:
    base = {
        "base_url": "http://api.test",
        "operator_token": "op",
        "supervisor_token": "sup",
        "department_tokens": dict.fromkeys(DEPARTMENTS, "dept"),
    }
    base.update(overrides)
    return SimConfig(**base)  # type: ignore[arg-type]


async def test_a_5xx_is_counted_and_stops_that_grievance() -> None:
    broken = FastAPI()

    @broken.post("/v1/grievances")
    def boom() -> JSONResponse:
        return JSONResponse({"detail": "boom"}, status_code=503)

    transport = httpx.ASGITransport(app=broken)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        sim = Simulator(config(rate=50.0, duration=0.2, drain=5.0), client)
        tally = await sim.run()
    assert tally.server_errors >= 1
    assert tally.filed == 0
    assert tally.errors >= tally.server_errors
    assert "503" in tally.samples[0]


async def test_transport_errors_are_retried_with_the_same_key_then_counted() -> None:
    keys: list[str | None] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        if len(keys) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(201, json={"id": "g"})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(flaky), base_url="http://api.test"
    ) as client:
        sim = Simulator(config(retry_wait=0.01), client)
        response = await sim.request("POST", "/v1/grievances", "op", "file", {}, ok=(201,))
        assert response.status_code == 201
        assert len(keys) == 3 and len(set(keys)) == 1  # one key for every try
        assert sim.tally.transport_errors == 0 and len(sim.tally.latencies["file"]) == 1
        assert sim.tally.transport_retries == 2  # counted apart, not as errors
        assert sim.tally.errors == 0

        keys.clear()

        def down(request: httpx.Request) -> httpx.Response:
            keys.append(request.headers.get("Idempotency-Key"))
            raise httpx.ConnectError("connection refused", request=request)

        sim._client = httpx.AsyncClient(
            transport=httpx.MockTransport(down), base_url="http://api.test"
        )
        with pytest.raises(SimulationError):
            await sim.request("POST", "/v1/grievances", "op", "file", {}, ok=(201,))
        await sim._client.aclose()
    assert len(keys) == TRANSPORT_ATTEMPTS and len(set(keys)) == 1
    assert sim.tally.transport_errors == 1


async def test_the_loop_runs_to_closed_and_a_vanished_grievance_counts_as_lost(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path)
    async with api_harness(env, tmp_path, FakeClock()) as h:
        tokens = {code: h.token("department", code) for code in DEPARTMENTS}
        cfg = config(
            operator_token=h.token("operator"),
            supervisor_token=h.token("supervisor"),
            department_tokens=tokens,
            rate=25.0,
            duration=0.8,
            drain=30.0,
            behaviour=Behaviour(
                think=0.01,
                late=0.02,
                p_return=0.3,
                p_extension=0.3,
                p_summon=0.3,
                p_unsatisfied=0.3,
                p_consultation=0.3,
                p_duplicate=0.4,
            ),
        )
        sim = Simulator(cfg, h.client)

        async def projector() -> None:
            while True:
                await asyncio.to_thread(h.catch_up)
                await asyncio.sleep(0.1)

        task = asyncio.create_task(projector())
        try:
            tally = await sim.run()
            assert tally.filed >= 5
            assert tally.server_errors == tally.transport_errors == tally.client_errors == 0, (
                tally.samples
            )
            assert tally.lost == 0
            # A repeated report is merged into the open one through the suggestion's link.
            assert tally.duplicates >= 1 and 1 <= tally.merged <= tally.duplicates
            assert tally.closed + tally.merged == tally.filed, tally.summary()
            assert tally.reopened >= 1
            # 咨询 answered at intake, quoting the knowledge base: closed, never dispatched.
            assert tally.answered >= 1
            assert tally.extensions >= 1 and tally.summoned >= 1 and tally.returned >= 1
            assert tally.resolved >= tally.filed - tally.merged - tally.answered + tally.reopened
            summary = format_summary(tally.summary())
            assert f"已受理：{tally.filed}" in summary
            assert f"直接答复：{tally.answered}" in summary
            assert f"filed: {tally.filed}" in format_summary(tally.summary(), "en")

            sim.ids.append("00000000-0000-5000-8000-000000000000")
            await sim.check_lost(projection_wait=0.5)
            assert sim.tally.lost == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_needs_a_department_token() -> None:
    with pytest.raises(ValueError):
        Simulator(config(department_tokens={}))
    assert issubclass(SimulationError, RuntimeError)


def test_simulate_needs_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from closeloop.cli import main
    from closeloop.settings import get_settings

    monkeypatch.setenv("CLOSELOOP_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["simulate", "--duration", "0"]) == 2
        assert "dev-tokens.json" in capsys.readouterr().err
        assert main(["simulate", "--department-token", "no-equals-sign"]) == 2
        assert "CODE=TOKEN" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_simulate_finds_the_running_stack(tmp_path: Path) -> None:
    from closeloop.commands.simulate import running_api_url

    assert running_api_url(tmp_path, 8000) == "http://127.0.0.1:8000"
    (tmp_path / "stack.json").write_text('{"api_url": "http://127.0.0.1:8013"}')
    assert running_api_url(tmp_path, 8000) == "http://127.0.0.1:8013"
    (tmp_path / "stack.json").write_text("not json")
    assert running_api_url(tmp_path, 8001) == "http://127.0.0.1:8001"
