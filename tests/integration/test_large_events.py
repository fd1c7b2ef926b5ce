"""Events larger than the worker's producer accepts (1 MB, 10 MB) are dead-lettered as a cut copy
with their size and digest, and the worker keeps running past them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from tests.integration.harness import (
    WorkerProcess,
    committed,
    event,
    group_of,
    metric,
    produce,
    read_topic,
    valid_events,
    wait_for_lists,
    write_config,
)
from tests.integration.test_dry_run import DryRunProcess
from tests.kafka_support import create_topic, wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
MB = 1024 * 1024


def _large_event(length: int) -> tuple[str, bytes]:
    """A valid profile event of exactly `length` bytes (oversize for the worker)."""
    head = orjson.dumps({"profile_id": "p-big", "ts": 1, "op": "upsert", "attributes": {"b": ""}})
    padding = "x" * (length - len(head))
    key, value = event("p-big", 1, attributes={"b": padding})
    assert len(value) == length
    return key, value


@pytest.mark.parametrize(
    ("length", "topic_config"),
    [
        (1_020_166, {}),  # within the broker's default max.message.bytes (1,048,588)
        (10 * MB, {"max.message.bytes": str(11 * MB)}),
    ],
    ids=["1MB-default-topic", "10MB-raised-topic"],
)
def test_event_larger_than_the_producer_limit_is_dead_lettered_cut_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path, length: int, topic_config: dict[str, str]
) -> None:
    """The large event is dead-lettered cut, with headers; valid events behind it are applied."""
    topic = create_topic(kafka_bootstrap, 1, prefix="profiles", config=topic_config)
    key, big = _large_event(length)
    valid = valid_events(5)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(
                kafka_bootstrap,
                topic,
                [valid[0], (key, big), *valid[1:]],
                config={"message.max.bytes": str(11 * MB)},
            )
            wait_for_lists(sandbox, {"All": {f"v{i}@example.com" for i in range(5)}}, 90)
            wait_for(
                lambda: metric(worker, "marketo_worker_dead_letters_total") == 1,
                30,
                "the dead-letter counter",
            )
            assert worker.proc.poll() is None, "the worker stopped on the large event"
        finally:
            assert worker.stop() == 0
    [dead] = read_topic(kafka_bootstrap, f"{topic}.dlq", 1)
    headers = {name: value.decode() for name, value in dead.headers()}
    assert headers["error.kind"] == "oversize"
    assert headers["truncated"] == "true"
    assert headers["original.size"] == str(length)
    assert headers["original.sha256"] == hashlib.sha256(big).hexdigest()
    assert dead.key() == key.encode()
    assert big.startswith(dead.value())
    assert len(dead.value()) < 1_000_000


def test_dry_run_dead_letters_a_large_event_cut_and_commits_past_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`run --dry-run` shares the dead-letter path: it commits past a 1 MB event and exits 0."""
    topic = create_topic(kafka_bootstrap, 1, prefix="profiles")
    key, big = _large_event(1_020_166)
    records = [(key, big), *valid_events(3)]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        dry = DryRunProcess(config, tmp_path / "dry.log")
        group = group_of(config) + ".dry-run"
        try:
            produce(kafka_bootstrap, topic, records, config={"message.max.bytes": str(2 * MB)})
            wait_for(
                lambda: committed(kafka_bootstrap, group, topic, 1)[0] == len(records),
                90,
                "the dry run to commit past the large event",
            )
        finally:
            assert dry.stop() == 0
    [dead] = read_topic(kafka_bootstrap, f"{topic}.dlq.dry-run", 1)
    assert dict(dead.headers())["original.size"] == str(len(big)).encode()
