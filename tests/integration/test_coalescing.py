"""Guarantee 3 (docs/guarantees.md): changes for one (list, person) collapse before a flush,
and a person entering several lists costs one lead sync."""

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
NAMES = {"A": {"firstName": "A", "lastName": "B"}}
AUDIENCES = [
    {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}},
    {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}},
    {"id": "vip", "name": "VIP", "rule": '"vip" in tags', "list": {"name": "VIP"}},
    {
        "id": "sentinel",
        "name": "Sentinel",
        "rule": "exists(sentinel)",
        "list": {"name": "Sentinel"},
    },
]


def calls(stats: dict[str, Any], endpoint: str) -> int:
    return sum((stats["calls"].get(endpoint) or {}).values())


def run_scenario(
    kafka_bootstrap: str,
    tmp_path: Path,
    records: list[tuple[str, bytes]],
    expected: dict[str, set[str]],
) -> dict[str, Any]:
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            AUDIENCES,
            flush={"max_linger_s": 3.0},
        )
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            wait_for(
                lambda: metric(worker, "marketo_worker_rebalances_total") > 0, 60, "assignment"
            )
            produce(kafka_bootstrap, topic, records)
            wait_for_lists(sandbox, expected, 60)
            return sandbox.stats()
        finally:
            assert worker.stop() == 0


def test_enter_then_exit_before_the_flush_makes_no_call(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A person who enters and leaves a list within the linger costs no Marketo call at all."""
    attrs = {"country": "FR", **NAMES["A"]}
    records = [
        event("p-1", 1, identities={"email": "flip@example.com"}, attributes=attrs),
        event("p-1", 2, op="patch", attributes={"country": "DE"}),
        event(
            "p-2",
            3,
            identities={"email": "sentinel@example.com"},
            attributes={"sentinel": True, **NAMES["A"]},
        ),
    ]
    stats = run_scenario(
        kafka_bootstrap, tmp_path, records, {"Sentinel": {"sentinel@example.com"}, "FR": set()}
    )
    assert calls(stats, "addToList") == 1  # the sentinel's add only
    assert calls(stats, "syncLeads") == 1  # the sentinel's sync only


def test_entering_three_lists_needs_one_lead_sync(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A new person entering three lists is synced once, then added to each list."""
    attrs = {"country": "FR", "plan": "pro", "tags": ["vip"], **NAMES["A"]}
    records = [event("p-1", 1, identities={"email": "ann@example.com"}, attributes=attrs)]
    expected = {name: {"ann@example.com"} for name in ("FR", "Pro", "VIP")}
    stats = run_scenario(kafka_bootstrap, tmp_path, records, expected)
    assert calls(stats, "syncLeads") == 1
    assert calls(stats, "addToList") == 3
