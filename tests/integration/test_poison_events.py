"""Guarantee 8 (docs/guarantees.md): each kind of invalid input lands in the dead-letter topic
with its reason in headers, is counted, and never blocks its partition."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.integration.harness import (
    WorkerProcess,
    metric,
    new_input_topic,
    produce,
    read_topic,
    valid_events,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
POISON = {
    "bad_json": ("p-x", b"{not json"),
    "schema": ("p-x", orjson.dumps({"profile_id": "p-x", "ts": 1, "op": "explode"})),
    "key_mismatch": ("p-other", orjson.dumps({"profile_id": "p-x", "ts": 1, "op": "upsert"})),
    "bad_ts": ("p-x", orjson.dumps({"profile_id": "p-x", "ts": "yesterday", "op": "upsert"})),
    "ts_future": (
        "p-x",
        orjson.dumps({"profile_id": "p-x", "ts": "9999-12-31T23:59:59Z", "op": "upsert"}),
    ),
    # epoch seconds where milliseconds are due: January 1970, before kafka.min_event_ts
    "ts_too_old": ("p-x", orjson.dumps({"profile_id": "p-x", "ts": 1_796_186_000, "op": "upsert"})),
    "empty": ("p-x", b""),
    "oversize": (
        "p-x",
        orjson.dumps(
            {"profile_id": "p-x", "ts": 1, "op": "upsert", "attributes": {"blob": "x" * 70_000}}
        ),
    ),
}


def test_poison_events_are_dead_lettered_and_the_partition_flows(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Every poison kind is dead-lettered with headers while valid events behind it are applied."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    valid = valid_events(20, ts0=time.time_ns() // 1_000_000)
    records = [valid[0], *POISON.values(), *valid[1:]]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            AUDIENCES,
            kafka={"min_event_ts": "2000-01-01T00:00:00Z"},  # the default, which the harness lowers
        )
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, records)
            wait_for_lists(sandbox, {"All": {f"v{i}@example.com" for i in range(20)}}, 90)
            wait_for(
                lambda: metric(worker, "marketo_worker_dead_letters_total") == len(POISON),
                30,
                "the dead-letter counter",
            )
        finally:
            assert worker.stop() == 0
    dead = read_topic(kafka_bootstrap, f"{topic}.dlq", len(POISON))
    kinds = {dict(m.headers())["error.kind"].decode() for m in dead}
    assert kinds == set(POISON)
    for message in dead:
        headers = dict(message.headers())
        assert headers["source.topic"].decode() == topic
        assert headers["source.partition"] == b"0"
        assert int(headers["source.offset"]) > 0
        assert headers["error.message"]
