"""Erasure requests: a `delete` event removes the person from every list; with
`marketo.delete_persons` it also deletes the Marketo person, and without it the person stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import (
    WorkerProcess,
    committed,
    event,
    group_of,
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
ATTRIBUTES = {"country": "FR", "plan": "pro", "firstName": "A", "lastName": "B"}


def lead_emails(sandbox: SandboxProcess) -> set[str]:
    state: dict[str, Any] = sandbox.state()
    return {lead.get("email") for lead in state["leads"]}


def delete_scenario(kafka_bootstrap: str, tmp_path: Path, delete_persons: bool) -> set[str]:
    """Ann enters two lists, then her profile is deleted; return the sandbox's leads once the
    delete's offset is committed (the lists are empty by then)."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        config = yaml.safe_load(path.read_text())
        config["marketo"]["delete_persons"] = delete_persons
        path.write_text(yaml.safe_dump(config))
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            produce(
                kafka_bootstrap, topic, [event("p-ann", 1, identities=ANN, attributes=ATTRIBUTES)]
            )
            wait_for_lists(sandbox, {"FR": {"ann@example.com"}, "Pro": {"ann@example.com"}}, 90)
            produce(kafka_bootstrap, topic, [event("p-ann", 2, op="delete")])
            wait_for(
                lambda: committed(kafka_bootstrap, group_of(path), topic, 1)[0] == 2,
                60,
                "the delete's offset to be committed",
            )
            wait_for_lists(sandbox, {"FR": set(), "Pro": set()}, 30)
            return lead_emails(sandbox)
        finally:
            assert worker.stop() == 0


def test_delete_with_delete_persons_removes_the_marketo_person(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With the opt-in, the delete event's offset is committed only once the person is gone
    from every list and from Marketo."""
    assert delete_scenario(kafka_bootstrap, tmp_path, delete_persons=True) == set()


def test_delete_without_delete_persons_keeps_the_marketo_person(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """By default a delete event empties the person's lists and leaves the Marketo person."""
    leads = delete_scenario(kafka_bootstrap, tmp_path, delete_persons=False)
    assert leads == {"ann@example.com"}
