"""The composition root: builds the pieces from settings. Nothing connects at import time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from eventsourcing.persistence import InternalError, OperationalError

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
    for attempt in range(5):
        try:
            return GrievanceApp(settings.event_store_env(), clock=clock)
        except (InternalError, OperationalError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
