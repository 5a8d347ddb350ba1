"""The projector keeps following the log through failures (backoff), and stops promptly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from projections.runner import Projector
from tests.support.api import sqlite_env


class FlakyProjector(Projector):
    """Fails its first ``failures`` rounds, as while the database restarts."""

    def __init__(self, env: dict[str, str], failures: int) -> None:
        super().__init__(env)
        self.failures = failures
        self.rounds: list[float] = []

    def run_once(self, stop: threading.Event | None = None, upto: int | None = None) -> int:
        self.rounds.append(time.monotonic())
        if len(self.rounds) <= self.failures:
            raise ConnectionError("database restarting")
        return super().run_once(stop, upto)


def test_failures_are_retried_with_growing_waits(tmp_path: Path) -> None:
    stop = threading.Event()
    with FlakyProjector(sqlite_env(tmp_path), failures=3) as projector:
        thread = threading.Thread(target=projector.run_forever, args=(stop, 0.01))
        thread.start()
        deadline = time.monotonic() + 10
        while len(projector.rounds) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    gaps = [b - a for a, b in zip(projector.rounds, projector.rounds[1:4], strict=False)]
    assert len(projector.rounds) >= 5
    # interval * 2, * 4, * 8 after the first, second and third failure.
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08


def test_stop_ends_the_backoff_at_once(tmp_path: Path) -> None:
    stop = threading.Event()
    with FlakyProjector(sqlite_env(tmp_path), failures=1000) as projector:
        thread = threading.Thread(target=projector.run_forever, args=(stop, 5.0))
        thread.start()
        while not projector.rounds:
            time.sleep(0.01)
        started = time.monotonic()
        stop.set()
        thread.join(5)
        assert not thread.is_alive() and time.monotonic() - started < 1.0
