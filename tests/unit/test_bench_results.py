"""Every committed benchmark result carries its ``summary``: {figure: {value, unit, baseline,
ratio}}, the ratio being value ÷ the same-run baseline (None only without a baseline)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
FILES = sorted(RESULTS.glob("*.json"))


def test_every_benchmark_script_has_its_result_file() -> None:
    scripts = {p.stem.removeprefix("bench_") for p in RESULTS.parent.glob("bench_*.py")}
    assert scripts and scripts <= {p.stem for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_result_has_a_summary_of_figures_with_baselines(path: Path) -> None:
    summary = json.loads(path.read_text(encoding="utf-8")).get("summary")
    assert isinstance(summary, dict) and summary, f"{path.name}: no summary"
    for name, figure in summary.items():
        assert set(figure) == {"value", "unit", "baseline", "ratio"}, (path.name, name)
        assert isinstance(figure["value"], int | float) and isinstance(figure["unit"], str)
        if figure["baseline"]:
            assert math.isclose(figure["ratio"], figure["value"] / figure["baseline"], rel_tol=1e-3)
        else:
            assert figure["ratio"] is None
