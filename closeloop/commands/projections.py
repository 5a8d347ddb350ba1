"""``closeloop projections rebuild [NAME]`` and ``closeloop projections status``."""

from __future__ import annotations

import argparse
import os

from api.catalogue import t
from closeloop.commands import add_output_options, table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("projections", help="rebuild read models or show their lag")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser("rebuild", help="empty a read model and replay the whole log")
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="default: all projections")
    rebuild.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes sharing the views, each reading the log for its own "
        "(default: the cores, at most 4)",
    )
    add_output_options(rebuild)
    rebuild.set_defaults(handler=run_rebuild)
    status = actions.add_parser("status", help="each projection's position and lag")
    add_output_options(status, "print JSON")
    status.set_defaults(handler=run_status)


def run_rebuild(args: argparse.Namespace) -> int:
    import time

    from closeloop.commands import configured_settings, projection_names
    from projections.runner import rebuild

    settings = configured_settings()
    names = projection_names(args.names)
    if names is None:
        return 2
    started = time.monotonic()
    applied = rebuild(settings.event_store_env(), names, workers=max(1, args.workers))
    seconds = f"{time.monotonic() - started:.1f}"
    print(t("cli.rebuilt", args.lang, names=names, applied=applied, seconds=seconds))
    return 0


def run_status(args: argparse.Namespace) -> int:
    import json

    from closeloop.settings import get_settings
    from projections.queries import ReadModels

    read = ReadModels.from_env(get_settings().event_store_env())
    try:
        status = read.status()
    finally:
        read.close()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    columns = ("projection", "position", "log-max", "lag")
    rows = [
        (name, row["position"], row["max_notification_id"], row["lag"])
        for name, row in status.items()
    ]
    print(table([t(f"cli.column-{c}", args.lang) for c in columns], rows, right=3))
    return 0
