"""Guarantee checked (docs/guarantees.md, 4): two worker processes in one group, against one budget,
never exceed it together: the sandbox's busiest window stays within `calls_per_window`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    WorkerProcess,
    event,
    metric,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [
    {"id": f"l{n}", "name": f"L{n}", "rule": f"bucket == {n}", "list": {"name": f"L{n}"}}
    for n in range(4)
]
PROFILES = 2_400
WINDOW = {"calls_per_window": 8, "window_s": 2, "concurrency": 4}


def test_two_workers_share_one_budget(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With a backlog, the busiest window of counted calls never exceeds the group's budget."""
    topic = new_input_topic(kafka_bootstrap, partitions=4)
    records = [
        event(
            f"p-{i}",
            i,
            identities={"email": f"b{i}@example.com"},
            attributes={"bucket": i % 4, "firstName": "A", "lastName": "B"},
        )
        for i in range(PROFILES)
    ]
    limits = ["--calls-per-window", "8", "--window-s", "2", "--concurrency", "4"]
    with SandboxProcess(*limits) as sandbox:
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            AUDIENCES,
            budget=WINDOW,
            flush={"max_linger_s": 0.5},
        )
        workers = [WorkerProcess(config, tmp_path / f"w{n}.log") for n in range(2)]
        try:
            wait_for(
                lambda: all(metric(w, "marketo_worker_rebalances_total") > 0 for w in workers),
                60,
                "both workers to get partitions",
            )
            produce(kafka_bootstrap, topic, records)
            expected = {
                f"L{n}": {f"b{i}@example.com" for i in range(n, PROFILES, 4)} for n in range(4)
            }
            wait_for_lists(sandbox, expected, 240)
            stats: dict[str, Any] = sandbox.stats()
        finally:
            codes = [w.stop() for w in workers]
    assert codes == [0, 0]
    assert stats["peak_window_calls"] <= WINDOW["calls_per_window"], stats
    assert stats["peak_in_flight"] <= WINDOW["concurrency"], stats
    refused = {
        code for calls in stats["calls"].values() for code in calls if code in {"606", "615"}
    }
    assert refused == set(), stats["calls"]
