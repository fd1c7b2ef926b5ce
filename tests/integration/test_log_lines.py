"""Guarantee checked: with `log_format: json`, every line the worker writes is one JSON object,
librdkafka's own lines included (they go through the logger, not straight to stderr)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from tests.integration.harness import WorkerProcess, new_input_topic, write_config
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]


def test_librdkafka_lines_are_json_log_events(kafka_bootstrap: str, tmp_path: Path) -> None:
    """librdkafka's debug output (`kafka.options.debug`, log_level debug) comes out as JSON."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        config = yaml.safe_load(path.read_text())
        config["kafka"]["options"] = {"debug": "broker"}
        config["telemetry"]["log_level"] = "debug"
        path.write_text(yaml.safe_dump(config))
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            wait_for(
                lambda: any(e.get("logger") == "librdkafka" for e in worker.logs()),
                60,
                "a librdkafka line in the worker's log",
            )
            wait_for(lambda: worker.metrics_port() is not None, 60, "worker.started")
        finally:
            assert worker.stop() == 0
    lines = worker.log.read_text().splitlines()
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not_json == [], not_json[:5]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False
