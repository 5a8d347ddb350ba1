"""Liveness and readiness, for load balancers and orchestrators (no token needed)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import Health, Readiness

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


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: see the failing check"}},
)
async def readyz(services: ServicesDep) -> Any:
    """Readiness: event store reachable, Temporal reachable, projections not too far behind."""
    checks: dict[str, Any] = {
        "event_store": await anyio.to_thread.run_sync(_event_store, services),
        "projections": await anyio.to_thread.run_sync(_projections, services),
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
    ready = all(check["ok"] for check in checks.values())
    body = Readiness(ready=ready, checks=checks).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503)
