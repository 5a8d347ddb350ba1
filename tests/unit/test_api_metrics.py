"""GET /metrics on the API: requests by route template, commands by outcome, and the
supervisor's gauges from the read models; no personal data in any label."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FakeClock
from tests.support.api import ApiHarness, api_harness, grievance_body, sqlite_env


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ApiHarness]:
    async with api_harness(sqlite_env(tmp_path), tmp_path, clock, max_body_bytes=4096) as h:
        yield h


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(api: ApiHarness) -> tuple[str, Samples]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_never_by_raw_path(api: ApiHarness) -> None:
    created = await api.new_grievance()
    gid = created["id"]
    await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"})
    await api.post(f"/v1/grievances/{gid}/dispatch", "operator")
    await api.client.get(f"/no/such/{uuid.uuid4()}")
    await api.client.request("BREW", "/healthz")  # an invented method is not a new label
    text, samples = await scrape(api)
    template = "/v1/grievances/{grievance_id}/dispatch"
    assert (
        value(samples, "closeloop_http_requests_total", method="POST", route=template, status="200")
        == 1
    )
    assert (
        value(
            samples, "closeloop_http_request_duration_seconds_count", method="POST", route=template
        )
        == 1
    )
    assert (
        value(
            samples, "closeloop_http_requests_total", method="GET", route="unmatched", status="404"
        )
        == 1
    )
    assert "BREW" not in text
    methods = {dict(labels).get("method") for (_, labels) in samples}
    assert "OTHER" in methods
    # No id, name, phone or address anywhere in the output.
    for private in ("张秀英", "13812345678", "石油大院", "/no/such/"):
        assert private not in text
    assert gid not in text


async def test_commands_are_counted_by_name_and_outcome(api: ApiHarness) -> None:
    created = await api.new_grievance()
    gid = created["id"]
    ok = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "PM03"})
    assert ok.status_code == 200
    # Resolving a grievance nobody signed for is refused with a problem code.
    refused = await api.post(f"/v1/grievances/{gid}/classify", "operator", {"category": "nope"})
    assert refused.status_code >= 400
    key = {"Idempotency-Key": "metrics-1"}
    await api.post("/v1/grievances", "operator", grievance_body(), **key)
    await api.post("/v1/grievances", "operator", grievance_body(), **key)
    _, samples = await scrape(api)
    commands = {
        dict(labels)["command"] + ":" + dict(labels)["outcome"]: v
        for (name, labels), v in samples.items()
        if name == "closeloop_commands_total"
    }
    assert commands["create_grievance:ok"] == 2
    assert commands["create_grievance:replayed"] == 1
    assert commands["classify:ok"] == 1
    problem = refused.json()["code"]
    assert commands[f"classify:{problem}"] == 1


async def test_open_grievances_by_status_and_overdue_deadlines_by_kind(
    api: ApiHarness, clock: FakeClock
) -> None:
    await api.new_grievance()
    await api.dispatched()
    api.catch_up()
    _, samples = await scrape(api)
    assert value(samples, "closeloop_read_models_up") == 1
    assert value(samples, "closeloop_grievances_open", status="received") == 1
    assert value(samples, "closeloop_grievances_open", status="dispatched") == 1
    assert value(samples, "closeloop_grievances_open", status="closed") == 0
    assert value(samples, "closeloop_deadlines_overdue", kind="sign_for") == 0
    assert value(samples, "closeloop_projection_lag_events", projection="grievance_summary") == 0

    clock.advance(days=30)
    _, samples = await scrape(api)
    assert value(samples, "closeloop_deadlines_overdue", kind="sign_for") == 1

    await api.new_grievance()  # not projected yet: the lag shows
    _, samples = await scrape(api)
    assert value(samples, "closeloop_projection_lag_events", projection="grievance_summary") >= 1


async def test_metrics_is_not_in_the_openapi_document(api: ApiHarness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert "/metrics" not in spec["paths"]
