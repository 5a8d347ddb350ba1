"""Connecting to Temporal from settings: address, namespace, TLS/mTLS, pydantic converter.

``connect_client`` is the one place a client is built; the worker, the relay, the API
wiring and the embedded stack all connect through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from closeloop.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS when any certificate is configured (CA alone = server TLS, cert+key = mTLS)."""
    if not (settings.temporal_tls_ca or settings.temporal_tls_cert or settings.temporal_tls_key):
        return False
    if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
        raise ValueError("set both CLOSELOOP_TEMPORAL_TLS_CERT and CLOSELOOP_TEMPORAL_TLS_KEY")
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
        if settings.temporal_tls_ca
        else None,
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
    )


async def connect_client(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client with the data converter every closeloop worker, relay and replayer uses.

    ``runtime``: the worker's, exporting the SDK's metrics; ``interceptors``: tracing
    (both from ``closeloop/telemetry.py``; workers built on the client inherit them)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls_config(settings),
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=interceptors,
    )


class LazyClient:
    """One client for a process, connected on first use (again after a failed connect).

    The API's /readyz probe and its workflow-history reader share one."""

    def __init__(self, settings: Settings, timeout: float | None = None) -> None:
        self.settings = settings
        self.timeout = timeout
        self._client: Client | None = None

    async def __call__(self) -> Client:
        if self._client is None:
            self._client = await asyncio.wait_for(connect_client(self.settings), self.timeout)
        return self._client


async def temporal_reachable_async(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        client = await asyncio.wait_for(connect_client(settings), timeout=timeout)
        return await asyncio.wait_for(client.service_client.check_health(), timeout=timeout)
    except Exception:  # any failure means "not ready"; /readyz reports it, never raises
        return False


def temporal_reachable(settings: Settings, timeout: float = 2.0) -> bool:
    """For /readyz: True when the Temporal frontend answers a health check in time.

    Safe to call from sync code and from inside a running event loop (it uses its own
    loop on a short-lived thread).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, temporal_reachable_async(settings, timeout)).result()
