"""Scenario: `generate` puts exactly the asked number of decodable events on the input topic."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.harness import new_input_topic, read_topic, write_config
from tests.kafka_support import wait_for
from worker.commands.generate import main
from worker.core.events import decode

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "webinar", "name": "Webinar", "origin": "upload", "list": {"name": "W"}}]
NO_SANDBOX = "http://127.0.0.1:9"  # generate never talks to Marketo


def high_watermark(bootstrap: str, topic: str) -> int:
    """How many records the (single-partition) topic holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
    finally:
        consumer.close()
    return int(high)


def test_generate_count_puts_that_many_decodable_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`generate --count 2000 --rate 0` publishes 2,000 events the worker's decoder accepts."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    assert main([str(config), "--rate", "0", "--count", "2000", "--seed", "3"]) == 0
    records = read_topic(kafka_bootstrap, topic, 2000)
    updates = [decode(r.key(), r.value(), max_bytes=65_536) for r in records]
    assert len(updates) == 2000
    assert high_watermark(kafka_bootstrap, topic) == 2000


def test_paced_generate_stops_at_the_count(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With a rate, events are paced by the token bucket and the run still ends at --count."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    assert main([str(config), "--rate", "2000", "--count", "300"]) == 0
    assert high_watermark(kafka_bootstrap, topic) == 300


def test_generate_refuses_a_missing_input_topic(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The input topic must exist: exit 2 naming it, nothing produced."""
    config = write_config(
        tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, "no-such-topic", AUDIENCES
    )
    assert main([str(config), "--rate", "0", "--count", "10"]) == 2
    assert "'no-such-topic' does not exist" in capsys.readouterr().err


def test_sigterm_ends_an_unbounded_run_with_everything_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Without --count, SIGTERM stops the run cleanly: exit 0, and every counted event is there."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, NO_SANDBOX, topic, AUDIENCES)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "generate", str(config), "--rate", "500"],
            stdout=stdout,
            stderr=stderr,
        )
        try:
            wait_for(lambda: "generated" in err.read_text(), 60, "a first progress line")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            proc.kill()
            proc.wait(10)
    summary = re.search(r"generated (\d+) events in", out.read_text())
    assert summary is not None, out.read_text()
    assert int(summary.group(1)) > 0
    assert high_watermark(kafka_bootstrap, topic) == int(summary.group(1))
