"""Reading a partition of the compacted state changelog back, on assignment (DESIGN §3.6).

A standalone consumer (no group) reads from the beginning to the high watermark observed at
the start; it runs in a worker thread so the loop keeps polling while a partition restores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

BATCH = 10_000


def read_partition(
    config: Mapping[str, str], topic: str, partition: int, should_stop: Callable[[], bool]
) -> Iterator[list[tuple[bytes, bytes | None]]]:
    """Yield batches of (key, value) from the partition's start up to its high watermark."""
    consumer = Consumer(
        {
            **config,
            "group.id": "unused-no-commits",  # required by librdkafka; never joins or commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        if high <= low:
            return
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        position = low
        while position < high and not should_stop():
            batch: list[tuple[bytes, bytes | None]] = []
            # a compacted log has gaps: fewer records than offsets remain, so the end is known
            # by librdkafka's end-of-partition event, never by counting (that waits a timeout)
            for message in consumer.consume(BATCH, 1.0):
                error, offset = message.error(), message.offset()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        position = high
                    continue
                if offset is None:
                    continue
                position = offset + 1
                key = message.key()
                if key is not None and offset < high:
                    batch.append((key, message.value()))
            if batch:
                yield batch
    finally:
        consumer.close()


def read_end_offset(config: Mapping[str, str], topic: str, partition: int) -> int:
    """Return a partition's high watermark (the offset the next record will get)."""
    consumer = Consumer({**config, "group.id": "unused-no-commits", "enable.auto.commit": False})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        return int(high)
    finally:
        consumer.close()
