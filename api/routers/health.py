"""Liveness and readiness, for load balancers and orchestrators (no token needed).

Ready means the event store answers: intake, reads and audit need nothing else (the
relay hands work to Temporal later). Temporal, projection lag and the business
calendar's holiday coverage are reported too; one failing is named in ``degraded``
and the answer stays 200, so a Temporal outage does not take every API pod out of
rotation. ``?strict=true`` answers 503 whenever any check fails.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import Health, Readiness
from domain.policies.coverage import calendar_coverage

router = APIRouter(tags=["health"])

TEMPORAL_TIMEOUT = 3.0


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


def _event_store(services: Any) -> dict[str, Any]:
    try:
        newest = services.app.recorder.max_notification_id()
    except Exception as exc:  # any driver error means "not reachable"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "max_notification_id": int(newest or 0)}


def _projections(services: Any) -> dict[str, Any]:
    try:
        status = services.read_models.status()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    lags = [int(v.get("lag") or 0) for v in status.values()] if isinstance(status, dict) else []
    lag = max(lags, default=0)
    return {"ok": lag <= services.max_projection_lag, "lag": lag, "views": status}


def _calendar(services: Any) -> dict[str, Any]:
    app = services.app
    try:
        coverage = calendar_coverage(app.policies.sla, app.now())
    except Exception as exc:  # a calendar without working time: report, never raise
        return {"ok": False, "error": type(exc).__name__}
    return {
        "ok": coverage.ok,
        "covered_years": coverage.covered_years,
        "uncovered_years": coverage.uncovered_years,
        "horizon": coverage.horizon.isoformat(),
    }


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Not ready: the event store does not answer"
            " (with ``strict=true``: any check fails)",
        }
    },
)
async def readyz(
    services: ServicesDep,
    strict: Annotated[
        bool, Query(description="503 when any check fails, not only the event store")
    ] = False,
) -> Any:
    """Readiness: the event store answers. Temporal reachable, projections not too far
    behind and holiday data for every year deadlines reach are reported; a failing one
    is listed in ``degraded`` (503 only with ``strict=true``)."""
    checks: dict[str, Any] = {
        "event_store": await anyio.to_thread.run_sync(_event_store, services),
        "projections": await anyio.to_thread.run_sync(_projections, services),
        "calendar": await anyio.to_thread.run_sync(_calendar, services),
    }
    if services.temporal_reachable is None:
        checks["temporal"] = {"ok": True, "configured": False}
    else:
        try:
            with anyio.fail_after(TEMPORAL_TIMEOUT):
                reachable = await services.temporal_reachable()
        except Exception as exc:  # a timeout or a connection error: not reachable
            checks["temporal"] = {"ok": False, "error": type(exc).__name__}
        else:
            checks["temporal"] = {"ok": bool(reachable)}
    degraded = [name for name, check in checks.items() if not check["ok"]]
    ready = checks["event_store"]["ok"] and not (strict and degraded)
    body = Readiness(ready=ready, checks=checks, degraded=degraded).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503)
