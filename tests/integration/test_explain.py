"""`explain` reads a profile's state back from the state topic: each audience's verdict with
the values its rule reads, and what Marketo acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import (
    WorkerProcess,
    event,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [
    {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}},
    {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}},
]
ANN = {"email": "ann@example.com"}


def explain(config: Path, profile: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "worker", "explain", str(config), profile, "--json"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_explain_shows_verdicts_and_acknowledged_memberships(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """After the worker synced a profile into one of two lists, explain names that audience as
    wanted and acknowledged, the other as not matching, with the values the rules read."""
    topic = new_input_topic(kafka_bootstrap, partitions=3)
    attributes = {"country": "FR", "plan": "free", "firstName": "A", "lastName": "B"}
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(
                kafka_bootstrap, topic, [event("p-ann", 1, identities=ANN, attributes=attributes)]
            )
            wait_for_lists(sandbox, {"FR": {"ann@example.com"}}, 90)
            # the acknowledgement reaches the state topic at a later commit
            wait_for(
                lambda: (
                    explain(config, "p-ann").returncode == 0
                    and json.loads(explain(config, "p-ann").stdout)["lead_id"] is not None
                ),
                60,
                "the acknowledged state in the state topic",
            )
        finally:
            assert worker.stop() == 0
    done = explain(config, "p-ann")
    report = json.loads(done.stdout)
    verdicts = {v["audience"]: v for v in report["audiences"]}
    assert (verdicts["fr"]["member"], verdicts["fr"]["acknowledged"]) == (True, True)
    assert verdicts["fr"]["reads"] == {"country": "FR"}
    assert (verdicts["pro"]["member"], verdicts["pro"]["rule_matches"]) == (False, False)
    assert verdicts["pro"]["reads"] == {"plan": "free"}
    assert report["consent"] is True


def test_explain_of_an_unknown_profile_exits_1(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A profile the state topic does not hold is reported with exit code 1."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            wait_for(lambda: worker.metrics_port() is not None, 60, "the worker to start")
        finally:
            assert worker.stop() == 0
    done = explain(config, "p-nobody")
    assert (done.returncode, "not in the state topic" in done.stderr) == (1, True)


def test_explain_without_a_state_topic_exits_2(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A state topic that does not exist (the worker never ran) is a configuration error."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(
        tmp_path / "c.yaml", kafka_bootstrap, "http://127.0.0.1:9", topic, AUDIENCES
    )
    done = explain(config, "p-ann")
    assert (done.returncode, "kafka.state_topic" in done.stderr) == (2, True)
