"""Reading the dead-letter topic once, as a consumer group of its own, and re-publishing records.

The read is bounded: each partition from the group's committed offset to the high watermark seen
at the start, never waiting for newer records. Only what the caller took is committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from worker.errors import ConfigError
from worker.kafka.logs import LOGGER

# headers the loop writes on every dead letter: where the record was first read
SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET = "source.topic", "source.partition", "source.offset"
# header on every record replay-dlq re-publishes: `<dead-letter topic>:<partition>:<offset>`
REPLAYED_FROM = "replayed.from"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter record: where it is, its raw key and value, where it was first read."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    source_partition: int | None
    source_topic: str | None = None
    source_offset: int | None = None


def partition_count(config: Mapping[str, str], topic: str) -> int | None:
    """Return the topic's partition count, or None when it does not exist (reads metadata only).

    Raise ConfigError when Kafka cannot be reached: a start-up problem of the configuration, so
    resync and replay-dlq exit 2 with one line, as import-audience does (exit 1 means otherwise).
    """
    consumer = Consumer({**config, "group.id": "unused-metadata-only", "logger": LOGGER})
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics.get(topic)
    except KafkaException as exc:
        raise ConfigError(f"kafka.bootstrap_servers: cannot reach Kafka: {exc}") from None
    finally:
        consumer.close()
    if metadata is None or metadata.error is not None:
        return None
    return len(metadata.partitions)


class DeadLetterReader:
    """Reads a topic from a group's committed offsets to the end as of `read()`'s start."""

    def __init__(
        self, config: Mapping[str, str], topic: str, group_id: str, *, from_beginning: bool = False
    ) -> None:
        self.topic = topic
        self.from_beginning = from_beginning  # ignore the group's position: read every record
        self.complete = True  # False when the read stopped on its idle timeout before the end
        self._next: dict[int, int] = {}  # partition -> offset after the last record taken
        self._consumer = Consumer(
            {
                **config,
                "logger": LOGGER,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

    def read(self, idle_timeout_s: float = 30.0) -> Iterator[DeadLetter]:
        """Yield each record once; stop at the end, or after `idle_timeout_s` without records."""
        ends = self._assign()
        last_progress = time.monotonic()
        while ends:
            messages = self._consumer.consume(500, 1.0)
            if messages:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout_s:
                self.complete = False
                return
            for message in messages:
                record = self._take(message, ends)
                if record is not None:
                    yield record

    def _assign(self) -> dict[int, int]:
        """Assign every partition with records left; return partition -> end offset."""
        metadata = self._consumer.list_topics(self.topic, timeout=15).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            return {}
        tps = [TopicPartition(self.topic, p) for p in sorted(metadata.partitions)]
        committed = {tp.partition: tp.offset for tp in self._consumer.committed(tps, timeout=15)}
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for tp in tps:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=15)
            start = low if self.from_beginning else max(committed.get(tp.partition, -1), low)
            if start < high:
                ends[tp.partition] = high
                starts.append(TopicPartition(self.topic, tp.partition, start))
        self._consumer.assign(starts)
        return ends

    def _take(self, message: Message, ends: dict[int, int]) -> DeadLetter | None:
        partition, offset = message.partition(), message.offset()
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                ends.pop(partition, None)  # caught up (the end may be a transaction marker)
            elif error.fatal():
                raise KafkaException(error)
            return None
        if partition is None or offset is None or partition not in ends:
            return None
        end = ends[partition]
        if offset + 1 >= end:
            del ends[partition]  # this is the last record as of the start
            if offset >= end:
                return None
        self._next[partition] = offset + 1
        headers = _headers(message)
        return DeadLetter(
            partition,
            offset,
            message.key(),
            message.value(),
            _number(headers.get(SOURCE_PARTITION)),
            headers[SOURCE_TOPIC].decode(errors="replace") if SOURCE_TOPIC in headers else None,
            _number(headers.get(SOURCE_OFFSET)),
        )

    def commit(self) -> None:
        """Commit the offset after every record yielded so far (a later run starts there)."""
        if self._next:
            offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(self._next.items())]
            for tp in self._consumer.commit(offsets=offsets, asynchronous=False) or []:
                if tp.error is not None:
                    raise KafkaException(tp.error)

    def close(self) -> None:
        """Leave without committing anything more."""
        self._consumer.close()


def _headers(message: Message) -> dict[str, bytes]:
    """The record's headers by name (the first of a repeated name), without empty values."""
    found: dict[str, bytes] = {}
    headers = message.headers() or []
    for name, value in headers.items() if isinstance(headers, dict) else headers:
        if value is not None:
            found.setdefault(name, value.encode() if isinstance(value, str) else value)
    return found


def _number(value: bytes | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


class InputRepublisher:
    """An idempotent producer that writes records back to the input topic."""

    def __init__(self, config: Mapping[str, str], topic: str) -> None:
        self.topic = topic
        self.failures = 0
        self._producer = Producer(
            {
                "linger.ms": 20,
                **config,
                "logger": LOGGER,
                "enable.idempotence": True,
                "acks": "all",
            }
        )

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self.failures += 1

    def publish(
        self, key: bytes | None, value: bytes | None, partition: int | None, replayed_from: str
    ) -> None:
        """Produce one record, to `partition` when given (else the key decides), marked with the
        dead letter it came from."""
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    value,
                    key,
                    partition=-1 if partition is None else partition,
                    on_delivery=self._delivered,
                    headers=[(REPLAYED_FROM, replayed_from.encode())],
                )
                return
            except BufferError:  # the local queue is full: serve deliveries, then try again
                self._producer.poll(0.1)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every record is delivered; False if any is undelivered or failed."""
        return self._producer.flush(timeout_s) == 0 and self.failures == 0
