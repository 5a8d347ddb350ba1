"""OpenTelemetry traces, recorded by an in-memory exporter.

- The API: one server span per request named by its route template, continuing the
  caller's ``traceparent`` and answering with its own.
- The relay → workflow → activity path: with temporalio's ``TracingInterceptor`` on
  the client (the relay's) and so on the worker built on it, one relay signal, the
  workflow handling it and the activity it runs (a signed webhook) share one trace.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from closeloop.settings import Settings
from closeloop.telemetry import configure_tracing, tracing_interceptors
from domain.application import GrievanceApp
from domain.tracecontext import CURRENT_TRACE
from tests.conftest import OPERATOR, FakeClock, make_grievance
from tests.support.api import api_harness
from tests.support.api import sqlite_env as api_sqlite_env
from tests.support.workflows import (
    eventually,
    sqlite_env,
    temporal_binary,
    webhook_receiver,
)
from workflows.relay import Relay, tracking_recorder
from workflows.webhooks import WebhookDirectory, WebhookTarget, new_secret
from workflows.worker import running_worker

STREET = "st.xueyuanlu"
REQUEST_TRACE = "0af7651916cd43dd8448eb211c80319c"


def recording() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_tracing_is_off_by_default() -> None:
    settings = Settings()
    assert settings.tracing == "off"
    assert configure_tracing(settings, "test") is None
    assert tracing_interceptors(settings) == []
    assert isinstance(tracing_interceptors(Settings(tracing="console"))[0], TracingInterceptor)


async def test_api_server_span_continues_the_callers_trace(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = recording()
    from opentelemetry import trace

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{caller_trace}-00f067aa0ba902b7-01"
    async with api_harness(api_sqlite_env(tmp_path), tmp_path, clock) as api:
        created = await api.new_grievance()
        gid = created["id"]
        response = await api.client.post(
            f"/v1/grievances/{gid}/classify",
            json={"category": "PM03"},
            headers=api.auth("operator", traceparent=parent),
        )
        assert response.status_code == 200
        # The event the request recorded keeps the request's trace context, for the relay.
        classified = api.app.history(UUID(gid))[-1]
        assert type(classified).__name__ == "Classified"
        assert classified.trace is not None
        assert classified.trace.split("-")[1] == caller_trace
        received = api.app.history(UUID(gid))[0]
        assert getattr(received, "trace", None) is None  # not traced: no traceparent
    assert response.headers["traceparent"].split("-")[1] == caller_trace
    spans = {s.name: s for s in exporter.get_finished_spans()}
    span = spans["POST /v1/grievances/{grievance_id}/classify"]
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == caller_trace
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/grievances/{grievance_id}/classify"
    assert span.attributes["http.response.status_code"] == 200
    # The raw path (a grievance id) and personal data are not in any span.
    for s in exporter.get_finished_spans():
        assert gid not in s.name and gid not in str(dict(s.attributes or {}))


@pytest.mark.temporal
async def test_relay_signal_workflow_and_activity_are_one_trace(tmp_path: Path) -> None:
    provider, exporter = recording()
    interceptor = TracingInterceptor(provider.get_tracer("closeloop.test"))
    secret = new_secret()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
        interceptors=[interceptor],
    )
    try:
        with webhook_receiver(secret) as street:
            hooks = WebhookDirectory({STREET: WebhookTarget(street.url, secret)})
            store = sqlite_env(tmp_path / "events.sqlite")
            app = GrievanceApp(store)
            try:
                task_queue = f"tq-{uuid4().hex}"
                relay = Relay(
                    app, tracking_recorder(store), env.client, task_queue=task_queue, webhooks=hooks
                )
                async with running_worker(
                    env.client,
                    app,
                    task_queue=task_queue,
                    webhooks=hooks,
                    activity_threads=2,
                    workflow_failure_exception_types=[Exception],
                ):
                    gid = make_grievance(app)
                    app.classify_grievance(gid, OPERATOR, category="PM01")
                    # As the API's tracing middleware does while the dispatch request runs.
                    token = CURRENT_TRACE.set(f"00-{REQUEST_TRACE}-00f067aa0ba902b7-01")
                    try:
                        app.dispatch_grievance(gid, OPERATOR, lead=STREET)
                    finally:
                        CURRENT_TRACE.reset(token)
                    await relay.run_once()
                    await eventually(lambda: street.received)
                    await eventually(
                        lambda: any(
                            s.name == "RunActivity:notify" for s in exporter.get_finished_spans()
                        )
                    )
            finally:
                app.close()
    finally:
        await env.shutdown()

    spans = exporter.get_finished_spans()
    signal = next(s for s in spans if s.name == "SignalWithStartWorkflow:GrievanceWorkflow")
    activity = next(s for s in spans if s.name == "RunActivity:notify")
    same_trace = {s.name for s in spans if s.context.trace_id == signal.context.trace_id}
    assert "RunActivity:notify" in same_trace
    assert "HandleSignal:update" in same_trace
    assert activity.context.trace_id == signal.context.trace_id
    # ... and that trace is the one of the request that recorded the dispatch: one trace
    # spans HTTP request → event → relay signal → workflow → activity.
    assert format(signal.context.trace_id, "032x") == REQUEST_TRACE
    assert signal.parent is not None and format(signal.parent.span_id, "016x") == "00f067aa0ba902b7"
    # The department's webhook carried no trace headers into its body (plain JSON).
    assert "traceparent" not in street.received[0]["body"]
