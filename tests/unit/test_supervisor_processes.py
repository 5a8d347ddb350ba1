"""The supervisor of ``closeloop up`` with small real child processes (no Temporal)."""

from __future__ import annotations

import signal
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from closeloop.dev.embedded import StackConfig, StackPorts, component_specs, temporal_argv
from closeloop.dev.supervisor import (
    ComponentFailedError,
    ComponentSpec,
    RestartPolicy,
    Supervisor,
    format_status,
    free_port,
    make_private,
    port_is_free,
)

SLEEPER = "import time\nwhile True: time.sleep(0.05)"


def on_term_write(path: Path, name: str) -> str:
    """A child that appends its name to ``path`` when asked to stop, then exits 0."""
    return (
        "import signal, sys, time\n"
        f"def stop(*_):\n    open({str(path)!r}, 'a').write({name!r} + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_free_port_prefers_the_given_port_and_skips_a_taken_one() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        assert not port_is_free(taken)
        chosen = free_port(taken)
        assert chosen != taken
        assert port_is_free(chosen)
    assert free_port(None, avoid=[chosen]) != chosen


def test_ports_for_a_stack_are_distinct() -> None:
    ports = StackPorts.choose(api=None, temporal=None, ui=None)
    values = [
        ports.api,
        ports.temporal,
        ports.temporal_http,
        ports.temporal_ui,
        ports.temporal_metrics,
    ]
    assert len(set(values)) == 5


def test_start_waits_for_the_probe_and_stop_all_goes_in_reverse_order(tmp_path: Path) -> None:
    stops = tmp_path / "stops.txt"
    ready_file = tmp_path / "b-ready"
    sup = Supervisor(tmp_path / "logs")
    try:
        sup.start(ComponentSpec("a", python(on_term_write(stops, "a"))))
        code_b = f"open({str(ready_file)!r}, 'w').close()\n" + on_term_write(stops, "b")
        sup.start(ComponentSpec("b", python(code_b), ready=ready_file.exists, ready_timeout=10))
        assert ready_file.exists()
        assert sup.states() == {"a": "up", "b": "up"}
    finally:
        codes = sup.stop_all(timeout=5)
    assert stops.read_text().split() == ["b", "a"]
    assert codes == {"b": 0, "a": 0}
    assert "ready" in (tmp_path / "logs" / "a.log").read_text()


def test_a_child_that_exits_fails_fast_with_its_log(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    spec = ComponentSpec(
        "broken",
        python("import sys; print('config is wrong'); sys.exit(3)"),
        ready=lambda: False,
        ready_timeout=30,
    )
    started = time.monotonic()
    with pytest.raises(ComponentFailedError) as failure:
        sup.start(spec)
    assert time.monotonic() - started < 10
    assert "exited with status 3" in str(failure.value)
    assert "config is wrong" in str(failure.value)
    assert [c.name for c in sup.exited()] == ["broken"]


def test_a_child_never_ready_times_out(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    try:
        with pytest.raises(ComponentFailedError, match="not ready in time"):
            sup.start(
                ComponentSpec("slow", python(SLEEPER), ready=lambda: False, ready_timeout=0.5)
            )
    finally:
        sup.stop_all(timeout=2)


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('x', flush=True)\n" + SLEEPER
    )
    marker = tmp_path / "logs" / "stubborn.log"
    sup = Supervisor(tmp_path / "logs")
    sup.start(
        ComponentSpec(
            "stubborn",
            python(code),
            ready=lambda: marker.exists() and "x" in marker.read_text(),
            ready_timeout=10,
        )
    )
    started = time.monotonic()
    code_out = sup.stop("stubborn", timeout=0.5)
    assert code_out == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_kill_and_restart(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    try:
        first = sup.start(ComponentSpec("w", python(SLEEPER)))
        sup.kill("w")
        assert not first.alive()
        assert first.process.returncode == -signal.SIGKILL
        assert sup.states()["w"].startswith("exited")
        second = sup.restart("w")
        assert second.alive() and second.pid != first.pid
        assert second.starts == 2
    finally:
        sup.stop_all(timeout=2)


def test_status_line_names_every_component_and_the_lags() -> None:
    line = format_status(
        {"temporal": "up", "worker": "starting", "api": "exited(1)"},
        events=120,
        relay_lag=3,
        projection_lag=0,
    )
    assert "temporal ✔" in line and "worker …" in line and "api ✘ exited(1)" in line
    assert "events 120" in line and "relay lag 3" in line and "projection lag 0" in line


def test_stack_components_share_one_settings_env(tmp_path: Path) -> None:
    ports = StackPorts.choose(api=None, temporal=None, ui=None)
    config = StackConfig(var_dir=tmp_path, ports=ports, sla_profile="drill", ui=False)
    specs = component_specs(config)
    assert [s.name for s in specs] == ["temporal", "worker", "relay", "projector", "api"]
    for spec in specs:
        assert spec.env["CLOSELOOP_SLA_PROFILE"] == "drill"
        assert spec.env["CLOSELOOP_TEMPORAL_ADDRESS"] == f"127.0.0.1:{ports.temporal}"
        assert spec.env["CLOSELOOP_VAR_DIR"] == str(tmp_path)
    argv = temporal_argv(config)
    assert "--headless" in argv
    assert str(tmp_path / "temporal.db") in argv
    assert "journal_mode=wal" in argv and "synchronous=normal" in argv
    assert str(ports.api) in specs[-1].argv


def test_children_stop_when_the_supervisor_dies(tmp_path: Path) -> None:
    """A supervisor killed outright (no clean stop) leaves no orphaned component behind."""
    import os
    import subprocess

    pid_file = tmp_path / "child.pid"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from closeloop.dev.supervisor import ComponentSpec, Supervisor\n"
        f"sup = Supervisor(Path({str(tmp_path / 'logs')!r}))\n"
        f"child = sup.start(ComponentSpec('w', {python(SLEEPER)!r}))\n"
        f"Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    parent.kill()
    parent.wait(10)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie is gone for our purpose (it waits for init to reap it).
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
        return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"

    deadline = time.monotonic() + 10
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child_pid)


def test_revive_restarts_a_crashed_child_until_the_limit(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    now_policy = RestartPolicy(limit=2, backoff_initial=0)
    try:
        sup.start(ComponentSpec("w", python(SLEEPER)))
        sup.start(ComponentSpec("core", python(SLEEPER)))
        assert sup.revive(fatal={"core"}) == []
        sup.kill("w")
        revived = sup.revive(fatal={"core"}, policy=now_policy)
        assert [c.name for c in revived] == ["w"] and revived[0].alive()
        sup.kill("w")
        sup.revive(fatal={"core"}, policy=now_policy)  # third start
        sup.kill("w")
        with pytest.raises(ComponentFailedError, match="keeps exiting"):
            sup.revive(fatal={"core"}, policy=now_policy)
        sup.start(ComponentSpec("w", python(SLEEPER)))
        sup.kill("core")
        with pytest.raises(ComponentFailedError, match="core"):
            sup.revive(fatal={"core"})
    finally:
        sup.stop_all(timeout=2)


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(backoff_initial=0.5, backoff_max=4)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_revive_waits_out_the_backoff_before_starting_again(tmp_path: Path) -> None:
    """A crashed child is not started again at once but after the backoff, with a
    longer wait after each failure in a row; a child that stayed up starts afresh."""
    policy = RestartPolicy(limit=5, backoff_initial=0.4, backoff_max=10, stable_after=30)
    sup = Supervisor(tmp_path / "logs")
    try:
        first = sup.start(ComponentSpec("w", python(SLEEPER)))
        sup.kill("w")
        assert sup.revive(policy=policy) == []  # noticed, scheduled in 0.4 s
        assert sup.states()["w"].startswith("exited")
        time.sleep(0.5)
        (second,) = sup.revive(policy=policy)
        assert second.alive() and second.pid != first.pid and second.failures == 1
        sup.kill("w")
        assert sup.revive(policy=policy) == []  # second failure in a row: 0.8 s
        time.sleep(0.5)
        assert sup.revive(policy=policy) == []
        time.sleep(0.4)
        (third,) = sup.revive(policy=policy)
        assert third.failures == 2
        third.started_at -= 31  # as if it had stayed up past stable_after
        sup.kill("w")
        assert sup.revive(policy=policy) == []
        assert sup.children["w"].failures == 1  # forgiven: back to the first delay
    finally:
        sup.stop_all(timeout=2)


def test_a_restart_that_never_gets_ready_counts_as_a_failure(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    flag.touch()
    policy = RestartPolicy(limit=1, backoff_initial=0)
    sup = Supervisor(tmp_path / "logs")
    try:
        sup.start(ComponentSpec("w", python(SLEEPER), ready=flag.exists, ready_timeout=0.5))
        flag.unlink()  # from now on the probe never answers
        sup.kill("w")
        assert sup.revive(policy=policy) == []  # started, not ready in time, stopped
        assert not sup.children["w"].alive()
        with pytest.raises(ComponentFailedError, match="keeps exiting"):
            sup.revive(policy=policy)
    finally:
        sup.stop_all(timeout=2)


def test_children_create_private_files_and_the_var_dir_is_made_private(tmp_path: Path) -> None:
    """Children run with umask 077; files created otherwise are tightened after a start."""
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    loose = var / "old.sqlite"
    loose.write_text("x")
    loose.chmod(0o644)
    (var / "blobs").mkdir(mode=0o755)
    later = var / "later.db"
    writer = (
        f"import time\nopen({str(var / 'made-by-child.db')!r}, 'w').write('x')\n"
        f"time.sleep(0.3)\nopen({str(later)!r}, 'w').write('x')\n"
        "while True: time.sleep(0.05)"
    )
    sup = Supervisor(var / "logs", private_dir=var)
    try:
        sup.start(ComponentSpec("w", python(writer), ready=(var / "made-by-child.db").exists))
        modes = {
            p.relative_to(var).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in var.rglob("*")
        }
        assert modes == {
            "old.sqlite": 0o600,
            "blobs": 0o700,
            "logs": 0o700,
            "logs/w.log": 0o600,
            "made-by-child.db": 0o600,
        }
        assert stat.S_IMODE(var.stat().st_mode) == 0o700
        # Created by the child after its start, with nobody tightening it: its umask.
        deadline = time.monotonic() + 10
        while not later.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stat.S_IMODE(later.stat().st_mode) == 0o600
        assert make_private(var) == []
    finally:
        sup.stop_all(timeout=2)
