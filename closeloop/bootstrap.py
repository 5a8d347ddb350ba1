"""The composition root: builds the pieces from settings. Nothing connects at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from eventsourcing.persistence import InternalError, OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_incrementing

from closeloop.settings import Settings, get_settings
from domain.application import GrievanceApp


def build_app(
    settings: Settings | None = None, clock: Callable[[], datetime] | None = None
) -> GrievanceApp:
    """One GrievanceApp per process: each opens its own connection pool (see deploy/README).

    Several processes starting at once may race to create the tables on PostgreSQL
    ("tuple concurrently updated"); building again once the winner is done succeeds.
    """
    settings = settings or get_settings()
    retrying = Retrying(
        retry=retry_if_exception_type((InternalError, OperationalError)),
        stop=stop_after_attempt(5),
        wait=wait_incrementing(start=0.2, increment=0.2),
        reraise=True,
    )
    return retrying(GrievanceApp, settings.event_store_env(), clock=clock)
