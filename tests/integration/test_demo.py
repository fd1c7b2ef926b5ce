"""`make demo` works end to end: lists fill, and stopping it leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from tests.kafka_support import wait_for

pytestmark = pytest.mark.integration


def test_demo_fills_lists_and_stops_everything_it_started(tmp_path: Path) -> None:
    """A bounded demo run shows members in the lists and ends with none of its children alive."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.commands.demo",
            "--duration-s",
            "45",  # the worker's start-up waits one 20 s budget window to create its lists
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


class Demo:
    """`python -m worker.commands.demo` in its own process group, as a terminal runs a job."""

    def __init__(self, work: Path, stdout: int | IO[bytes]) -> None:
        self.work = work
        command = [sys.executable, "-m", "worker.commands.demo", "--rate", "50"]
        command += ["--profiles", "500"]
        with (work / "demo.err").open("wb") as err:
            self.proc = subprocess.Popen(
                [*command, "--work-dir", str(work)],
                stdout=stdout,
                stderr=err,
                start_new_session=True,  # the group a terminal's Ctrl-C goes to
            )

    def children(self) -> dict[str, int]:
        """The pids the demo wrote to its work folder, by name."""
        lines = (self.work / "pids").read_text().split("\n")
        return {name: int(pid) for name, pid in (line.split() for line in lines if line)}

    def ctrl_c(self) -> int:
        """SIGINT to the whole group, as the terminal's Ctrl-C; return the demo's exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(180)

    def kill(self) -> None:
        """Clean up after a failed test: the demo and every child it listed."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if (self.work / "pids").exists():
            for pid in self.children().values():
                if _is_zombie_free(pid):
                    os.kill(pid, signal.SIGKILL)


def _read_lines(stream: IO[bytes], lines: list[str]) -> None:
    for raw in stream:
        lines.append(raw.decode(errors="replace").rstrip("\n"))


def test_ctrl_c_stops_every_child_in_order_and_the_demo_exits_0(tmp_path: Path) -> None:
    """Ctrl-C reaches only the demo, which stops generator, worker, sandbox, broker, exits 0."""
    demo = Demo(tmp_path, subprocess.PIPE)
    assert demo.proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(demo.proc.stdout, lines), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "demo running (Ctrl-C stops it)" in lines, 180, "the demo to run")
        children = demo.children()
        assert demo.ctrl_c() == 0, "\n".join(lines[-40:])
        assert [pid for pid in children.values() if _is_zombie_free(pid)] == []
        stopped = [re.sub(r"stopped (\w+) .*", r"\1", ln) for ln in lines if "stopped " in ln]
        order = [name for name in stopped if name != "prometheus"]
        assert order == ["generator", "worker", "sandbox", "broker"], lines[-20:]
        assert not [line for line in lines if "had exited already" in line]
        assert lines[0].startswith(f"work folder: {tmp_path}")
        reader.join(10)  # the demo has exited: its stdout is at its end
        assert lines[-1] == f"work folder: {tmp_path}"
    finally:
        demo.kill()
        reader.join(10)
        demo.proc.stdout.close()


def test_ctrl_c_with_its_output_piped_into_a_killed_tee_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    """`make demo | tee`, Ctrl-C: tee dies first; the demo still stops all and exits 0."""
    tee_file = tmp_path / "tee.out"
    tee = subprocess.Popen(["tee", str(tee_file)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert tee.stdin is not None
    demo = Demo(tmp_path, tee.stdin)
    tee.stdin.close()  # the demo holds the pipe's only writing end
    try:
        wait_for(
            lambda: tee_file.exists() and "demo running" in tee_file.read_text(),
            180,
            "the demo to run",
        )
        children = demo.children()
        tee.kill()
        tee.wait(10)
        assert demo.ctrl_c() == 0, (tmp_path / "demo.err").read_text()[-3000:]
        assert [pid for pid in children.values() if _is_zombie_free(pid)] == []
        assert "Traceback" not in (tmp_path / "demo.err").read_text()
    finally:
        demo.kill()
        if tee.poll() is None:
            tee.kill()
            tee.wait(10)
