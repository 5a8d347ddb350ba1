"""Metrics endpoints of the long-running roles, from settings (wiring only).

- The API serves ``GET /metrics`` on its own port (``api/metrics.py``).
- ``closeloop relay`` and ``closeloop project`` serve ``/metrics`` on
  ``CLOSELOOP_METRICS_HOST:CLOSELOOP_METRICS_PORT`` with prometheus-client: their own
  collectors (lag, positions, leases, failures) plus the process's CPU and memory.
- ``closeloop worker`` hands the same address to the Temporal SDK's runtime, whose
  Prometheus exporter serves the SDK's worker metrics (``temporal_*``: workflow and
  activity task latency, failures, slots, sticky cache, ...).

Unset port = no endpoint (the default, so ``closeloop up``'s children do not compete
for one port).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

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
    server, _thread = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=registry
    )
    return server


def temporal_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics to Prometheus, or None (default
    runtime, no endpoint) when no metrics port is set. Build one per process."""
    address = metrics_address(settings)
    if address is None:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
