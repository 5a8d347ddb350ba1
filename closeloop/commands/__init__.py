"""One module per ``closeloop`` subcommand; each defines ``register(subparsers)``.

The helpers here are what the long-running roles share: settings with logging
configured from them, and the asyncio roles' life (signals, one GrievanceApp, a clean
stop, then a hard exit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import asyncio

    from closeloop.settings import Settings
    from domain.application import GrievanceApp


def configured_settings() -> Settings:
    """The process's settings, with logging configured from them."""
    from closeloop.logging import configure_logging
    from closeloop.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


def projection_names(wanted: list[str]) -> list[str] | None:
    """The projections named on the command line (all when none), or None after saying
    which name is unknown."""
    from projections.registry import select

    try:
        return [spec.name for spec in select(wanted)]
    except KeyError as error:
        print(error.args[0])
        return None


Role = Callable[["Settings", "GrievanceApp", "asyncio.Event"], Awaitable[int]]


def run_role(serve: Role) -> NoReturn:
    """Run an asyncio role (worker, relay) until SIGTERM or SIGINT sets its stop event,
    with one GrievanceApp closed afterwards, then end the process (``hard_exit``)."""
    import asyncio

    from closeloop.bootstrap import build_app
    from workflows.worker import hard_exit, stop_on_signals

    settings = configured_settings()

    async def main() -> int:
        stop = stop_on_signals()
        app = build_app(settings)
        try:
            return await serve(settings, app, stop)
        finally:
            app.close()

    hard_exit(asyncio.run(main()))
