"""``closeloop relay``: forward new domain events to the grievance workflows.

``--partition i/N`` runs one of N relays, each handling the grievances whose id is
``i`` modulo ``N`` with its own tracking position (see ``workflows/relay.py``).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.relay import Partition


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "relay", help="follow the event log and signal grievance workflows (exactly once)"
    )
    parser.add_argument(
        "--partition", default="0/1", help="i/N: this relay's share of the grievances"
    )
    parser.add_argument("--task-queue", default=None, help="default: CLOSELOOP_TEMPORAL_TASK_QUEUE")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds when idle")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from closeloop.logging import configure_logging
    from closeloop.settings import get_settings
    from workflows.relay import Partition
    from workflows.worker import hard_exit

    try:
        partition = Partition.parse(args.partition)
    except ValueError as err:
        raise SystemExit(f"closeloop relay: {err}") from None
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    hard_exit(asyncio.run(_serve(args, partition)))


async def _serve(args: argparse.Namespace, partition: Partition) -> int:
    from closeloop.bootstrap import build_app
    from closeloop.settings import get_settings
    from closeloop.temporal import connect_client
    from workflows.relay import Relay, tracking_recorder
    from workflows.webhooks import WebhookDirectory
    from workflows.worker import stop_on_signals

    settings = get_settings()
    stop = stop_on_signals()
    app = build_app(settings)
    try:
        relay = Relay(
            app,
            tracking_recorder(settings.event_store_env()),
            lambda: connect_client(settings),
            task_queue=args.task_queue or settings.temporal_task_queue,
            partition=partition,
            webhooks=WebhookDirectory.from_file(settings.webhook_secrets_file),
            batch_size=args.batch_size,
            poll_interval=args.poll_interval,
        )
        await relay.run(stop)
    finally:
        app.close()
    return 0
