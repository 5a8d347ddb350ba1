"""``closeloop project``: run the projectors until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from closeloop.commands import subcommand

    add = subcommand(
        sub, "project", "run the projectors (read models) until interrupted", run
    ).add_argument
    add("names", nargs="*", metavar="NAME", help="only these projections (default: all)")
    add("--interval", type=float, default=0.5, help="idle seconds between polls of the log")
    add("--batch-size", type=int, default=500, help="events per transaction")
    add("--lease-interval", type=float, default=2.0, help="PostgreSQL: a standby's tries to lead")


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    import structlog

    from closeloop.commands import configured_settings, projection_names
    from closeloop.postgres import projector_lease
    from closeloop.telemetry import serve_metrics
    from projections.metrics import projection_lag_collector
    from projections.runner import run_forever

    settings = configured_settings()
    log = structlog.get_logger("closeloop.project")
    names = projection_names(args.names)
    if names is None:
        return 2
    if args.lease_interval <= 0:
        raise SystemExit("closeloop project: --lease-interval must be positive")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping projectors", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log.info("projecting", projections=names)
    metrics, close_metrics = None, None
    if settings.metrics_port is not None:  # /metrics: each projection's lag
        collector, close_metrics = projection_lag_collector(settings.event_store_env())
        metrics = serve_metrics(settings, collector)
    try:
        run_forever(
            settings.event_store_env(),
            stop,
            names,
            interval=args.interval,
            batch_size=args.batch_size,
            lease=projector_lease(settings, names),
            lease_interval=args.lease_interval,
        )
    finally:
        if metrics is not None:
            metrics.shutdown()
        if close_metrics is not None:
            close_metrics()
    log.info("projectors stopped")
    return 0
