"""The metrics port answers /healthz while the loop lives and /readyz once partitions are
assigned and restored."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.harness import WorkerProcess, new_input_topic, write_config
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]


def status(worker: WorkerProcess, path: str) -> int:
    port = worker.metrics_port()
    if port is None:
        return 0
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_worker_becomes_ready_and_reports_alive(kafka_bootstrap: str, tmp_path: Path) -> None:
    """/healthz is 200 and /readyz turns 200 once the partitions are assigned and restored."""
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            wait_for(lambda: status(worker, "/healthz") == 200, 60, "/healthz")
            wait_for(lambda: status(worker, "/readyz") == 200, 60, "/readyz")
        finally:
            assert worker.stop() == 0
