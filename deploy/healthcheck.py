#!/usr/bin/env python3
"""Container health check for the closeloop image (Docker ``HEALTHCHECK``).

The image runs one role per container. Only ``closeloop api`` serves HTTP, so the
check asks the API's ``/healthz`` when PID 1 is the api role and passes for the
roles without a port (worker, relay, project): for them the container is alive
exactly as long as the process is. Standard library only; exit 0 = healthy.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 2.0


def role_of(argv: list[str]) -> str | None:
    """The closeloop subcommand in a command line (``closeloop api`` → ``api``)."""
    for index, arg in enumerate(argv):
        if Path(arg).name == "closeloop" and index + 1 < len(argv):
            return argv[index + 1]
    return None


def pid1_argv(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    raw = proc.read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def probe(url: str, timeout: float = TIMEOUT_SECONDS) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    command = pid1_argv() if argv is None else argv
    if role_of(command) != "api":
        return 0
    port = env.get("CLOSELOOP_API_PORT", "8000")
    return 0 if probe(f"http://127.0.0.1:{port}/healthz") else 1


if __name__ == "__main__":
    sys.exit(main())
