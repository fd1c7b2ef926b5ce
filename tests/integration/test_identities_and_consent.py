"""Destination rules: a profile without email is never sent; match_only
never creates a person Marketo does not know; consent "n" removes the person from every list."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    WorkerProcess,
    event,
    metric,
    metrics_text,
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
NAMES = {"firstName": "A", "lastName": "B"}


def emails_in_marketo(sandbox: SandboxProcess) -> set[str]:
    state: dict[str, Any] = sandbox.state()
    return {lead.get("email") for lead in state["leads"]}


def test_profile_without_email_is_counted_unmatched_and_never_sent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A qualifying profile with no email creates no lead and is counted as unmatched."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    records = [
        event("p-anon", 1, identities={"ecid": "123"}, attributes={"country": "FR", **NAMES}),
        event(
            "p-known",
            2,
            identities={"email": "known@example.com"},
            attributes={"country": "FR", **NAMES},
        ),
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, records)
            wait_for_lists(sandbox, {"FR": {"known@example.com"}}, 90)
            wait_for(lambda: metric(worker, "marketo_worker_events_total") >= 2, 30, "both events")
            unmatched = metric_with(worker, 'outcome="unmatched"')
            leads = emails_in_marketo(sandbox)
        finally:
            assert worker.stop() == 0
    assert leads == {"known@example.com"}
    assert unmatched == 1


def test_invalid_email_is_counted_unmatched_and_never_sent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Qualifying profiles whose email is not an address create no lead and are counted as
    unmatched with the reason invalid_email; the email is logged only as a hash."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    bad = ("not-an-email", "has space@example.com")
    known = {"email": "known@example.com"}
    records = [
        *(
            event(f"p-bad-{i}", 1, identities={"email": email}, attributes={"country": "FR"})
            for i, email in enumerate(bad)
        ),
        event("p-known", 2, identities=known, attributes={"country": "FR", **NAMES}),
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, records)
            wait_for_lists(sandbox, {"FR": {"known@example.com"}}, 90)
            wait_for(lambda: metric(worker, "marketo_worker_events_total") >= 3, 30, "the events")
            invalid = metric(worker, 'marketo_worker_unmatched_total{reason="invalid_email"}')
            counted = (metric_with(worker, 'outcome="unmatched"'), invalid)
            leads = emails_in_marketo(sandbox)
        finally:
            assert worker.stop() == 0
    assert (leads, counted) == ({"known@example.com"}, (2, 2))
    log = (tmp_path / "w.log").read_text()
    assert "event.unmatched" in log
    assert not any(email in log for email in bad)


def test_match_only_never_creates_an_unknown_person(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With match_only, a person Marketo knows is added; an unknown one is neither created nor
    added, and is counted as unmatched."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    records = [
        event("p-old", 1, identities={"email": "old@example.com"}, attributes={"country": "FR"}),
        event("p-new", 2, identities={"email": "new@example.com"}, attributes={"country": "FR"}),
    ]
    with SandboxProcess("--no-limits") as sandbox:
        seed_lead(sandbox, "old@example.com")
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            AUDIENCES,
            person_creation="match_only",
        )
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, records)
            wait_for_lists(sandbox, {"FR": {"old@example.com"}}, 90)
            wait_for(lambda: metric_with(worker, 'outcome="unmatched"') == 1, 30, "unmatched")
            leads = emails_in_marketo(sandbox)
        finally:
            assert worker.stop() == 0
    assert leads == {"old@example.com"}


def test_consent_n_removes_the_person_from_every_list(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A member of two lists whose consent turns to "n" leaves both."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    member = {"email": "ann@example.com"}
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(
                kafka_bootstrap,
                topic,
                [
                    event(
                        "p-1",
                        1,
                        identities=member,
                        attributes={"country": "FR", "plan": "pro", **NAMES},
                        consent={"marketing": "y"},
                    )
                ],
            )
            wait_for_lists(sandbox, {"FR": {"ann@example.com"}, "Pro": {"ann@example.com"}}, 90)
            produce(
                kafka_bootstrap, topic, [event("p-1", 2, op="patch", consent={"marketing": "n"})]
            )
            wait_for_lists(sandbox, {"FR": set(), "Pro": set()}, 90)
        finally:
            assert worker.stop() == 0


def seed_lead(sandbox: SandboxProcess, email: str) -> None:
    """Create a person in the sandbox through its REST API, as another integration would."""
    body = json.dumps(
        {
            "action": "createOnly",
            "lookupField": "email",
            "input": [{"email": email, "firstName": "Old", "lastName": "Timer"}],
        }
    )
    request = urllib.request.Request(
        f"{sandbox.url}/rest/v1/leads.json",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {sandbox.token()}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["result"][0]["status"] == "created"


def metric_with(worker: WorkerProcess, labels: str) -> float:
    """The events_total sample whose labels contain `labels`."""
    lines = metrics_text(worker).splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("marketo_worker_events_total{") and labels in line
    )
