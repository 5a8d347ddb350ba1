"""``closeloop what-if`` as a real process on SQLite and PostgreSQL: the hand-computed
period of ``tests/unit/test_whatif.py``, as JSON and as a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.application import GrievanceApp
from tests.conftest import FakeClock, backend_env, pg_url
from tests.unit.test_whatif import ENF, MONDAY_0900, PROPOSAL, hand_period

ROOT = Path(__file__).resolve().parents[2]


def closeloop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "closeloop.cli", "what-if", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_what_if_from_the_command_line(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    env = {**os.environ, "CLOSELOOP_VAR_DIR": str(var), "CLOSELOOP_LOG_LEVEL": "WARNING"}
    env.pop("CLOSELOOP_DATABASE_URL", None)
    if backend == "sqlite":
        store = {"PERSISTENCE_MODULE": "eventsourcing.sqlite"}
        store["SQLITE_DBNAME"] = str(var / "events.sqlite")
    else:
        store = backend_env("postgres", tmp_path, request)
        env["CLOSELOOP_DATABASE_URL"] = pg_url(store["POSTGRES_SCHEMA"])
    clock = FakeClock(MONDAY_0900)
    app = GrievanceApp(store, clock=clock)
    try:
        hand_period(app, clock)
        written = app.recorder.max_notification_id()
    finally:
        app.close()
    proposal = tmp_path / "proposal.json"
    rules = [{"category": "UM", "street": "xueyuanlu", "lead": "street"}]
    proposal.write_text(json.dumps({"sla": PROPOSAL, "routing": {"rules": rules}}), "utf-8")
    period = ["--from", "2026-11-23", "--to", "2026-11-23", "--proposal", str(proposal)]

    done = closeloop(env, *period, "--json")
    assert done.returncode == 0, done.stderr
    rows = {i["department"]: i for i in json.loads(done.stdout)["items"]}
    enf = rows[ENF]
    # Judged now (the wall clock): G3's resolve deadline (Dec 2) may or may not have passed.
    assert (enf["now"]["met"], enf["now"]["missed"] + enf["now"]["pending"]) == (4, 2)
    assert [enf["proposed"][k] for k in ("met", "missed", "pending")] == [2, 4, 0]
    assert enf["proposed"]["response_rate"] == 0.3333

    text = closeloop(env, *period)
    assert text.returncode == 0, text.stderr
    assert "不写入任何事件" in text.stdout and "响应率" in text.stdout
    assert "33.3%" in text.stdout and "合计" in text.stdout
    assert "4 件按规则派出，其中 3 件将改派他处" in text.stdout

    bad = closeloop(env, *period, "--sla-profile", "nope")
    assert bad.returncode == 2 and "sla_profile" in bad.stderr and "standard" in bad.stderr

    app = GrievanceApp(store)
    try:
        assert app.recorder.max_notification_id() == written
    finally:
        app.close()
