"""The FastAPI application factory. The composition root passes how to build ``Services``;
they are built in the lifespan, so importing this module connects to nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from api import dashboard, metrics, problems, tracing, workbench
from api.deps import Services
from api.middleware import ApiMiddleware
from api.open311 import router as open311_router
from api.openapi_doc import build_openapi, install_docs
from api.routers import (
    attachments,
    audit,
    departments,
    health,
    knowledge,
    operators,
    places,
    rankings,
    ratings,
    similar,
    supervisors,
    whatif,
)

DESCRIPTION = """
closeloop 12345 接诉即办 API: the collect → resolve → feedback loop.

* **Operators** (接线员/派单员): intake, classification, dispatch, merging, arbitration, 回访.
* **Departments** (承办单位): sign for, return, progress, extensions, resolve, 报到.
* **Supervisors** (督办/考核): extension decisions, 吹哨, manual escalation, audit, 三率.

Every request carries `Authorization: Bearer <token>`. Every POST honours
`Idempotency-Key`; writes honour `If-Match: <version>`. Errors are RFC 9457
`application/problem+json`, in Simplified Chinese unless `?lang=en` or
`Accept-Language: en`.
"""


def create_app(
    build_services: Callable[[], Services],
    *,
    max_body_bytes: int = 64 * 1024,
    max_upload_bytes: int = 10 * 1024 * 1024,
    public_base_url: str = "http://127.0.0.1:8000",
) -> FastAPI:
    """``public_base_url``: where clients reach this API (Open311 discovery names it; the
    request's ``Host`` never does)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await anyio.to_thread.run_sync(build_services)
        app.state.services = services
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(services.close)

    app = FastAPI(
        title="closeloop",
        version="1.0.0",
        summary="12345 grievance loop: operators, departments, supervisors",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: install_docs, from this origin (no CDN)
        redoc_url=None,
        **tracing.without_native_telemetry(),
    )
    problems.install(app)
    # An upload's body is the file plus the multipart framing and form fields.
    upload_body = max_upload_bytes + 64 * 1024
    app.add_middleware(ApiMiddleware, max_body_bytes=max_body_bytes, max_upload_bytes=upload_body)
    metrics.install(app)  # GET /metrics, every request and command counted
    app.add_middleware(tracing.TracingMiddleware)  # outermost: one server span per request
    app.include_router(health.router)
    # Before operators: /grievances/similar must not be taken for /grievances/{id}.
    app.include_router(similar.router)
    app.include_router(operators.router)
    app.include_router(departments.router)
    app.include_router(supervisors.router)
    app.include_router(whatif.router)
    app.include_router(rankings.router)
    app.include_router(ratings.router)
    app.include_router(audit.router)
    app.include_router(knowledge.router)
    app.include_router(attachments.router)
    dashboard.install(app)  # the page, its data routes and its static files
    install_docs(app)  # /docs, /redoc and their assets
    workbench.install(app)  # the staff pages, acting through the routes above
    app.include_router(open311_router)  # /open311/v2: GeoReport v2
    app.include_router(places.router)  # /v1/places
    app.state.public_base_url = public_base_url.rstrip("/")
    # Other routers (the dashboard, Open311) are included here, one line each.

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
