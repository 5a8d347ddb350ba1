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
import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from closeloop.settings import Settings
    from domain.application import GrievanceApp
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
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.5,
        help="seconds between reads once caught up; a grievance's events within it "
        "coalesce into one signal (default 1.5)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from closeloop.commands import run_role
    from workflows.relay import Partition

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
    run_role(functools.partial(_serve, args, partition))


async def _serve(
    args: argparse.Namespace,
    partition: Partition,
    settings: Settings,
    app: GrievanceApp,
    stop: asyncio.Event,
) -> int:
    from closeloop.postgres import partition_leases
    from closeloop.telemetry import configure_tracing, serve_metrics, tracing_interceptors
    from closeloop.temporal import connect_client
    from workflows.metrics import RelayCollector
    from workflows.relay import LeasedRelay, Relay, tracking_recorder
    from workflows.webhooks import WebhookDirectory

    options: dict[str, Any] = {
        "task_queue": args.task_queue or settings.temporal_task_queue,
        "webhooks": WebhookDirectory.from_file(settings.webhook_secrets_file),
        "batch_size": args.batch_size,
        "poll_interval": args.poll_interval,
    }
    tracking = tracking_recorder(settings.event_store_env())
    configure_tracing(settings, "relay")  # each signal a span, parent of the workflow's
    interceptors = tracing_interceptors(settings)

    def connect() -> Any:
        return connect_client(settings, interceptors=interceptors)

    relay: Relay | LeasedRelay
    if args.partitions is not None:
        leases = partition_leases(settings, args.partitions)
        relay = LeasedRelay(
            app,
            tracking,
            connect,
            leases,
            lease_interval=args.lease_interval,
            **options,
        )
    else:
        relay = Relay(app, tracking, connect, partition=partition, **options)
    metrics = serve_metrics(settings, RelayCollector(relay))  # /metrics if a port is set
    try:
        await relay.run(stop)
    finally:
        if metrics is not None:
            metrics.shutdown()
    return 0
