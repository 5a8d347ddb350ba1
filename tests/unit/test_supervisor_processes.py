"""The supervisor of ``closeloop up`` with small real child processes (no Temporal)."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from closeloop.dev.embedded import StackConfig, StackPorts, component_specs, temporal_argv
from closeloop.dev.supervisor import (
    ComponentFailedError,
    ComponentSpec,
    Supervisor,
    format_status,
    free_port,
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
    try:
        sup.start(ComponentSpec("w", python(SLEEPER)))
        sup.start(ComponentSpec("core", python(SLEEPER)))
        assert sup.revive(fatal={"core"}) == []
        sup.kill("w")
        revived = sup.revive(fatal={"core"}, limit=2)
        assert [c.name for c in revived] == ["w"] and revived[0].alive()
        sup.kill("w")
        sup.revive(fatal={"core"}, limit=2)  # third start
        sup.kill("w")
        with pytest.raises(ComponentFailedError, match="keeps exiting"):
            sup.revive(fatal={"core"}, limit=2)
        sup.start(ComponentSpec("w", python(SLEEPER)))
        sup.kill("core")
        with pytest.raises(ComponentFailedError, match="core"):
            sup.revive(fatal={"core"})
    finally:
        sup.stop_all(timeout=2)
