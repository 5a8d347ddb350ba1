"""Stand-ins for ``closeloop worker`` / ``closeloop relay`` while those commands are absent.

``closeloop up`` prefers the real subcommands (``closeloop/commands/worker.py`` and
``relay.py``); when a checkout does not have them, it runs this module instead, which
wires the same pieces (``workflows.worker.running_worker``, ``workflows.relay.Relay``)
from settings and runs until SIGINT/SIGTERM. ``python -m closeloop.embedded_runners
worker|relay``.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def _until_signalled() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def run_worker() -> None:
    from closeloop.bootstrap import build_app
    from closeloop.logging import configure_logging
    from closeloop.settings import get_settings
    from closeloop.temporal import connect_client
    from workflows.worker import running_worker

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    stop = await _until_signalled()
    app = build_app(settings)
    client = await connect_client(settings)
    try:
        async with running_worker(client, app, task_queue=settings.temporal_task_queue):
            await stop.wait()
    finally:
        app.close()


async def run_relay() -> None:
    from closeloop.bootstrap import build_app
    from closeloop.logging import configure_logging
    from closeloop.settings import get_settings
    from closeloop.temporal import connect_client
    from workflows.relay import Relay, tracking_recorder

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    stop = await _until_signalled()
    app = build_app(settings)
    relay = Relay(
        app,
        tracking_recorder(settings.event_store_env()),
        lambda: connect_client(settings),
        task_queue=settings.temporal_task_queue,
        poll_interval=0.2,
    )
    try:
        await relay.run(stop)
    finally:
        app.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        asyncio.run(run_worker())
    elif argv[:1] == ["relay"]:
        asyncio.run(run_relay())
    else:
        print("usage: python -m closeloop.embedded_runners worker|relay", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
