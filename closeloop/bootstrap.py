"""The composition root: builds the pieces from settings. Nothing connects at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from closeloop.settings import Settings, get_settings
from domain.application import GrievanceApp


def build_app(
    settings: Settings | None = None, clock: Callable[[], datetime] | None = None
) -> GrievanceApp:
    """One GrievanceApp per process: each opens its own connection pool (see deploy/README)."""
    settings = settings or get_settings()
    return GrievanceApp(settings.event_store_env(), clock=clock)
