"""/readyz: ready when the event store answers; Temporal, projection lag and the
calendar's holiday coverage are degraded fields (200), 503 for them only when strict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import FakeClock
from tests.support.api import api_harness, sqlite_env

JUNE = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # every deadline set now stays in 2026
MID_DECEMBER = datetime(2026, 12, 15, 2, 0, tzinfo=UTC)  # 15 working days reach 2027


async def temporal_down() -> bool:
    raise ConnectionError("no temporal")


async def temporal_up() -> bool:
    return True


async def test_temporal_down_is_degraded_not_unready_unless_strict(tmp_path: Path) -> None:
    clock = FakeClock(JUNE)
    env = sqlite_env(tmp_path)
    async with api_harness(env, tmp_path, clock, temporal_reachable=temporal_down) as api:
        r = await api.client.get("/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ready"] is True and body["degraded"] == ["temporal"]
        assert body["checks"]["temporal"] == {"ok": False, "error": "ConnectionError"}
        assert body["checks"]["event_store"]["ok"] is True
        # Intake does not need Temporal.
        await api.new_grievance()

        strict = await api.client.get("/readyz", params={"strict": "true"})
        assert strict.status_code == 503
        assert strict.json()["ready"] is False and strict.json()["degraded"] == ["temporal"]

        bad = await api.client.get("/readyz", params={"strict": "sometimes"})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_projection_lag_is_degraded_until_caught_up(tmp_path: Path) -> None:
    clock = FakeClock(JUNE)
    env = sqlite_env(tmp_path)
    async with api_harness(env, tmp_path, clock, temporal_reachable=temporal_up) as api:
        api.services.max_projection_lag = 0
        await api.new_grievance()
        r = await api.client.get("/readyz")
        assert r.status_code == 200 and r.json()["degraded"] == ["projections"]
        assert r.json()["checks"]["projections"]["lag"] >= 1
        assert (await api.client.get("/readyz?strict=true")).status_code == 503
        api.catch_up()
        r = await api.client.get("/readyz", params={"strict": "true"})
        assert r.status_code == 200, r.text
        assert r.json() | {"checks": None} == {"ready": True, "checks": None, "degraded": []}


async def test_event_store_down_is_503_even_without_strict(tmp_path: Path) -> None:
    clock = FakeClock(JUNE)
    async with api_harness(sqlite_env(tmp_path), tmp_path, clock) as api:

        def broken(*_: Any) -> int:
            raise OSError("disk gone")

        api.services.app.recorder.max_notification_id = broken  # type: ignore[method-assign]
        r = await api.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False and "event_store" in r.json()["degraded"]
        assert r.json()["checks"]["event_store"] == {"ok": False, "error": "OSError"}


async def test_calendar_without_holiday_data_for_a_reached_year_is_reported(
    tmp_path: Path,
) -> None:
    clock = FakeClock(JUNE)
    env = sqlite_env(tmp_path)
    async with api_harness(env, tmp_path, clock, temporal_reachable=temporal_up) as api:
        r = await api.client.get("/readyz")
        calendar = r.json()["checks"]["calendar"]
        assert calendar["ok"] is True and calendar["covered_years"] == [2026]
        assert calendar["uncovered_years"] == [] and calendar["horizon"].startswith("2026-")
        assert "calendar" not in r.json()["degraded"]

        clock.now = MID_DECEMBER
        r = await api.client.get("/readyz")
        assert r.status_code == 200
        calendar = r.json()["checks"]["calendar"]
        assert calendar["ok"] is False and calendar["uncovered_years"] == [2027]
        assert calendar["horizon"].startswith("2027-")
        assert r.json()["degraded"] == ["calendar"]
        assert (await api.client.get("/readyz?strict=1")).status_code == 503
