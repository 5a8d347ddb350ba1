"""The wheel carries the dashboard's chart library: nothing is fetched at build or run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "api" / "static" / "vendor"
PACKAGES = ("domain", "workflows", "projections", "api", "closeloop")


def test_chart_library_is_vendored_with_its_licence() -> None:
    script = (VENDOR / "chart.umd.min.js").read_text(encoding="utf-8")
    assert script.startswith("/*!\n * Chart.js v4.")
    assert "MIT License" in (VENDOR / "chart.js.LICENSE.md").read_text(encoding="utf-8")


def test_build_files_fetch_nothing_from_npm() -> None:
    for name in ("Makefile", ".ci/run", "deploy/Dockerfile"):
        assert "npm" not in (ROOT / name).read_text(encoding="utf-8"), name
    assert "api/static/vendor" not in (ROOT / ".gitignore").read_text(encoding="utf-8")


def test_wheel_contains_the_chart_library(tmp_path: Path) -> None:
    # Build from a copy, so the shared checkout gets no build/ or egg-info litter.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("closeloop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "api/static/vendor/chart.umd.min.js" in names
        assert "api/static/vendor/chart.js.LICENSE.md" in names
        script = archive.read("api/static/vendor/chart.umd.min.js")
    assert script == (VENDOR / "chart.umd.min.js").read_bytes()
