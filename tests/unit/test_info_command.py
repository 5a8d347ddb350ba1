"""``closeloop info`` names the years the business calendar's holiday data covers and
the years deadlines set now reach without it (with the log's warning, once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from domain.policies import load_policies
from domain.policies.coverage import calendar_coverage


def test_info_shows_the_calendar_coverage(tmp_path: Path) -> None:
    env = {**os.environ, "CLOSELOOP_VAR_DIR": str(tmp_path), "CLOSELOOP_SLA_PROFILE": "standard"}
    done = subprocess.run(
        [sys.executable, "-m", "closeloop.cli", "info"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    calendar = json.loads(done.stdout)["calendar"]
    expected = calendar_coverage(load_policies("standard").sla, datetime.now(UTC))
    assert calendar["covered_years"] == [2026] == expected.covered_years
    assert calendar["years_without_holiday_data"] == expected.uncovered_years
    assert calendar["deadlines_reach"] == expected.horizon.date().isoformat()
    warnings = done.stderr.count("calendar.year_not_covered")
    assert warnings == (1 if expected.uncovered_years else 0), done.stderr
