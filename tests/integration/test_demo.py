"""`make demo` works end to end: lists fill, and stopping it leaves no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_fills_lists_and_stops_everything_it_started(tmp_path: Path) -> None:
    """A bounded demo run shows members in the lists and ends with none of its children alive."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.demo",
            "--duration-s",
            "25",
            "--rate",
            "50",
            "--profiles",
            "500",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    members = [int(n) for n in re.findall(r"^\s+.+?\s+(\d+) members$", out, re.MULTILINE)]
    assert max(members, default=0) > 0, out[-2000:]
    pids = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)", out)]
    assert {"worker", "generator"} <= set(re.findall(r"started (\w+) \(pid", out))
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and _is_zombie_free(pid)]
    assert alive == [], f"left running: {alive}"
    assert "demo stopped; nothing left running" in out


def _is_zombie_free(pid: int) -> bool:
    """True when /proc shows a live (not zombie) process with this pid."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status and str(os.getpid()) != str(pid)
