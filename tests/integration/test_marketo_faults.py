"""Guarantees 1, 4 (docs/guarantees.md): Marketo's throttling and failures — 606 storms, 615,
5xx, a revoked token, a spent daily quota — slow the worker down but lose nothing: the lists
converge exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.harness import (
    WorkerProcess,
    event,
    list_members,
    metric,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from tests.sandbox_views import sandbox_stats
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [
    {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}},
    {"id": "de", "name": "DE", "rule": 'country == "DE"', "list": {"name": "DE"}},
]
PROFILES = 900
Inject = Callable[[SandboxProcess], object]

# scenario -> (sandbox flags, fault injected mid-run, an answer code that proves it happened)
SCENARIOS: dict[str, tuple[list[str], Inject, str]] = {
    "606-storm": ([], lambda sb: sb.set_faults(storm_606_s=3), "606"),
    "615-concurrency": (["--concurrency", "1", "--latency-ms", "30"], lambda sb: None, "615"),
    "http-5xx": ([], lambda sb: sb.set_faults(p_http_500=0.2, p_http_502=0.1), "500"),
    "token-revoked": (["--token-ttl-s", "2"], lambda sb: sb.set_faults(revoke_tokens=True), "601"),
    "quota-exhausted-then-reset": (
        ["--quota-day-s", "4"],
        lambda sb: sb.set_faults(exhaust_quota=True),
        "607",
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_lists_converge_despite_marketo_faults(
    scenario: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Under the fault, every list still ends with exactly the expected members."""
    flags, inject, proof = SCENARIOS[scenario]
    topic = new_input_topic(kafka_bootstrap, partitions=2)

    def wave(first: int, country: str) -> list[tuple[str, bytes]]:
        return [
            event(
                f"p-{i}",
                first + i,
                identities={"email": f"f{i}@example.com"},
                attributes={"country": country, "firstName": "A", "lastName": "B"},
            )
            for i in range(PROFILES)
        ]

    with SandboxProcess(*flags) as sandbox:
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            AUDIENCES,
            flush={"max_batch": 100},
        )
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            wait_for(
                lambda: metric(worker, "marketo_worker_rebalances_total") > 0, 60, "assignment"
            )
            produce(kafka_bootstrap, topic, wave(1_000, "FR"))
            wait_for(lambda: len(list_members(sandbox).get("FR", set())) > 0, 60, "first members")
            inject(sandbox)
            produce(kafka_bootstrap, topic, wave(100_000, "DE")[: PROFILES // 2])
            expected = {
                "FR": {f"f{i}@example.com" for i in range(PROFILES // 2, PROFILES)},
                "DE": {f"f{i}@example.com" for i in range(PROFILES // 2)},
            }
            wait_for_lists(sandbox, expected, 180)
            calls = sandbox_stats(sandbox)["calls"]
            codes = {code for by_code in calls.values() for code in by_code}
        finally:
            assert worker.stop() == 0
    assert any(proof in code for code in codes), f"the fault never happened: {codes}"
