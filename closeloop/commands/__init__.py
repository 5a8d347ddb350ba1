"""One module per ``closeloop`` subcommand; each defines ``register(subparsers)``.

The helpers here are what the long-running roles share: settings with logging
configured from them, and the asyncio roles' life (signals, one GrievanceApp, a clean
stop, then a hard exit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import argparse
    import asyncio

    from closeloop.settings import Settings
    from domain.application import GrievanceApp


def subcommand(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """A subcommand's parser; its ``--help`` shows each option's default."""
    import argparse

    parser = sub.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


def add_output_options(parser: argparse.ArgumentParser, json_help: str | None = None) -> None:
    """How a command prints: ``--lang``, the language of its words (from the catalogue),
    and, given ``json_help``, ``--json`` for machines."""
    from api.catalogue import LANGS

    if json_help is not None:
        parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--lang", choices=LANGS, default="zh", help="zh (default) or en")


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


def _width(text: str) -> int:
    """Terminal columns: a wide (e.g. Chinese) character takes two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: int = 0) -> str:
    """A plain text table whose columns fit the widest cell (headers come from the
    catalogue, so they may be Chinese); the last ``right`` columns are right-aligned."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    first_right = len(headers) - right

    def line(row: list[str]) -> str:
        padded = [
            " " * (w - _width(c)) + c if i >= first_right else c + " " * (w - _width(c))
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join(line(row) for row in cells)


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
