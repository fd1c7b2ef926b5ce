"""Reading a partition of the compacted state changelog back, on assignment.

A standalone consumer (no group) reads from the beginning to the high watermark observed at
the start; it runs in a worker thread so the loop keeps polling while a partition restores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from worker.kafka.logs import LOGGER

# Records per consume(): the message objects of one batch are freed in the middle of the states
# kept, and stay the process's memory (10,000 left 6 MB more than 2,000 for 200,000 profiles).
BATCH = 2_000
# consume() returns when a batch is full or this has passed: the last, partial batch of a
# partition costs this much, once (1 s made a 50k-profile restore take 1.1 s instead of 0.1 s)
BATCH_WAIT_S = 0.05


# errors that retrying this read cannot cure: the partition or the right to read it is gone
_GIVE_UP = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
    }
)


class RestoreInterrupted(Exception):
    """The worker is stopping: the state partition was not read to its end."""


def read_partition(
    config: Mapping[str, str], topic: str, partition: int, should_stop: Callable[[], bool]
) -> Iterator[list[tuple[bytes, bytes | None]]]:
    """Yield batches of (key, value) from the partition's start up to its high watermark.

    Raise RestoreInterrupted when `should_stop` ends the read first: a partial image must never
    pass for the whole state (a shutdown would then vouch for it with the clean marker)."""
    consumer = Consumer(
        {
            **config,
            "group.id": "unused-no-commits",  # required by librdkafka; never joins or commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # the broker answers a fetch at the end of the log at once instead of waiting for
            # new records: end-of-partition, the signal this reader waits for, comes sooner
            "fetch.wait.max.ms": 10,
            "logger": LOGGER,  # librdkafka's lines as JSON log events
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
            for message in consumer.consume(BATCH, BATCH_WAIT_S):
                after = _position_after(message, high)
                if after is None:
                    continue
                position = after
                key = message.key() if message.error() is None else None
                if key is not None and after <= high:
                    batch.append((key, message.value()))
            if batch:
                yield batch
        if position < high:
            raise RestoreInterrupted(f"stopped at offset {position} of {high}")
    finally:
        consumer.close()


def read_end_offset(config: Mapping[str, str], topic: str, partition: int) -> int:
    """Return a partition's high watermark (the offset the next record will get)."""
    consumer = Consumer(
        {**config, "group.id": "unused-no-commits", "enable.auto.commit": False, "logger": LOGGER}
    )
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        return int(high)
    finally:
        consumer.close()


def _position_after(message: Message, high: int) -> int | None:
    """The read position after `message` (`high` at the end of the partition), or None when it
    moves nothing (a passing error). An error no retry of this read cures raises: the restore
    fails (logged, tried again a second later) rather than waiting in silence."""
    error = message.error()
    if error is None:
        offset = message.offset()
        return None if offset is None else offset + 1
    if error.code() == KafkaError._PARTITION_EOF:
        return high
    if error.fatal() or error.code() in _GIVE_UP:
        raise KafkaException(error)
    return None
