"""Guarantee checked: the local broker is a real one; stopped and started again on the same
data directory, it still has the messages and the group's committed offsets."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.kafka_support import create_topic, new_local_broker

pytestmark = pytest.mark.integration


def consume_all(bootstrap: str, topic: str, group: str, count: int) -> list[bytes | None]:
    """Read `count` messages of a 1-partition topic from the start with a fresh group."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes | None] = []  # None would be a record without a value
    for _ in range(100):  # bounded: 100 polls of up to 1 s
        values += [m.value() for m in consumer.consume(count, 1.0) if m.error() is None]
        if len(values) >= count:
            break
    consumer.close()
    return values


def test_messages_and_committed_offsets_survive_broker_restart(tmp_path: Path) -> None:
    """After SIGTERM and a restart on the same data dir, messages and offsets are still there."""
    broker = new_local_broker(tmp_path / "broker")
    bootstrap = broker.start()
    try:
        topic = create_topic(bootstrap, partitions=1)
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(100):
            producer.produce(topic, key=str(i), value=f"v{i}".encode())
        assert producer.flush(30) == 0
        group = f"g-{uuid.uuid4().hex[:8]}"
        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        result = committer.commit(offsets=[TopicPartition(topic, 0, 60)], asynchronous=False)
        assert result is not None
        assert [tp.error for tp in result] == [None]
        committer.close()

        broker.stop()
        assert broker.process is not None
        assert broker.process.returncode is not None
        broker.start()

        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        committed = reader.committed([TopicPartition(topic, 0)], timeout=30)
        reader.close()
        assert committed[0].offset == 60
        expected = [f"v{i}".encode() for i in range(100)]
        assert consume_all(bootstrap, topic, f"r-{uuid.uuid4().hex[:8]}", 100) == expected
    finally:
        broker.stop()
