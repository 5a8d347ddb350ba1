"""Wiring for the HTTP API: builds ``api.deps.Services`` from settings (called in the lifespan)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from api.deps import Services
from api.ratelimit import RateLimiter, RatePolicy
from api.stores import Database, IdempotencyStore, PostgresDatabase, SqliteDatabase, TokenStore
from closeloop.postgres import connect_kwargs
from closeloop.settings import Settings, get_settings

if TYPE_CHECKING:
    from closeloop.temporal import LazyClient


def api_database(settings: Settings) -> Database:
    """Where tokens and Idempotency-Key responses live: beside the event store, same kind."""
    if not settings.uses_postgres:
        return SqliteDatabase(settings.var_dir / "api.sqlite")
    return PostgresDatabase(
        connect_kwargs(settings, "closeloop-api"),
        schema=settings.postgres_params()["schema"],
        pool_size=min(4, settings.db_pool_size),
    )


def build_token_store(settings: Settings | None = None) -> TokenStore:
    return TokenStore(api_database(settings or get_settings()))


def temporal_probe(client: LazyClient) -> Callable[[], Awaitable[bool]]:
    """An async check that the Temporal frontend answers its health check (client reused)."""

    async def reachable() -> bool:
        return bool(await (await client()).service_client.check_health())

    return reachable


def rate_limiter(settings: Settings) -> RateLimiter | None:
    """The limits of ``CLOSELOOP_RATE_LIMIT_*`` (None when ``CLOSELOOP_RATE_LIMITS=false``)."""
    if not settings.rate_limits:
        return None
    return RateLimiter(
        RatePolicy(
            address=settings.rate_limit_address,
            token=settings.rate_limit_token,
            failed_auth=settings.rate_limit_failed_auth,
            filing=settings.open311_filing_quota,
            storage=settings.rate_limit_storage,
        )
    )


def build_api_services(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    with_temporal: bool = True,
) -> Services:
    """The GrievanceApp, read models, token and idempotency stores for one API process."""
    from closeloop.blobs import build_blob_store, upload_policy
    from closeloop.bootstrap import build_app
    from closeloop.temporal import LazyClient
    from projections.queries import ReadModels
    from workflows.history import history_reader

    settings = settings or get_settings()
    temporal = LazyClient(settings, timeout=5.0) if with_temporal else None
    app = build_app(settings, clock=clock)
    closers: list[Callable[[], None]] = [app.close]
    try:
        read_models = ReadModels.from_env(settings.event_store_env())
        closers.append(read_models.close)
        db = api_database(settings)
        closers.append(db.close)
        blobs = build_blob_store(settings)
        closers.append(blobs.close)
    except BaseException:
        for closer in reversed(closers):
            closer()
        raise
    return Services(
        app=app,
        read_models=read_models,
        tokens=TokenStore(db),
        idempotency=IdempotencyStore(db),
        temporal_reachable=temporal_probe(temporal) if temporal else None,
        workflow_history=history_reader(temporal) if temporal else None,
        blobs=blobs,
        uploads=upload_policy(settings),
        rate_limits=rate_limiter(settings),
        closers=closers,
    )
