"""Guarantee checked: a record Marketo refuses lands in the rejections topic with Marketo's
code, is counted, and does not hold back the offsets behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.integration.harness import (
    WorkerProcess,
    committed,
    event,
    group_of,
    new_input_topic,
    produce,
    read_topic,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]


def test_refused_record_goes_to_rejections_and_offsets_move_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A lead whose email is not ASCII is refused by Marketo (1003) and published as a rejection."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    good = [
        event(
            f"p-{i}",
            10 + i,
            identities={"email": f"g{i}@example.com"},
            attributes={"country": "FR", "firstName": "A", "lastName": "B", "score": 5},
        )
        for i in range(5)
    ]
    bad = event(
        "p-bad",
        1,
        identities={"email": "bäd@example.com"},  # Marketo wants ASCII emails
        attributes={"country": "FR", "firstName": "A", "lastName": "B", "score": 5},
    )
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        config = yaml.safe_load(path.read_text())
        config["mapping"].append({"from": "score", "to": "leadScore"})
        path.write_text(yaml.safe_dump(config))
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, [bad, *good])
            wait_for_lists(sandbox, {"All": {f"g{i}@example.com" for i in range(5)}}, 90)
            wait_for(
                lambda: committed(kafka_bootstrap, group_of(path), topic, 1)[0] == 6,
                30,
                "the offset to move past every record",
            )
        finally:
            assert worker.stop() == 0
    (rejection,) = read_topic(kafka_bootstrap, f"{topic}.rejections", 1)
    body = orjson.loads(rejection.value())
    assert body["profile_id"] == "p-bad"
    assert body["code"] == "1003"
    assert rejection.key() == b"p-bad"


def test_refused_lead_sync_rejection_names_the_lists_the_person_misses(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A lead sync Marketo refuses (a non-ASCII email, 1003) for a person entering two lists
    is published once, naming both audiences and their list ids."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    audiences = [
        *AUDIENCES,
        {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}},
    ]
    bad = event(
        "p-bad",
        1,
        identities={"email": "bäd@example.com"},
        attributes={"country": "FR", "firstName": "A", "lastName": "B"},
    )
    good = event(
        "p-good",
        2,
        identities={"email": "good@example.com"},
        attributes={"country": "FR", "firstName": "A", "lastName": "B"},
    )
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, audiences)
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, [bad, good])
            wait_for_lists(sandbox, {"All": {"good@example.com"}, "FR": {"good@example.com"}}, 90)
            state: dict[str, Any] = sandbox.state()
            lists = {item["name"]: item["id"] for item in state["lists"]}
        finally:
            assert worker.stop() == 0
    (rejection,) = read_topic(kafka_bootstrap, f"{topic}.rejections", 1)
    body = orjson.loads(rejection.value())
    assert (body["op"], body["audience"], body["list_id"]) == ("sync_lead", None, None)
    named = sorted(zip(body["audiences"], body["list_ids"], strict=True))
    assert named == [("all", lists["All"]), ("fr", lists["FR"])]
