"""``closeloop simulate``: load and behaviour simulation against a running stack (HTTP only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from api.catalogue import t
from closeloop.commands import add_output_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="simulate citizens, operators and departments against a running stack over HTTP",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="grievances per second (1)")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of filing new grievances (30)"
    )
    parser.add_argument("--seed", type=int, default=12345, help="random seed (12345)")
    parser.add_argument(
        "--base-url",
        help="API base URL (default: the running `closeloop up` from <var>/stack.json, "
        "else http://127.0.0.1:<CLOSELOOP_API_PORT>)",
    )
    parser.add_argument(
        "--tokens", help="JSON file of tokens (default <CLOSELOOP_VAR_DIR>/dev-tokens.json)"
    )
    parser.add_argument("--operator-token", help="overrides the file's operator token")
    parser.add_argument("--supervisor-token", help="overrides the file's supervisor token")
    parser.add_argument(
        "--department-token",
        action="append",
        default=[],
        metavar="CODE=TOKEN",
        help="a department's token (repeatable; replaces the file's departments)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=120.0,
        help="seconds to wait for open grievances after filing stops (120)",
    )
    parser.add_argument(
        "--think", type=float, default=1.0, help="mean department delay, seconds (1.0)"
    )
    parser.add_argument(
        "--late", type=float, default=6.0, help="a late department's delay, seconds (6)"
    )
    add_output_options(parser, "print the summary as JSON")
    parser.set_defaults(handler=run)


def running_api_url(var_dir: Path, port: int) -> str:
    """The API of the ``closeloop up`` running on this var directory, if any."""
    import json

    try:
        url = json.loads((var_dir / "stack.json").read_text(encoding="utf-8"))["api_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"http://127.0.0.1:{port}"
    return str(url)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from closeloop.dev.simulator import (
        Behaviour,
        SimConfig,
        Simulator,
        format_summary,
        load_dev_tokens,
    )
    from closeloop.settings import get_settings

    settings = get_settings()
    tokens_path = args.tokens or str(settings.var_dir / "dev-tokens.json")
    try:
        tokens = load_dev_tokens(Path(tokens_path))
    except (OSError, ValueError):
        tokens = {}
    departments = dict(tokens.get("departments") or {})
    if args.department_token:
        departments = {}
        for item in args.department_token:
            code, sep, token = item.partition("=")
            if not sep:
                print(t("cli.sim-bad-department-token", args.lang, item=item), file=sys.stderr)
                return 2
            departments[code] = token
    operator = args.operator_token or tokens.get("operator")
    supervisor = args.supervisor_token or tokens.get("supervisor")
    if not operator or not supervisor or not departments:
        print(t("cli.sim-no-tokens", args.lang, path=tokens_path), file=sys.stderr)
        return 2
    config = SimConfig(
        base_url=args.base_url or running_api_url(settings.var_dir, settings.api_port),
        operator_token=operator,
        supervisor_token=supervisor,
        department_tokens=departments,
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        drain=args.drain,
        behaviour=Behaviour(think=args.think, late=args.late),
        lang=args.lang,
    )
    tty = sys.stderr.isatty()

    def progress(line: str) -> None:
        print(("\r\x1b[2K" + line) if tty else line, end="" if tty else "\n", file=sys.stderr)
        sys.stderr.flush()

    tally = asyncio.run(Simulator(config).run(progress))
    if tty:
        print(file=sys.stderr)
    summary = tally.summary()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(format_summary(summary, args.lang))
    return 1 if tally.server_errors or tally.transport_errors or tally.lost else 0
