"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import FakeClock, backend_env
from tests.support.api import ApiHarness, api_harness


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend_api(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[ApiHarness]:
    """The API over a SQLite or a PostgreSQL event store and read models."""
    env = backend_env(request.param, tmp_path, request)
    async with api_harness(env, tmp_path, clock) as harness:
        yield harness
