"""Guarantee checked (docs/guarantees.md, 1 and 6): after a SIGKILL mid-run the lists still converge
exactly, and the restarted worker restores its state from the changelog instead of
re-reading the input from the beginning."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import (
    WorkerProcess,
    committed,
    event,
    group_of,
    list_members,
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
    {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}},
    {"id": "de", "name": "DE", "rule": 'country == "DE"', "list": {"name": "DE"}},
]
PROFILES = 2_000


def events(first_ts: int, country_of: dict[int, str]) -> list[tuple[str, bytes]]:
    return [
        event(
            f"p-{i}",
            first_ts + i,
            identities={"email": f"c{i}@example.com"},
            attributes={"country": country, "firstName": "A", "lastName": "B"},
        )
        for i, country in country_of.items()
    ]


def test_sigkill_then_restart_converges_from_restored_state(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Kill -9 mid-run, more events, restart: lists exact, state restored, input not re-read."""
    topic = new_input_topic(kafka_bootstrap, partitions=4)
    first = {i: "FR" for i in range(PROFILES)}
    second = {i: "DE" for i in range(0, PROFILES, 2)}  # half of them move to DE
    with SandboxProcess("--no-limits", "--latency-ms", "20") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w1.log")
        produce(kafka_bootstrap, topic, events(1_000_000, first))
        wait_for(
            lambda: len(list_members(sandbox).get("FR", set())) >= PROFILES // 2,
            90,
            "half of the first wave in Marketo",
        )
        wait_for(
            lambda: sum(committed(kafka_bootstrap, group_of(config), topic, 4).values()) > 0,
            30,
            "a first commit",
        )
        worker.kill()
        produce(kafka_bootstrap, topic, events(2_000_000, second))
        restarted = WorkerProcess(config, tmp_path / "w2.log")
        try:
            expected = {
                "FR": {f"c{i}@example.com" for i in range(PROFILES) if i not in second},
                "DE": {f"c{i}@example.com" for i in second},
            }
            wait_for_lists(sandbox, expected, 180)
            restored = metric(restarted, "marketo_worker_state_restored_profiles_total")
            read_again = metric(restarted, "marketo_worker_events_total")
        finally:
            assert restarted.stop() == 0
    assert restored > 0, "the restarted worker did not restore any state"
    assert read_again < PROFILES + len(second), "the input was re-read from the beginning"
