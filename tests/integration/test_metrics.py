"""The worker's metrics move as a scenario says: scraped from a running worker's /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import (
    WorkerProcess,
    event,
    metrics_text,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}]


def scrape(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the worker's /metrics, keyed by (name, sorted labels)."""
    text = metrics_text(worker)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    wanted = tuple(sorted(labels.items()))
    return sum(v for (n, ls), v in samples.items() if n == name and set(wanted) <= set(ls))


def test_metrics_follow_the_scenario(kafka_bootstrap: str, tmp_path: Path) -> None:
    """10 valid events (6 enter FR), 1 stale, 2 poison: each counter says exactly that."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    valid = [
        event(
            f"p-{i}",
            100 + i,
            identities={"email": f"m{i}@example.com"},
            attributes={"country": "FR" if i < 6 else "DE", "firstName": "A", "lastName": "B"},
        )
        for i in range(10)
    ]
    stale = event("p-0", 1, identities={"email": "m0@example.com"}, attributes={"country": "DE"})
    poison = [("p-x", b"{"), ("p-y", b"")]
    with SandboxProcess("--no-limits") as sandbox:
        path = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        config = yaml.safe_load(path.read_text())
        config["kafka"]["options"] = {"statistics.interval.ms": 1000}
        path.write_text(yaml.safe_dump(config))
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, [*valid, stale, *poison])
            wait_for_lists(sandbox, {"FR": {f"m{i}@example.com" for i in range(6)}}, 90)
            wait_for(
                lambda: value(scrape(worker), "marketo_worker_committed_offset") == 13,
                30,
                "the commit of all 13 records",
            )
            wait_for(
                lambda: (
                    value(scrape(worker), "marketo_worker_consumer_lag", partition="0") == 0
                    and ("marketo_worker_consumer_lag", (("partition", "0"),)) in scrape(worker)
                ),
                30,
                "lag 0 from librdkafka statistics",
            )
            samples = scrape(worker)
        finally:
            assert worker.stop() == 0
    assert value(samples, "marketo_worker_events_total", outcome="applied") == 6
    assert value(samples, "marketo_worker_events_total", outcome="no_change") == 4
    assert value(samples, "marketo_worker_events_total", outcome="stale") == 1
    assert value(samples, "marketo_worker_events_total", outcome="invalid") == 2
    assert value(samples, "marketo_worker_dead_letters_total") == 2
    assert value(samples, "marketo_worker_membership_changes_total", audience="fr", op="add") == 6
    assert value(samples, "marketo_worker_marketo_records_total", endpoint="add_to_list") == 6
    assert value(samples, "marketo_worker_end_to_end_latency_seconds_count") >= 6
    assert value(samples, "marketo_worker_marketo_requests_total", outcome="ok") >= 2
    assert value(samples, "marketo_worker_state_profiles") == 10
    assert value(samples, "marketo_worker_ready") == 1
    assert value(samples, "marketo_worker_rebalances_total") >= 1
    assert value(samples, "marketo_worker_daily_quota_remaining") > 0
