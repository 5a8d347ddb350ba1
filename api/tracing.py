"""One OpenTelemetry server span per HTTP request, named by its route template.

An incoming W3C ``traceparent`` is honoured (the caller's trace continues here), the
answer carries this span's ``traceparent``, and ``trace_id`` is bound to the request's
log context. Without a tracer provider (``CLOSELOOP_TRACING=off``, the default) the
tracer is OpenTelemetry's no-op and nothing is recorded or sent.

Attributes: method, route template, status code. Never the raw path, the query (an
Open311 ``api_key`` travels there) or a header's value.
"""

from __future__ import annotations

import inspect
from typing import Any

import structlog
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import KNOWN_METHODS, route_of
from domain.tracecontext import CURRENT_TRACE


def without_native_telemetry() -> dict[str, Any]:
    """``FastAPI(**...)`` arguments turning off FastAPI's own OpenTelemetry (newer
    releases): its spans carry the raw path and query (ids, an Open311 ``api_key``),
    and ours already cover each request. Empty for releases without it."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracer_provider: Any = None) -> None:
        self.app = app
        self.tracer = trace.get_tracer("closeloop.api", tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = propagate.extract(carrier)
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        with self.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as span:
            context = span.get_span_context()
            traced = context.is_valid
            headers: dict[str, str] = {}
            if traced:
                propagate.inject(headers)
            status = {"code": 500}

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                    if traced:
                        message["headers"] = [
                            *message.get("headers", []),
                            *((k.encode(), v.encode()) for k, v in headers.items()),
                        ]
                await send(message)

            bound = {"trace_id": format(context.trace_id, "032x")} if traced else {}
            # Events this request records keep its traceparent, so the relay's signal
            # continues this trace (domain.tracecontext; thread hops copy the context).
            token = CURRENT_TRACE.set(headers.get("traceparent"))
            with structlog.contextvars.bound_contextvars(**bound):
                try:
                    await self.app(scope, receive, traced_send)
                finally:
                    CURRENT_TRACE.reset(token)
                    template, _ = route_of(scope.get("app"), scope)
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                    span.set_attribute("http.response.status_code", status["code"])
                    if status["code"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
