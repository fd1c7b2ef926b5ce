"""The per-audience gauges, scraped from a running worker, agree with the lists Marketo holds."""

from __future__ import annotations

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
from tests.integration.test_metrics import scrape, value
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [
    {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}},
    {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}},
]


def test_the_audience_gauges_read_the_synced_lists(kafka_bootstrap: str, tmp_path: Path) -> None:
    """40 profiles over two partitions, 20 in FR and 10 in Pro, synced: wanted and in Marketo
    read 20 and 10, and no change is pending."""
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    profiles = [
        event(
            f"p-{i}",
            100 + i,
            identities={"email": f"m{i}@example.com"},
            attributes={"country": "FR" if i % 2 else "DE", "plan": "pro" if i % 4 == 0 else "x"},
        )
        for i in range(40)
    ]
    fr = {f"m{i}@example.com" for i in range(40) if i % 2}
    pro = {f"m{i}@example.com" for i in range(40) if i % 4 == 0}
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, profiles)
            wait_for_lists(sandbox, {"FR": fr, "Pro": pro}, 90)
            wait_for(
                lambda: value(scrape(worker), "marketo_worker_audience_members_in_marketo") == 30,
                30,
                "the acknowledgements counted at a commit",
            )
            samples = scrape(worker)
        finally:
            assert worker.stop() == 0
    for audience, members in (("fr", 20), ("pro", 10)):
        assert (
            value(samples, "marketo_worker_audience_members_wanted", audience=audience) == members
        )
        assert (
            value(samples, "marketo_worker_audience_members_in_marketo", audience=audience)
            == members
        )
        for op in ("add", "remove"):
            assert (
                value(samples, "marketo_worker_audience_pending_changes", audience=audience, op=op)
                == 0
            )
