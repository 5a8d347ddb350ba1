"""``closeloop relay``: forward new domain events to the grievance workflows.

``--partition i/N`` runs one of N relays, each handling the grievances whose id is
``i`` modulo ``N`` with its own tracking position (see ``workflows/relay.py``).

``--partitions N`` (lease mode) runs identical relays that claim the N partitions
with PostgreSQL advisory locks, share them fairly and take over a dead relay's
partitions within a few seconds; on SQLite the one relay owns all N.
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
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        metavar="N",
        help="lease mode: claim any of N partitions (advisory locks on PostgreSQL), "
        "take over those of dead relays",
    )
    parser.add_argument(
        "--lease-interval",
        type=float,
        default=2.0,
        help="lease mode: seconds between claims of unowned partitions (default 2)",
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
        if args.partitions is not None:
            if args.partition != "0/1":
                raise ValueError("--partition i/N and --partitions N exclude each other")
            Partition(0, args.partitions)  # validates N >= 1
            if args.lease_interval <= 0:
                raise ValueError("--lease-interval must be positive")
    except ValueError as err:
        raise SystemExit(f"closeloop relay: {err}") from None
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    hard_exit(asyncio.run(_serve(args, partition)))


async def _serve(args: argparse.Namespace, partition: Partition) -> int:
    from closeloop.bootstrap import build_app
    from closeloop.postgres import partition_leases
    from closeloop.settings import get_settings
    from closeloop.temporal import connect_client
    from workflows.relay import LeasedRelay, Relay, tracking_recorder
    from workflows.webhooks import WebhookDirectory
    from workflows.worker import stop_on_signals

    settings = get_settings()
    stop = stop_on_signals()
    app = build_app(settings)
    try:
        relay: Relay | LeasedRelay
        if args.partitions is not None:
            relay = LeasedRelay(
                app,
                tracking_recorder(settings.event_store_env()),
                lambda: connect_client(settings),
                partition_leases(settings, args.partitions),
                task_queue=args.task_queue or settings.temporal_task_queue,
                lease_interval=args.lease_interval,
                webhooks=WebhookDirectory.from_file(settings.webhook_secrets_file),
                batch_size=args.batch_size,
                poll_interval=args.poll_interval,
            )
        else:
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
