"""The ``closeloop`` command. Each subcommand lives in its own module under
``closeloop/commands/`` and exposes ``register(subparsers)``; this file only finds them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import closeloop.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="closeloop",
        description="closeloop: the 12345 grievance collect → resolve → feedback loop.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(closeloop.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"closeloop.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What closeloop writes (event store, tokens, logs) holds names and phone numbers:
    # private to its user, also when a command runs outside ``closeloop up``.
    os.umask(0o077)
    result = args.handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
