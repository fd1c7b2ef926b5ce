"""The state keeps every attribute: a worker restarted with a rule reading an attribute no rule
read before evaluates it on the values stored before the restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

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
FRANCE = {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}
LYON = {"id": "lyon", "name": "Lyon", "rule": 'address.city == "Lyon"', "list": {"name": "Lyon"}}
ANN, BOB = "ann@example.com", "bob@example.com"


def explain(config: Path, profile: str) -> dict[str, Any] | None:
    """The profile's state as `explain --json` reports it (None while it is not readable)."""
    command = [sys.executable, "-m", "worker", "explain", str(config), profile, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def with_audiences(config: Path, path: Path, audiences: list[dict[str, Any]]) -> Path:
    """The same worker (group, topics) with other audiences."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["audiences"] = audiences
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_rule_added_after_a_restart_reads_attributes_stored_before_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Profiles synced under a rule reading only `country` keep `address.city` in their state:
    after a restart with a rule reading it, a patch that does not carry the city still puts the
    Lyon profile in the new list, and explain shows the stored city."""
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    names = {"firstName": "A", "lastName": "B"}
    people = [
        ("p-ann", ANN, {"country": "FR", "address": {"city": "Lyon"}, **names}),
        ("p-bob", BOB, {"country": "FR", "address": {"city": "Paris"}, **names}),
    ]
    with SandboxProcess("--no-limits") as sandbox:
        first = write_config(tmp_path / "c1.yaml", kafka_bootstrap, sandbox.url, topic, [FRANCE])
        worker = WorkerProcess(first, tmp_path / "w1.log")
        try:
            produce(
                kafka_bootstrap,
                topic,
                [event(p, 1, identities={"email": e}, attributes=a) for p, e, a in people],
            )
            wait_for_lists(sandbox, {"FR": {ANN, BOB}}, 90)
            wait_for(
                lambda: all(explain(first, p) for p, _, _ in people), 60, "both states written"
            )
        finally:
            assert worker.stop() == 0
        second = with_audiences(first, tmp_path / "c2.yaml", [FRANCE, LYON])
        worker = WorkerProcess(second, tmp_path / "w2.log")
        try:
            # patches that carry no city: only the stored one can decide the new rule
            patches = [event(p, 2, op="patch", attributes={"plan": "pro"}) for p, _, _ in people]
            produce(kafka_bootstrap, topic, patches)
            wait_for_lists(sandbox, {"FR": {ANN, BOB}, "Lyon": {ANN}}, 90)
        finally:
            assert worker.stop() == 0
    report = explain(second, "p-ann")
    assert report is not None
    verdicts = {v["audience"]: v for v in report["audiences"]}
    assert (verdicts["lyon"]["reads"], verdicts["lyon"]["member"]) == (
        {"address.city": "Lyon"},
        True,
    )
