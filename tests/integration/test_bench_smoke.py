"""`make bench` stays runnable: every scenario runs in quick mode and writes results of the
documented shape (figures are not checked: this 2-core machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.run import SCENARIOS

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"unit", "runs", "median", "min", "max", "target", "pass"}


def test_every_scenario_writes_runs_median_min_max_target_and_verdict(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A quick run reports, per scenario metric, one run, its summary, the target and pass/fail."""
    output = tmp_path / "bench-results.json"
    command = [sys.executable, "-m", "tests.bench.run", "--quick", "--bootstrap", kafka_bootstrap]
    command += ["--output", str(output), "--work-dir", str(tmp_path / "work")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert set(report["scenarios"]) == set(SCENARIOS)
    for name, scenario in report["scenarios"].items():
        assert isinstance(scenario["pass"], bool), name
        for metric_name, metric in scenario["metrics"].items():
            assert set(metric) - {"note"} == METRIC_KEYS, (name, metric_name)
            assert len(metric["runs"]) == 1, (name, metric_name)
            if metric["target"] is not None and metric["median"] is not None:
                assert isinstance(metric["pass"], bool), (name, metric_name)
    assert "| scenario | metric |" in done.stdout
