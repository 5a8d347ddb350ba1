"""``GET /metrics`` in Prometheus format, and the middleware that measures requests.

- ``closeloop_http_requests_total{method, route, status}`` and
  ``closeloop_http_request_duration_seconds{method, route}``: ``route`` is the route
  template (``/v1/grievances/{grievance_id}/dispatch``), never the raw path, so ids
  never become labels; unknown paths are ``unmatched``.
- ``closeloop_commands_total{command, outcome}``: every POST/PUT/PATCH/DELETE that
  reached a route; ``command`` is the route's name, ``outcome`` is ``ok`` for 2xx,
  ``replayed`` for an Idempotency-Key replay, or the problem+json ``code``
  (``illegal-transition``, ``version-conflict``, ...).
- At scrape time, from the read models: open grievances by status, overdue deadlines
  by kind, each projection's lag (``projections/metrics.py``).

One registry per app (tests build many apps in one process). No personal data in any
label: templates, route names, status codes, problem codes, statuses and kinds only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import WRITE_METHODS, start_headers
from projections.metrics import GrievanceCollector, projection_families
from projections.queries import ReadModels

UNMATCHED = "unmatched"
# Any other method token a client sends is "OTHER": labels must stay a bounded set.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MAX_PROBLEM_BYTES = 16 * 1024


class ApiMetrics:
    """The API's own metric objects, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        counter = partial(Counter, registry=registry)
        self.requests = counter(
            "closeloop_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
        )
        self.latency = Histogram(
            "closeloop_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commands = counter(
            "closeloop_commands",
            "Commands (POST/PUT/PATCH/DELETE routes), by route name and outcome",
            ["command", "outcome"],
        )


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    # FastAPI keeps included routers nested (with their prefixes applied); recurse.
    for route in routes:
        nested = getattr(route, "effective_candidates", None)
        if callable(nested):
            yield from flat_routes(nested())
        else:
            yield route


def route_of(app: Any, scope: Scope) -> tuple[str, str | None]:
    """(route template, route name) of a request; ``unmatched`` when no route is found."""
    route = scope.get("route")
    if route is None and app is not None:
        # Answered before routing (413, idempotent replay): find the route it was for.
        for candidate in flat_routes(getattr(app, "routes", ())):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    if not path:
        return UNMATCHED, None
    return path, getattr(route, "name", None)


def _outcome(status: int, content_type: str, body: bytes) -> str:
    if 200 <= status < 300:
        return "ok"
    if content_type.startswith("application/problem+json") and body:
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, str) and code.replace("-", "").replace("_", "").isalnum():
            return code[:64]
    return f"http_{status}"


class MetricsMiddleware:
    """Pure ASGI, outside ApiMiddleware, so it sees every answer (its 413s and replays too)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        started = time.perf_counter()
        is_command = method in WRITE_METHODS
        answer: dict[str, Any] = {"status": 500, "content_type": "", "body": bytearray()}

        async def measured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                headers = start_headers(message)
                answer["content_type"] = headers.get(b"content-type", b"").decode("latin-1")
                answer["replayed"] = headers.get(b"idempotent-replayed") == b"true"
            elif (
                message["type"] == "http.response.body"
                and is_command
                and answer["status"] >= 400
                and len(answer["body"]) < _MAX_PROBLEM_BYTES
            ):
                answer["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        finally:
            elapsed = time.perf_counter() - started
            template, name = route_of(scope.get("app"), scope)
            status = int(answer["status"])
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            if is_command and name is not None:
                outcome = (
                    "replayed"
                    if answer.get("replayed")
                    else _outcome(status, answer["content_type"], bytes(answer["body"]))
                )
                self.metrics.commands.labels(name, outcome).inc()


class ProjectionStatusCollector(Collector):
    """Each projection's lag in events, as the API sees it (the projector adds seconds)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        read_models = _read_models(self._app)
        if read_models is None:
            return
        try:
            status = read_models.status()
        except Exception:  # reported as closeloop_read_models_up 0 by the other collector
            return
        for family in projection_families(status, {}):
            if family.name != "closeloop_projection_lag_seconds":
                yield family


def _now(app: FastAPI) -> datetime:
    """The application's clock (a test's fake clock too), else the wall clock."""
    services = getattr(app.state, "services", None)
    clock = getattr(getattr(services, "app", None), "clock", None)
    return clock() if callable(clock) else datetime.now(UTC)


def _read_models(app: FastAPI) -> ReadModels | None:
    services = getattr(app.state, "services", None)
    return getattr(services, "read_models", None)


def install(app: FastAPI) -> ApiMetrics:
    """Measure every request and serve ``GET /metrics`` (not in the OpenAPI document).

    Keep it off the public internet (the proxy in ``deploy/`` answers 404 for it)."""
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    registry.register(GrievanceCollector(lambda: _read_models(app), lambda: _now(app)))
    registry.register(ProjectionStatusCollector(app))
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus metrics of this API process and the read models."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.metrics = metrics
    return metrics
