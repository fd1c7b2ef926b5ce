"""Guarantee checked (docs/guarantees.md, 2): an input offset is committed only after Marketo
acknowledged every change derived from it (and from all earlier offsets of its partition)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import (
    WorkerProcess,
    committed,
    event,
    group_of,
    metric,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
EVENTS = 200


def test_no_offset_is_committed_before_marketo_acknowledges(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """While Marketo fails every call nothing is committed; once it recovers, all of it is."""
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    events = [
        event(
            f"p-{i}",
            1 + i,
            identities={"email": f"u{i}@example.com"},
            attributes={"country": "FR", "firstName": "A", "lastName": "B"},
        )
        for i in range(EVENTS)
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            wait_for(
                lambda: metric(worker, "marketo_worker_rebalances_total") > 0, 60, "assignment"
            )
            sandbox.set_faults(p_http_500=1.0)  # every Marketo call fails from now on
            produce(kafka_bootstrap, topic, events)
            wait_for(
                lambda: metric(worker, "marketo_worker_events_total") >= EVENTS,
                60,
                "the worker to read every event",
            )
            wait_for(
                lambda: metric(worker, "marketo_worker_marketo_requests_total") > 5,
                60,
                "failing calls",
            )
            held = committed(kafka_bootstrap, group_of(config), topic, 2)
            # nothing past the first unacknowledged record (offset 0) is committed
            assert all(offset <= 0 for offset in held.values()), held
            sandbox.set_faults(p_http_500=0.0)
            wait_for_lists(sandbox, {"All": {f"u{i}@example.com" for i in range(EVENTS)}}, 120)
            wait_for(
                lambda: (
                    sum(committed(kafka_bootstrap, group_of(config), topic, 2).values()) == EVENTS
                ),
                30,
                "every offset to be committed",
            )
        finally:
            assert worker.stop() == 0
