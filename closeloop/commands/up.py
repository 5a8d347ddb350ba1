"""``closeloop up``: the whole loop in one terminal (Temporal dev server, worker, relay,
projectors, API + dashboard), state in the var directory, Ctrl-C stops it cleanly.

Every child, the Temporal dev server included, is started again with backoff when it
exits: while Temporal is away intake, reads and audit keep answering (the relay holds
its position and catches up once the server is back on the same port and database).
The var directory and everything in it is private to the user (0700 / 0600).
"""

from __future__ import annotations

import argparse

from api.catalogue import Lang, role_label, t
from closeloop.commands import add_output_options

SLA_PROFILES = ("standard", "demo", "drill")
RESTARTS_IN_A_ROW = 8  # with backoff doubling to 30 s: about three minutes of tries
STACK_FILE = "stack.json"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "up",
        help="run the whole stack locally (Temporal dev server, worker, relay, projectors, API)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="load a small realistic data set and use the demo SLA profile (minutes)",
    )
    parser.add_argument(
        "--sla-profile",
        choices=SLA_PROFILES,
        help="standard (real windows, default), demo (minutes) or drill (seconds)",
    )
    parser.add_argument(
        "--port", type=int, help="API port (default 8000, or the next free port above it)"
    )
    parser.add_argument(
        "--temporal-port", type=int, default=7233, help="Temporal frontend port (default 7233)"
    )
    parser.add_argument("--headless", action="store_true", help="no Temporal UI")
    add_output_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    import sys
    import time

    from closeloop.dev.embedded import (
        ProgressMonitor,
        StackConfig,
        StackPorts,
        build_supervisor,
        component_specs,
        ensure_dev_tokens,
    )
    from closeloop.dev.supervisor import (
        PRIVATE_UMASK,
        ComponentFailedError,
        RestartPolicy,
        format_status,
        make_private,
    )
    from closeloop.ports import port_is_free
    from closeloop.settings import get_settings

    settings = get_settings()
    lang = args.lang
    profile = args.sla_profile or ("demo" if args.demo else settings.sla_profile)
    var_dir = settings.var_dir.resolve()
    os.umask(PRIVATE_UMASK)  # what we and our children create is the user's alone
    var_dir.mkdir(parents=True, exist_ok=True)
    make_private(var_dir)  # and what an earlier run left readable
    if args.port is not None and not port_is_free(args.port):
        print(t("cli.port-in-use", lang, port=args.port), file=sys.stderr)
        return 2
    ports = StackPorts.choose(api=args.port or settings.api_port, temporal=args.temporal_port)
    config = StackConfig(var_dir=var_dir, ports=ports, sla_profile=profile, ui=not args.headless)
    child_settings = settings.model_copy(update={"var_dir": var_dir, "sla_profile": profile})
    tokens = ensure_dev_tokens(child_settings)

    def on_signal(signum: int, _frame: object) -> None:
        # SIGINT is set explicitly too: a shell may start us with it ignored (``&``).
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor = build_supervisor(config)
    tty = sys.stdout.isatty()
    try:
        print(f"closeloop up · SLA {profile} · var {var_dir}", flush=True)
        for spec in component_specs(config):
            started = time.monotonic()
            print(f"  ▶ {spec.name:<10}", end="", flush=True)
            supervisor.start(spec)
            print(f" ✔ {time.monotonic() - started:4.1f}s", flush=True)
        if args.demo:
            from closeloop.dev.demo import load_demo_data

            loaded = load_demo_data(config.api_url, tokens, var_dir)
            print(f"  ▶ {t('cli.demo-data', lang, loaded=loaded)}", flush=True)
        write_stack_file(config, supervisor.pids())
        print(ready_line(config, tokens, lang), flush=True)
        monitor = ProgressMonitor(config.child_env() | child_settings.event_store_env())
        last_print = 0.0
        while True:
            time.sleep(0.5)
            revived = supervisor.revive(policy=RestartPolicy(limit=RESTARTS_IN_A_ROW))
            for child in revived:
                restarted = t("cli.restarted", lang, name=child.name, starts=child.starts)
                print(f"\n  ⟳ {restarted}", flush=True)
            if revived:
                write_stack_file(config, supervisor.pids())
            now = time.monotonic()
            if tty or now - last_print >= 30:
                progress = monitor.read()
                line = format_status(
                    supervisor.states(),
                    events=progress.events,
                    relay_lag=progress.relay_lag,
                    projection_lag=progress.projection_lag,
                )
                print(("\r\x1b[2K" + line) if tty else line, end="" if tty else "\n", flush=True)
                last_print = now
    except KeyboardInterrupt:
        pass
    except ComponentFailedError as error:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"\n✘ {error}", file=sys.stderr, flush=True)
        supervisor.stop_all()
        return 1
    # A second Ctrl-C must not cut the clean stop short (stop_all SIGKILLs laggards).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("\n" + t("cli.stopping", lang), flush=True)
    supervisor.stop_all()
    (var_dir / STACK_FILE).unlink(missing_ok=True)
    print(t("cli.stopped", lang, var_dir=var_dir), flush=True)
    return 0


def write_stack_file(config: object, pids: dict[str, int] | None = None) -> None:
    """Where the running stack answers, for ``closeloop simulate`` and other local tools
    (and each component's process id, rewritten after a restart)."""
    import json
    import os

    from closeloop.dev.embedded import StackConfig

    assert isinstance(config, StackConfig)
    data = {
        "pid": os.getpid(),
        "api_url": config.api_url,
        "temporal_address": config.temporal_address,
        "temporal_ui": config.ui_url if config.ui else None,
        "sla_profile": config.sla_profile,
        "pids": pids or {},
    }
    (config.var_dir / STACK_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")


def ready_line(config: object, tokens: dict[str, object], lang: Lang = "zh") -> str:
    """The one line a newcomer needs: where to click and which tokens to use."""
    from closeloop.dev.embedded import StackConfig

    assert isinstance(config, StackConfig)
    departments = tokens.get("departments") or {}
    assert isinstance(departments, dict)
    parts = [
        t("cli.ready", lang),
        t("cli.api-docs", lang, url=f"{config.api_url}/docs"),
        t("cli.workbench", lang, url=f"{config.api_url}/workbench"),
        t("cli.dashboard", lang, url=f"{config.api_url}/dashboard"),
        t("cli.temporal-ui", lang, url=config.ui_url)
        if config.ui
        else t("cli.temporal-ui-off", lang),
        f"{role_label('operator', lang)} {tokens['operator']}",
        f"{role_label('supervisor', lang)} {tokens['supervisor']}",
        *(f"{code} {token}" for code, token in departments.items()),
        t("cli.tokens-in", lang, path=config.var_dir / "dev-tokens.json"),
        t("cli.ctrl-c", lang),
    ]
    return " · ".join(parts)
