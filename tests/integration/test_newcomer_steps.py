"""The README's "Running the worker" steps work as written, from a fresh broker and sandbox.

The test runs the README's marked shell blocks verbatim in one bash, feeding it the steps,
waiting for a list to fill, then the stop steps; only ports and folders come from the
environment, as the README offers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.kafka_support import wait_for
from worker.kafka.localbroker import free_port, stop_by_pid_file

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def readme_block(marker: str) -> str:
    """The shell code between `<!-- marker -->` and `<!-- /marker -->` in README.md."""
    readme = (REPO / "README.md").read_text()
    found = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```\n<!-- /{marker} -->", readme, re.S)
    assert found is not None, f"README.md has no {marker} block"
    return found.group(1)


def most_members(sandbox_port: int) -> int:
    """The largest list's member count in the sandbox (0 while it does not answer)."""
    url = f"http://127.0.0.1:{sandbox_port}/_sandbox/state"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            state = json.loads(response.read())
    except OSError:
        return 0
    return max((len(members) for members in state["members"].values()), default=0)


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name ([] when there is no such process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent to reap it has stopped)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid`."""
    pids = (int(path.name) for path in Path("/proc").iterdir() if path.name.isdigit())
    return [pid for pid in pids if alive(pid) and int(_stat(pid)[2]) == pgid]


def test_the_readme_newcomer_steps_fill_a_list_and_stop_cleanly(tmp_path: Path) -> None:
    """The README's steps, run as written, fill a sandbox list; its stop steps end everything."""
    sandbox_port, run_dir = free_port(), tmp_path / "kafka"
    env = {
        **os.environ,
        "KAFKA_PORT": str(free_port()),
        "SANDBOX_PORT": str(sandbox_port),
        "METRICS_PORT": str(free_port()),
        "LOG_DIR": str(tmp_path / "logs"),
        "KAFKA_RUN_DIR": str(run_dir),
    }
    with (tmp_path / "shell.out").open("wb") as out:
        shell = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            start_new_session=True,  # its own group: the cleanup below reaches all its jobs
        )
    assert shell.stdin is not None
    try:
        shell.stdin.write(readme_block("newcomer-steps").encode())
        shell.stdin.flush()
        wait_for(lambda: most_members(sandbox_port) > 0, 240, "a list with members")
        broker_pid = int((run_dir / "kafka.pid").read_text())
        shell.stdin.write(readme_block("newcomer-stop").encode())
        shell.stdin.close()
        assert shell.wait(180) == 0, (tmp_path / "shell.out").read_text()[-3000:]
        assert group_members(shell.pid) == []
        assert not alive(broker_pid)
    finally:
        if not shell.stdin.closed:
            shell.stdin.close()
        if shell.poll() is None or group_members(shell.pid):
            os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(30)
        stop_by_pid_file(run_dir)
