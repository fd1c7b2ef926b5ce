"""Guarantee checked: mapped values are converted to Marketo's field types before sending; a
value Marketo would refuse becomes a rejection ("invalid_value", naming the field and reason)
instead of being sent, and the other profiles in the same batch still reach their lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.integration.harness import (
    WorkerProcess,
    event,
    new_input_topic,
    produce,
    read_topic,
    wait_for_lists,
    write_config,
)
from tests.sandbox_views import sandbox_state
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
MAPPING = [
    {"from": "score", "to": "leadScore"},
    {"from": "born", "to": "dateOfBirth"},
    {"from": "identities.ecid", "to": "cookies"},
]


def profile(name: str, ts: int, score: object, ecid: str) -> tuple[str, bytes]:
    """A France profile with an email and ECID, whose `score` maps to the integer leadScore."""
    attributes = {"country": "FR", "firstName": "A", "lastName": name, "score": score}
    identities = {"email": f"{name}@example.com", "ecid": ecid}
    attributes["born"] = "1990-02-28T23:30:00+01:00"
    return event(name, ts, identities=identities, attributes=attributes)


def lead(sandbox: SandboxProcess, email: str) -> dict[str, Any]:
    """The sandbox's lead with this email."""
    (found,) = [item for item in sandbox_state(sandbox)["leads"] if item.get("email") == email]
    return found


def test_a_value_marketo_would_refuse_becomes_an_invalid_value_rejection(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """ "abc" for the integer leadScore is rejected locally; "42" is sent as the integer 42."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        config = yaml.safe_load(path.read_text())
        config["mapping"] += MAPPING
        path.write_text(yaml.safe_dump(config))
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            produce(
                kafka_bootstrap,
                topic,
                [profile("bad", 1, "abc", "ecid-bad"), profile("good", 2, "42", "ecid-good")],
            )
            wait_for_lists(sandbox, {"All": {"good@example.com"}}, 90)
            good = lead(sandbox, "good@example.com")
        finally:
            assert worker.stop() == 0
        leads = sandbox_state(sandbox)["leads"]
        assert all(item.get("email") != "bad@example.com" for item in leads)
    assert (good["leadScore"], good["dateOfBirth"], good["cookies"]) == (
        42,
        "1990-02-28",
        "ecid-good",
    )
    (rejection,) = read_topic(kafka_bootstrap, f"{topic}.rejections", 1)
    body = orjson.loads(rejection.value())
    assert rejection.key() == b"bad"
    assert body["code"] == "invalid_value"
    assert body["op"] == "sync_lead"
    assert body["message"].startswith("leadScore: text that is not a number")
