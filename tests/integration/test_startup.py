"""Guarantee checked: every way start-up can end leaves nothing running. A metrics port in use
is a configuration error (exit 2) before anything else is opened; SIGTERM during a long start-up
(many new lists, a tiny budget) stops it at once with exit 0, and the log says what it waited
for."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.harness import WorkerProcess, new_input_topic, write_config
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
MANY_NEW_LISTS = [
    {"id": f"a{i}", "name": f"A{i}", "rule": "exists(country)", "list": {"name": f"New {i}"}}
    for i in range(20)
]
NO_MARKETO = "http://127.0.0.1:9"  # a dry run asks Marketo nothing


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    """One sandbox for the module."""
    with SandboxProcess("--no-limits") as process:
        yield process


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port some other process listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


def with_metrics_port(path: Path, port: int) -> Path:
    config = yaml.safe_load(path.read_text())
    config["telemetry"]["metrics_port"] = port
    path.write_text(yaml.safe_dump(config))
    return path


def exited(worker: WorkerProcess) -> bool:
    return worker.proc.poll() is not None


def test_a_metrics_port_in_use_exits_2_naming_it(
    kafka_bootstrap: str, sandbox: SandboxProcess, tmp_path: Path, held_port: int
) -> None:
    """A busy telemetry.metrics_port is one line naming the key and address, exit 2, no hang."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
    worker = WorkerProcess(with_metrics_port(path, held_port), tmp_path / "w.log")
    try:
        wait_for(lambda: exited(worker), 60, "the worker to exit")
    finally:
        worker.kill()
    assert worker.proc.returncode == 2
    assert f"telemetry.metrics_port: 127.0.0.1:{held_port} is in use" in worker.log.read_text()


def test_sigterm_during_start_up_exits_0_at_once(
    kafka_bootstrap: str, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """Start-up waiting for budget slots to create 20 lists stops on SIGTERM, logging the wait."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    budget = {"calls_per_window": 1, "window_s": 20}
    path = write_config(
        tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, MANY_NEW_LISTS, budget=budget
    )
    worker = WorkerProcess(path, tmp_path / "w.log")
    try:
        wait_for(
            lambda: any(e["event"] == "startup.waiting" for e in worker.logs()),
            60,
            "start-up to wait for the budget",
        )
        worker.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: exited(worker), 10, "the worker to exit after SIGTERM")
    finally:
        worker.kill()
    assert worker.proc.returncode == 0
    events = worker.logs()
    (waiting, *_) = [e for e in events if e["event"] == "startup.waiting"]
    assert waiting["for"] == "budget"
    assert waiting["seconds"] > 0
    stopping = [e for e in events if e["event"] == "worker.stopping"]
    assert [e.get("phase") for e in stopping] == [waiting["phase"]]
    assert not any(e["event"] == "worker.started" for e in events)


def test_a_dry_run_with_its_metrics_port_in_use_exits_2(
    kafka_bootstrap: str, tmp_path: Path, held_port: int
) -> None:
    """`run --dry-run` refuses a busy metrics port the same way."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    path = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_MARKETO, topic, AUDIENCES)
    command = [sys.executable, "-m", "worker", "run", str(with_metrics_port(path, held_port))]
    done = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"telemetry.metrics_port: 127.0.0.1:{held_port} is in use" in done.stderr
