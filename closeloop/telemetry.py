"""Metrics endpoints and traces of the long-running roles, from settings (wiring only).

- The API serves ``GET /metrics`` on its own port (``api/metrics.py``).
- ``closeloop relay`` and ``closeloop project`` serve ``/metrics`` on
  ``CLOSELOOP_METRICS_HOST:CLOSELOOP_METRICS_PORT`` with prometheus-client: their own
  collectors (lag, positions, leases, failures) plus the process's CPU and memory.
- ``closeloop worker`` hands the same address to the Temporal SDK's runtime, whose
  Prometheus exporter serves the SDK's worker metrics (``temporal_*``: workflow and
  activity task latency, failures, slots, sticky cache, ...).

Unset port = no endpoint (the default). A port already taken (``closeloop up``'s
children share their settings) is logged and the process runs on without an endpoint.

Traces (``CLOSELOOP_TRACING``, off by default): OpenTelemetry with the API's server
spans (``api/tracing.py``) and temporalio's ``TracingInterceptor`` on the relay's and
the worker's clients, so a relay signal, the workflow handling it and the activities
it runs are one trace.
"""

from __future__ import annotations

from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.registry import Collector
from temporalio.client import Interceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from closeloop.ports import port_is_free
from closeloop.settings import Settings


def metrics_address(settings: Settings) -> str | None:
    if settings.metrics_port is None:
        return None
    return f"{settings.metrics_host}:{settings.metrics_port}"


def serve_metrics(settings: Settings, *collectors: Collector) -> Any:
    """Serve ``/metrics`` with ``collectors`` in a daemon thread; None when no port is set.

    Returns the HTTP server (``shutdown()`` stops it)."""
    if settings.metrics_port is None:
        return None
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    for collector in collectors:
        registry.register(collector)
    try:
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
    except OSError as error:  # the port is taken: run on, without an endpoint
        _port_taken(settings, error)
        return None
    return server


def _port_taken(settings: Settings, error: OSError) -> None:
    structlog.get_logger("closeloop.telemetry").warning(
        "metrics.port_unavailable",
        address=metrics_address(settings),
        error=str(error),
        hint="each process needs its own CLOSELOOP_METRICS_PORT",
    )


def temporal_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics to Prometheus, or None (default
    runtime, no endpoint) when no metrics port is set. Build one per process."""
    address = metrics_address(settings)
    if address is None or settings.metrics_port is None:
        return None
    if not port_is_free(settings.metrics_port, settings.metrics_host):
        _port_taken(settings, OSError(f"{address} is in use"))
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


# ------------------------------------------------------------------------- traces


def configure_tracing(
    settings: Settings, role: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Install the process's tracer provider from ``CLOSELOOP_TRACING``, or None when off.

    ``console`` writes spans to stderr, ``otlp`` sends them to ``CLOSELOOP_OTLP_ENDPOINT``
    (OTLP over HTTP; unset = the exporter's default, ``OTEL_EXPORTER_OTLP_*``). A test
    passes its own ``exporter`` (an in-memory one)."""
    if exporter is None:
        if settings.tracing == "off":
            return None
        if settings.tracing == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": f"closeloop-{role}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracing_interceptors(settings: Settings) -> list[Interceptor]:
    """temporalio's OpenTelemetry interceptor for a client (and the workers built on it):
    the relay's signal, the workflow and its activities become spans of one trace."""
    if settings.tracing == "off":
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]
