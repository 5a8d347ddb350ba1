"""Wiring for the HTTP API: builds ``api.deps.Services`` from settings (called in the lifespan)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from api.deps import Services
from api.stores import Database, IdempotencyStore, PostgresDatabase, SqliteDatabase, TokenStore
from closeloop.postgres import connect_kwargs
from closeloop.settings import Settings, get_settings
from closeloop.workflow_history import workflow_history_reader


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


def temporal_probe(settings: Settings) -> Callable[[], Awaitable[bool]]:
    """An async check that the Temporal frontend answers its health check (client reused)."""
    client: Any = None

    async def reachable() -> bool:
        nonlocal client
        from temporalio.client import Client, TLSConfig

        if client is None:
            tls: Any = False
            if settings.temporal_tls_cert or settings.temporal_tls_ca:
                tls = TLSConfig(
                    server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
                    if settings.temporal_tls_ca
                    else None,
                    client_cert=settings.temporal_tls_cert.read_bytes()
                    if settings.temporal_tls_cert
                    else None,
                    client_private_key=settings.temporal_tls_key.read_bytes()
                    if settings.temporal_tls_key
                    else None,
                )
            client = await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace, tls=tls
            )
        return bool(await client.service_client.check_health())

    return reachable


def build_api_services(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    with_temporal: bool = True,
) -> Services:
    """The GrievanceApp, read models, token and idempotency stores for one API process."""
    from closeloop.bootstrap import build_app
    from projections.queries import ReadModels

    settings = settings or get_settings()
    app = build_app(settings, clock=clock)
    closers: list[Callable[[], None]] = [app.close]
    try:
        read_models = ReadModels.from_env(settings.event_store_env())
        closers.append(read_models.close)
        db = api_database(settings)
        closers.append(db.close)
    except BaseException:
        for closer in reversed(closers):
            closer()
        raise
    return Services(
        app=app,
        read_models=read_models,
        tokens=TokenStore(db),
        idempotency=IdempotencyStore(db),
        temporal_reachable=temporal_probe(settings) if with_temporal else None,
        workflow_history=workflow_history_reader(settings) if with_temporal else None,
        closers=closers,
    )
